"""cwpo.console: stage lines, transient bars, the Trainer callback, and where logging goes."""

from __future__ import annotations

import logging
import warnings
from types import SimpleNamespace

import pytest

from cwpo import console


def test_stage_line_columns():
    line = console.format_stage_line("sft", "supervised fine-tuning", 83.4)
    assert line.split()[0] == "sft" and line.endswith("1m23s")
    assert console.format_stage_line("align[cw]", "DPO", cached=True).endswith("cached")
    assert console.format_stage_line("data", "split", 0.25, detail="log: x.log").endswith("0.2s  log: x.log")
    assert console.format_seconds(7322) == "2h02m"


def test_session_sends_library_logging_and_warnings_to_the_file_only(tmp_path, capsys):
    log = tmp_path / "logs" / "cmd.log"
    with console.session(log, title="cwpo test"):
        console.stage_line("sft", "fine-tune", 1.5)
        logging.getLogger("transformers.modeling_utils").warning("LOAD REPORT from a library")
        logging.getLogger("accelerate.state").warning("an accelerate warning")
        logging.getLogger("cwpo.train").info("sft step 1: {'loss': 0.7}")
        warnings.warn("a deprecation inside a dependency", DeprecationWarning, stacklevel=1)
        logging.getLogger("cwpo.something").warning("a cwpo warning is the user's business")
    out, err = capsys.readouterr()
    assert out.splitlines() == [console.format_stage_line("sft", "fine-tune", 1.5)]
    assert err.strip() == "cwpo.something: WARNING: a cwpo warning is the user's business"
    text = log.read_text()
    for expected in ("cwpo test", "LOAD REPORT", "an accelerate warning", "sft step 1", "DeprecationWarning"):
        assert expected in text, expected


def test_verbose_shows_everything_live(tmp_path, capsys):
    with console.session(tmp_path / "v.log", verbose=True):
        logging.getLogger("transformers.trainer").warning("library record")
        logging.getLogger("cwpo.train").info("sft step 1: {'loss': 0.7}")
        console.stage_line("data", "split", 0.1)
    out, err = capsys.readouterr()
    assert "library record" in err and "sft step 1" in err
    assert out.startswith("data") and "data" not in err  # a stage line is printed once


def test_known_dependency_warnings_are_silenced_narrowly(tmp_path):
    with console.session(tmp_path / "w.log"), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        console.silence_known_warnings()
        warnings.warn_explicit(
            "`is_gradient_checkpointing` is deprecated and will be removed in v6.",
            FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils",
        )  # fmt: skip
        warnings.warn_explicit(
            "another FutureWarning",
            FutureWarning,
            "modeling_utils.py",
            2,
            module="transformers.modeling_utils",
        )
    assert [str(w.message) for w in seen] == ["another FutureWarning"]


def test_session_restores_logging_and_library_handlers(tmp_path):
    from transformers.utils import logging as tf_logging

    root_handlers = set(logging.getLogger().handlers)
    tf_handlers = set(logging.getLogger("transformers").handlers)
    bars = tf_logging.is_progress_bar_enabled()
    with pytest.raises(RuntimeError), console.session(tmp_path / "r.log"):
        assert not tf_logging.is_progress_bar_enabled()
        raise RuntimeError("a bug")
    assert set(logging.getLogger().handlers) == root_handlers
    assert set(logging.getLogger("transformers").handlers) == tf_handlers
    assert tf_logging.is_progress_bar_enabled() == bars
    assert "RuntimeError: a bug" in (tmp_path / "r.log").read_text()  # with its traceback


def test_progress_bar_is_transient_and_logs_its_rate(tmp_path, capsys):
    with console.session(tmp_path / "p.log"):
        for _ in console.progress(range(5), desc="annotate", unit="pair"):
            pass
    err = capsys.readouterr().err
    assert "pair/s" in err
    assert err.split("\r")[-1].strip() == ""  # the bar cleared its line when it closed
    assert "cwpo.progress: annotate: 100% 5/5" in (tmp_path / "p.log").read_text()


