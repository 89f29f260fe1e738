"""`cwpo train-annotator --report-to tensorboard`: its own loop's scalars as TensorBoard events."""

from __future__ import annotations

import json
import math

import pytest
from annotator_rows import hh_rows
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cwpo.annotator import TrainAnnotatorConfig, train_annotator
from cwpo.cli.main import main
from cwpo.data.schema import write_pairs
from cwpo.errors import ConfigError


def test_tensorboard_events_hold_the_runs_losses_and_curves(tmp_path, tiny_encoder_dir):
    write_pairs(tmp_path / "train.jsonl", hh_rows(24))
    write_pairs(tmp_path / "eval.jsonl", hh_rows(4))
    out = tmp_path / "ann"
    metrics = train_annotator(
        TrainAnnotatorConfig(
            train=str(tmp_path / "train.jsonl"), eval=str(tmp_path / "eval.jsonl"), output=str(out),
            backbone=tiny_encoder_dir, epochs=2, batch_size=4, max_length=32, early_stopping=True,
            val_frac=0.25, patience=2, progress=False, report_to="tensorboard",
        )
    )  # fmt: skip
    acc = EventAccumulator(str(out / "runs" / "train-annotator"))
    acc.Reload()
    loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert [s for s, _ in loss] == list(range(1, metrics["train_steps"] + 1))
    assert loss[0][1] == pytest.approx(metrics["train_loss_first"]) and loss[-1][1] == pytest.approx(
        metrics["train_loss_last"]
    )
    val = [(e.step, e.value) for e in acc.Scalars("val/loss")]
    per_epoch = math.ceil(metrics["n_train"] / 4)  # the step that ends each epoch
    assert val == [(per_epoch * p["epoch"], pytest.approx(p["loss"])) for p in metrics["val_curve"]]
    assert len(val) == 2
    assert acc.Scalars("eval/accuracy")[0].value == pytest.approx(metrics["eval_accuracy"])
    assert json.loads((out / "annotator.json").read_text())["objective"] == "bt"


def test_no_events_by_default_and_other_trackers_refused(tmp_path, tiny_encoder_dir, capsys):
    write_pairs(tmp_path / "train.jsonl", hh_rows(8))
    out = tmp_path / "plain"
    train_annotator(
        TrainAnnotatorConfig(
            train=str(tmp_path / "train.jsonl"), output=str(out), backbone=tiny_encoder_dir, epochs=1,
            batch_size=4, max_length=32, progress=False,
        )
    )  # fmt: skip
    assert not (out / "runs").exists()
    with pytest.raises(ConfigError, match="TensorBoard only"):
        TrainAnnotatorConfig(train="t.jsonl", output="o", report_to="wandb")
    args = ["train-annotator", "--train", str(tmp_path / "train.jsonl"), "--output", str(tmp_path / "o")]
    assert main([*args, "--report-to", "tensorboard,trackio"]) == 2
    err = capsys.readouterr().err
    assert "writes TensorBoard only" in err and "trackio" in err and "Traceback" not in err
