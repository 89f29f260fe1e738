"""What a user found deleting, overwriting or crashing around ``--output``, one test per finding.

Each test is the user's probe: before the output guard was a manifest-only rule with a swap at the
end, these commands deleted the user's hidden files, deleted checkpoints before refusing, lost an
earlier model on Ctrl-C, replaced another recipe's results, appended to the user's ``res.log``,
or ended in a traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from tests.conftest import toy_pairs
from transformers import TrainerCallback

from cwpo.cli.main import main
from cwpo.data.schema import read_pairs, write_pairs

SRC = Path(__file__).resolve().parents[1] / "src"


def _sums(folder: Path) -> dict:
    """Checksums of every file under ``folder`` (hidden ones too; links by their target text)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            p = Path(root) / name
            data = os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
            out[str(p.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    return out


def _one_error_line(capsys) -> str:
    """The one ``error:`` line of a refused command (notes such as the precision probe may precede it)."""
    err = capsys.readouterr().err.strip()
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err and err.endswith(errors[0]), err
    return errors[0]


def _data(source, output, *extra) -> int:
    return main(["data", "--source", str(source), "--output", str(output), "--max-tokens", "0", *extra])


# ---- data loss -----------------------------------------------------------------------------------
def test_names_that_look_like_temporaries_are_the_users_files(tmp_path, capsys):
    write_pairs(tmp_path / "a.jsonl", toy_pairs())
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / ".session.tmp").write_text("x\n")
    (mine / ".db.old-7").write_text("y\n")
    before = _sums(mine)
    assert _data(tmp_path / "a.jsonl", mine) == 2
    assert "not a cwpo `data` output" in _one_error_line(capsys)
    assert _sums(mine) == before
    out = tmp_path / "out"  # the same files inside an earlier `data` output, with --overwrite
    assert _data(tmp_path / "a.jsonl", out) == 0
    (out / ".session.tmp").write_text("x\n")
    (out / ".cache.old-12").mkdir()
    (out / ".cache.old-12" / "k").write_text("z\n")
    before = _sums(out)
    capsys.readouterr()
    assert _data(tmp_path / "a.jsonl", out, "--seed", "3", "--overwrite") == 2
    assert "cwpo did not write" in _one_error_line(capsys)
    assert _sums(out) == before


@pytest.mark.parametrize("stage", ["sft", "align"])
def test_overwrite_checks_ownership_before_deleting_checkpoints(tmp_path, stage, tiny_causal_lm_dir, capsys):
    write_pairs(tmp_path / "train.jsonl", toy_pairs(8))
    out = tmp_path / "myexp"
    ckpt = out / "checkpoints" / "checkpoint-500"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text('{"global_step": 500}')
    (ckpt / "adapter_model.safetensors").write_bytes(b"weights")
    (out / "notes.txt").write_text("my notes\n")
    before = _sums(out)
    model_flag = "--model" if stage == "sft" else "--policy"
    args = [stage, "--train", str(tmp_path / "train.jsonl"), model_flag, tiny_causal_lm_dir]
    assert main([*args, "--output", str(out), "--max-steps", "1", "--overwrite", "true"]) == 2
    _one_error_line(capsys)
    assert _sums(out) == before
    assert (
        main([*args, "--output", str(out), "--max-steps", "1", "--resume"]) == 2
    )  # someone else's checkpoint
    _one_error_line(capsys)
    assert _sums(out) == before


class _Interrupt(TrainerCallback):
    """Ctrl-C right after the first checkpoint of the replacing run is saved."""

    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt


def test_an_interrupted_overwrite_keeps_the_earlier_model(tmp_path, tiny_causal_lm_dir, capsys):
    from cwpo.align import SFTConfig, sft

    write_pairs(tmp_path / "train.jsonl", toy_pairs(8))
    base = dict(train=str(tmp_path / "train.jsonl"), model=tiny_causal_lm_dir, batch_size=2, max_length=64)
    out = tmp_path / "sft0"
    sft(SFTConfig(**base, output=str(out), max_steps=1, save_steps=10))
    before = _sums(out)
    with pytest.raises(KeyboardInterrupt):
        sft(
            SFTConfig(**base, output=str(out), max_steps=3, save_steps=1, overwrite=True),
            callbacks=[_Interrupt()],
        )
    assert _sums(out) == before  # the earlier complete output, untouched
    # the re-run says so: --resume continues the replacement, then it replaces sft0 in one step
    res = sft(SFTConfig(**base, output=str(out), max_steps=3, save_steps=1, resume=True))
    assert res["resumed_from"] == "checkpoint-1" and res["global_step"] == 3
    assert json.loads((out / "manifest.json").read_text())["metrics"]["global_step"] == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch left
    # a finished output: nothing to resume, and the message does not suggest --resume
    args = [
        "sft",
        "--train",
        str(tmp_path / "train.jsonl"),
        "--model",
        tiny_causal_lm_dir,
        "--output",
        str(out),
    ]
    assert main([*args, "--max-steps", "4"]) == 2
    err = _one_error_line(capsys)
    assert "--overwrite" in err and "--resume" not in err
    assert main([*args, "--max-steps", "3", "--save-steps", "1", "--resume"]) == 2
    assert "nothing to resume" in _one_error_line(capsys)


def _recipe_yaml(path: Path, name: str, source: Path, strong: str, encoder: str) -> Path:
    tiny = {"max_steps": 1, "batch_size": 4, "max_length": 64, "save_steps": 1000}
    recipe = {
        "name": name,
        "strong_model": strong,
        "seeds": [0],
        "methods": ["human"],
        "data": {"source": str(source), "labeled_frac": 0.3, "test_frac": 0.25, "max_tokens": 0},
        "annotator": {"backbone": encoder, "epochs": 1, "batch_size": 8, "max_length": 64},
        "sft": tiny,
        "align": tiny,
        "evaluate": {"batch_size": 8, "max_length": 64, "n_boot": 20},
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_a_run_folder_of_another_recipe_is_refused(
    tmp_path, tiny_causal_lm_dir, tiny_encoder_dir, capsys, monkeypatch
):
    from cwpo.experiments import pipeline

    write_pairs(tmp_path / "pairs.jsonl", toy_pairs(24))
    one = _recipe_yaml(
        tmp_path / "one.yaml", "one", tmp_path / "pairs.jsonl", tiny_causal_lm_dir, tiny_encoder_dir
    )
    other = _recipe_yaml(
        tmp_path / "other.yaml", "other", tmp_path / "pairs.jsonl", tiny_causal_lm_dir, tiny_encoder_dir
    )
    run0 = tmp_path / "run0"
    row = {
        "seed": 0,
        "method": "human",
        "labels": "human",
        "weighting": "none",
        "loss": "dpo",
        "pref_acc": 0.5,
    }
    rows = [row] * 3

    def fake_point(root, point, recipe, methods, progress):
        return rows[:1] if recipe.name == "other" else rows

    monkeypatch.setattr(pipeline, "run_point", fake_point)
    assert main(["run", str(one), "--output", str(run0), "--no-progress", "--report"]) == 0
    assert len((run0 / "results.jsonl").read_text().splitlines()) == 3
    capsys.readouterr()
    before = _sums(run0)
    assert main(["run", str(other), "--output", str(run0), "--no-progress"]) == 2
    assert "another recipe" in _one_error_line(capsys)
    assert _sums(run0) == before
    assert main(["demo", "--output", str(run0), "--no-progress"]) == 2
    assert "another recipe" in _one_error_line(capsys)
    assert _sums(run0) == before
    (run0 / "notes.txt").write_text("mine\n")
    assert main(["run", str(other), "--output", str(run0), "--no-progress", "--overwrite"]) == 0
    assert len((run0 / "results.jsonl").read_text().splitlines()) == 1
    assert not (run0 / "report").exists()  # the stale report of the other recipe is gone
    assert (run0 / "notes.txt").read_text() == "mine\n"


def test_a_users_log_file_is_never_appended_to(tmp_path, capsys):
    write_pairs(tmp_path / "a.jsonl", toy_pairs())
    (tmp_path / "res.log").write_text("my results\n")
    assert _data(tmp_path / "a.jsonl", tmp_path / "res") == 0
    assert (tmp_path / "res.log").read_text() == "my results\n"
    err = capsys.readouterr().err
    assert "res.cwpo-1.log" in err and (tmp_path / "res.cwpo-1.log").read_text().startswith("=== cwpo data")
    (tmp_path / "d.log").mkdir()  # a folder where the log would go
    assert _data(tmp_path / "a.jsonl", tmp_path / "d") == 0
    assert (tmp_path / "d.cwpo-1.log").is_file() and not list((tmp_path / "d.log").iterdir())
    assert _data(tmp_path / "a.jsonl", tmp_path / "e") == 0
    assert _data(tmp_path / "a.jsonl", tmp_path / "e", "--seed", "4", "--overwrite") == 0
    assert (tmp_path / "e.log").read_text().count("=== cwpo data") == 2  # cwpo's own log: appended


# ---- tracebacks and messages ---------------------------------------------------------------------
def test_paths_without_a_name_and_folders_as_files_are_one_line(tmp_path, capsys, monkeypatch):
    write_pairs(tmp_path / "a.jsonl", toy_pairs())
    assert _data(tmp_path / "a.jsonl", "/") == 2
    assert "filesystem root" in _one_error_line(capsys)
    (tmp_path / "adir").mkdir()
    assert main(["train-annotator", "--train", str(tmp_path / "adir"), "--output", str(tmp_path / "o")]) == 2
    assert "is a folder" in _one_error_line(capsys)
    (tmp_path / "five.jsonl").write_text("5\n")
    assert (
        main(["train-annotator", "--train", str(tmp_path / "five.jsonl"), "--output", str(tmp_path / "o")])
        == 2
    )
    assert "expected a JSON object" in _one_error_line(capsys)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really PAR1")
    assert (
        main(["train-annotator", "--train", str(tmp_path / "bad.parquet"), "--output", str(tmp_path / "o")])
        == 2
    )
    assert "Parquet" in _one_error_line(capsys)
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.log").exists()


def test_annotate_errors_are_one_line_and_leave_nothing(tmp_path, cli_annotator, capsys, monkeypatch):
    ann, _ = cli_annotator
    args = ["annotate", "--annotator", str(ann), "--input", str(tmp_path / "u.jsonl"), "--progress", "false"]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main([*args, "--output", "."]) == 2
    assert "existing folder" in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ann", "ann.log", "train.jsonl", "u.jsonl", "work"]
    weights = ann / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    assert main([*args, "--output", str(tmp_path / "lab.jsonl")]) == 2
    assert "truncated or corrupt" in _one_error_line(capsys)
    assert not (tmp_path / "lab.jsonl.parts").exists() and not (tmp_path / "lab.jsonl").exists()


def test_bare_overwrite_is_a_flag(tmp_path, capsys):
    write_pairs(tmp_path / "a.jsonl", toy_pairs())
    out = tmp_path / "out"
    assert _data(tmp_path / "a.jsonl", out) == 0
    assert _data(tmp_path / "a.jsonl", out, "--seed", "1") == 2
    assert "pass --overwrite" in _one_error_line(capsys)
    assert _data(tmp_path / "a.jsonl", out, "--seed", "1", "--overwrite") == 0  # the message is true
    assert _data(tmp_path / "a.jsonl", out, "--seed", "2", "--overwrite", "true") == 0  # and the old form


def test_stages_read_the_files_cwpo_data_reads(tmp_path):
    rows = toy_pairs(3)
    with gzip.open(tmp_path / "p.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "p.csv").write_text(
        "prompt,chosen,rejected\n" + "".join(f"{r['prompt']},{r['chosen']},{r['rejected']}\n" for r in rows)
    )
    assert read_pairs(tmp_path / "p.jsonl.gz") == rows
    assert read_pairs(tmp_path / "p.csv") == rows


def test_a_killed_writer_leaves_no_scratch_for_ever(tmp_path):
    target = tmp_path / "stages" / "align-0123"
    code = textwrap.dedent(
        f"""
        import os, signal
        from cwpo.outputs import atomic_dir
        with atomic_dir({str(target)!r}) as tmp:
            (tmp / "model.bin").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert len(list((tmp_path / "stages").iterdir())) == 1  # the killed process's scratch
    from cwpo.outputs import atomic_dir

    with atomic_dir(tmp_path / "stages" / "align-4567") as tmp:  # the next writer beside it
        (tmp / "model.bin").write_bytes(b"whole")
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == ["align-4567"]
