"""A terminal a person can read, for `cwpo run` and every stage command.

No line of a command's terminal output may be a per-step metric dict, a weights-loading bar or a
Python warning; those go to the command's log file (``--verbose`` shows them live). A user error
is one line and exit code 2 for every command.
"""

from __future__ import annotations

import argparse
import json
import re

import pytest

from cwpo.cli import report as cli_report
from cwpo.cli.main import log_file_for, main

# lines of today's (pre-issue-12) `cwpo run` terminal, as the check must catch them
TODAYS_NOISE = [
    "{'loss': '10.81', 'grad_norm': '0.1912', 'learning_rate': '0', 'epoch': '0.1429'}",
    "{'train_runtime': '0.4656', 'train_samples_per_second': '17.18', 'train_loss': '10.81'}",
    "\rLoading weights:   0%|          | 0/39 [00:00<?, ?it/s]\rLoading weights: 100%|██████████| 39/39",
    "Writing model shards: 100%|██████████| 1/1 [00:00<00:00, 236.78it/s]",
    "/x/site-packages/transformers/modeling_utils.py:3303: FutureWarning: `is_gradient_checkpointing` is "
    "deprecated and will be removed in v6. Use `is_activation_checkpointing` instead.",
    "  warnings.warn(",
    "[transformers] \x1b[1mBertForSequenceClassification LOAD REPORT\x1b[0m from: /tmp/term/enc",
]
CLEAN = [
    "sft              supervised fine-tuning of the strong model               1.3s",
    "align[cw]: 100%|██████████| 2/2 [00:00<00:00,  2.49step/s, loss=2.469e-05]",
    "     method   pref. accuracy seeds weak-label acc",
    "      human            100.0     1          100.0",
    "annotate: 100%|██████████| 25/25 [00:00<00:00, 2086.72pair/s]",
]
STAGES = ["data", "annotator", "annotate", "sft"] + [
    f"{s}[{m}]" for m in ("human", "ws", "cw") for s in ("align", "evaluate")
]


def test_the_check_catches_todays_noise_and_passes_clean_lines(noise_in):
    assert [kind for kind, _ in noise_in("\n".join(TODAYS_NOISE))] == [
        "metric dict",
        "metric dict",
        "weights bar",
        "weights bar",
        "weights bar",
        "python warning",
        "python warning",
        "python warning",
    ]
    assert noise_in("\n".join(CLEAN)) == []


def _stage_lines(stdout: str) -> dict[str, str]:
    return {
        line.split()[0]: line for line in stdout.splitlines() if line.split() and line.split()[0] in STAGES
    }


def test_cwpo_run_shows_stage_lines_bars_and_the_table_only(tmp_path, tiny_recipe_yaml, cwpo_cli, noise_in):
    out = tmp_path / "run"
    proc = cwpo_cli(["run", str(tiny_recipe_yaml), "--output", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert noise_in(proc.stdout + proc.stderr) == []
    assert proc.stderr.count("bf16 auto ->") <= 1  # decided for every stage, said once
    stages = _stage_lines(proc.stdout)
    assert sorted(stages) == sorted(STAGES)  # one line per stage ...
    assert len([ln for ln in proc.stdout.splitlines() if ln.split() and ln.split()[0] in STAGES]) == 10
    assert all(line.rstrip().endswith("s") for line in stages.values())  # ... with its duration
    assert "confidence" in stages["align[cw]"]
    assert "pref. accuracy" in proc.stdout and f"log: {tmp_path / 'run.log'}" in proc.stdout
    assert "step/s" in proc.stderr and "pair/s" in proc.stderr  # bars with their rates
    log = (tmp_path / "run.log").read_text()
    # what left the terminal is in the log: per-step metrics, library logging, the bars' last state
    assert "cwpo.train: sft step 1: {'loss'" in log and "align[cw] step 2: {'loss'" in log
    assert "transformers" in log and "cwpo.progress: annotate: 100%" in log
    sft_dir = next((out / "stages").glob("sft-*"))
    assert len(json.loads((sft_dir / "model" / "metrics.json").read_text())["steps"]) == 2  # still saved

    again = cwpo_cli(["run", str(tiny_recipe_yaml), "--output", str(out)])
    assert again.returncode == 0 and noise_in(again.stdout + again.stderr) == []
    assert all(line.rstrip().endswith("cached") for line in _stage_lines(again.stdout).values())

    report = cwpo_cli(["report", str(out)])
    assert report.returncode == 0 and noise_in(report.stdout + report.stderr) == []
    assert list(out.glob("*.log")) == []  # nothing of the logs inside the run folder: the report's
    args = argparse.Namespace(results_dir=str(out), output=None)  # log is the run's
    assert log_file_for("report", cli_report, args) == (tmp_path / "run.log").resolve()


def test_a_stage_command_ends_with_its_stage_line_duration_or_cached(tmp_path, labeled_rows, capsys):
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in labeled_rows))
    args = ["data", "--source", str(source), "--output", str(tmp_path / "d"), "--max-tokens", "0"]
    assert main(args) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(rf"data +load, filter and split .+ \d+\.\ds  log: {tmp_path / 'd.log'}", first), first
    assert main(args) == 0
    again = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(rf"data +load, filter and split .+ cached  log: {tmp_path / 'd.log'}", again), again