def test_no_bar_on_other_ranks(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert console.progress(total=3, desc="x").disable
    monkeypatch.setenv("RANK", "0")
    assert not console.progress(total=3, desc="x").disable
    assert console.progress(total=3, desc="x", enabled=False).disable


def test_training_bar_replaces_the_trainers_printing(tmp_path, capsys):
    cb = console.training_bar("align[cw]")
    assert cb.replaces_default_progress
    state = SimpleNamespace(is_world_process_zero=True, max_steps=3, global_step=0)
    with console.session(tmp_path / "t.log"):
        cb.on_train_begin(None, state, None)
        for step in (1, 2, 3):
            state.global_step = step
            cb.on_step_end(None, state, None)
            cb.on_log(None, state, None, logs={"loss": 0.5 / step, "grad_norm": 0.1})
        assert cb.bar.n == 3 and "loss=0.1667" in str(cb.bar)
        cb.on_train_end(None, state, None)
    out, err = capsys.readouterr()
    assert "{'loss'" not in out + err and "step/s" in err
    text = (tmp_path / "t.log").read_text()
    assert "align[cw] step 3: {'loss': '0.1667', 'grad_norm': '0.1'}" in text


def test_use_callers_progress_drops_the_trainers_own(tiny_causal_lm_dir, tmp_path):
    from transformers import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from cwpo.align.training_stage import use_callers_progress
    from cwpo.models.loading import load_causal_lm

    model, _ = load_causal_lm(tiny_causal_lm_dir, tokenizer=False)
    for disable_tqdm in (False, True):
        args = TrainingArguments(
            output_dir=str(tmp_path / "unused"), report_to="none", use_cpu=True, disable_tqdm=disable_tqdm
        )
        bar = console.training_bar("sft")
        trainer = Trainer(model=model, args=args, callbacks=[bar])
        use_callers_progress(trainer, [bar])
        kinds = [type(cb) for cb in trainer.callback_handler.callbacks]
        assert (
            ProgressCallback not in kinds
            and PrinterCallback not in kinds
            and bar in trainer.callback_handler.callbacks
        )
        plain = Trainer(model=model, args=args)
        use_callers_progress(plain, None)  # no cwpo bar: the Trainer keeps its own
        assert {ProgressCallback, PrinterCallback} & {type(cb) for cb in plain.callback_handler.callbacks}


def test_a_cwpo_warning_is_one_terminal_line_and_in_the_log(tmp_path, capsys):
    from cwpo.errors import warn

    with console.session(tmp_path / "w.log", verbose=True):
        warn("only 3 training pairs (a test)")
    err = capsys.readouterr().err
    assert err.splitlines() == ["cwpo: warning: only 3 training pairs (a test)"]  # not twice with --verbose
    assert "cwpo.warning: warning: only 3 training pairs (a test)" in (tmp_path / "w.log").read_text()


def test_no_log_file_for_a_user_error_before_any_record(tmp_path):
    from cwpo.errors import CWPOError

    with pytest.raises(CWPOError), console.session(tmp_path / "sub" / "typo.log", title="cwpo data"):
        raise CWPOError("no such file")
    assert not (tmp_path / "sub").exists()
    with pytest.raises(CWPOError), console.session(tmp_path / "late.log", title="cwpo sft --x"):
        logging.getLogger("cwpo.train").info("sft step 1: {'loss': 0.7}")
        raise CWPOError("bad row")
    lines = (tmp_path / "late.log").read_text().splitlines()
    assert lines[0].startswith("=== cwpo sft --x (pid ") and "stopped: CWPOError: bad row" in lines[-1]


def test_the_bf16_auto_decision_is_one_terminal_line_per_process(tmp_path, capsys, monkeypatch):
    from cwpo import runtime

    monkeypatch.setattr(runtime, "_ANNOUNCED", set())
    monkeypatch.setattr(runtime, "bf16_is_faster", lambda: True)
    monkeypatch.setattr(runtime.hugepages, "CHOSEN", ["huge pages for large tensors: on (test)"])
    with console.session(tmp_path / "b.log"):
        assert all(runtime.resolve_bf16("auto") for _ in range(4))  # e.g. sft, 3 x align in a run
    assert capsys.readouterr().err.splitlines() == [
        "cwpo: bf16 auto -> bf16 on this machine; huge pages for large tensors: on (test)"
    ]
    assert (tmp_path / "b.log").read_text().count("bf16 auto -> bf16") == 4