def test_stage_commands_are_quiet_and_verbose_shows_the_rest(
    tmp_path, labeled_rows, tiny_causal_lm_dir, cwpo_cli, noise_in
):
    train = tmp_path / "t.jsonl"
    train.write_text("".join(json.dumps(dict(r, confidence=0.5)) + "\n" for r in labeled_rows))
    common = ["--train", str(train), "--max-steps", "2", "--batch-size", "2", "--max-length", "64"]
    sft = cwpo_cli(["sft", *common, "--model", tiny_causal_lm_dir, "--output", str(tmp_path / "sft")])
    assert sft.returncode == 0, sft.stderr[-3000:]
    assert noise_in(sft.stdout + sft.stderr) == []
    assert sft.stdout.splitlines()[-1].startswith("sft ") and "log: " in sft.stdout
    assert "step 1: {'loss'" in (tmp_path / "sft.log").read_text()  # log beside the output folder

    align = cwpo_cli(
        ["align", *common, "--policy", str(tmp_path / "sft"), "--weighting", "confidence", "--verbose",
         "--output", str(tmp_path / "al")]
    )  # fmt: skip
    assert align.returncode == 0, align.stderr[-3000:]
    assert "step 1: {'loss'" in align.stderr  # --verbose: per-step metrics (and library logs) live
    assert "step 1: {'loss'" in (tmp_path / "al.log").read_text()
    assert not any(kind == "metric dict" for kind, _ in noise_in(align.stdout + align.stderr))


@pytest.mark.parametrize(
    "args",
    [
        ["data", "--source", "{tmp}/missing.jsonl", "--output", "{tmp}/data"],
        ["train-annotator", "--train", "{tmp}/missing.jsonl", "--output", "{tmp}/ann"],
        ["annotate", "--annotator", "{tmp}/no-annotator", "--input", "{tmp}/u.jsonl", "--output", "{tmp}/w.jsonl"],
        ["sft", "--train", "{tmp}/missing.jsonl", "--model", "{tmp}/m", "--output", "{tmp}/sft"],
        ["sft", "--config", "{tmp}/missing.yaml"],
        ["align", "--train", "{tmp}/missing.jsonl", "--policy", "{tmp}/m", "--output", "{tmp}/al"],
        ["evaluate", "--policy", "{tmp}/p", "--reference", "{tmp}/r", "--prompts", "{tmp}/missing.jsonl",
         "--gold", "vader", "--output", "{tmp}/ev"],
        ["evaluate", "--policy", "{tmp}/p", "--reference", "{tmp}/r", "--gold", "vader", "--output", "{tmp}/ev"],
        ["run", "{tmp}/missing.yaml"],
        ["report", "{tmp}/no-results"],
        ["models", "prepare", "no-such-model"],
    ],
    ids=lambda a: a[0] if a[1] != "--config" else "sft-config",
)  # fmt: skip
def test_a_user_error_is_one_line_and_exit_2(args, tmp_path, capsys):
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"cwpo {args[0]}: error: "), captured.err
    assert "Traceback" not in captured.out + captured.err
    assert list(tmp_path.rglob("*.log")) == []  # refused before any work: no log file left behind


def test_a_missing_setting_is_named_as_the_user_gives_it(tmp_path, capsys):
    common = [
        "evaluate",
        "--policy",
        "p",
        "--reference",
        "r",
        "--gold",
        "vader",
        "--output",
        str(tmp_path / "ev"),
    ]
    assert main(common) == 2
    assert capsys.readouterr().err.strip() == "cwpo evaluate: error: missing --prompts"
    (tmp_path / "ev.yaml").write_text("policy: p\nreference: r\ngold: vader\n")
    assert main(["evaluate", "--config", str(tmp_path / "ev.yaml")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"cwpo evaluate: error: missing --prompts, --output (or set prompts, output in {tmp_path / 'ev.yaml'})"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["sft", "--max-steps", "ten"],
        ["align", "--loss", "foo"],
        ["sft", "--no-such-flag"],
        ["no-such-command"],
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(args, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("cwpo") and ": error: " in lines[0], lines
    assert lines[0].endswith("--help)")
