"""Training metrics reach a tracker: TensorBoard event files written by sft and align, read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cwpo.align import AlignConfig, SFTConfig, align, sft
from cwpo.align.training_args import trainer_common_kwargs
from cwpo.data.schema import write_pairs
from cwpo.errors import ConfigError, CWPOError


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _only_run(out: Path) -> Path:
    runs = [p for p in (out / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_align_and_sft_write_tensorboard_events(tmp_path, labeled_rows, tiny_causal_lm_dir):
    rows = [dict(r, confidence=0.1 + 0.1 * i) for i, r in enumerate(labeled_rows[:4])]
    train = str(write_pairs(tmp_path / "train.jsonl", rows))
    common = {"train": train, "max_steps": 2, "batch_size": 2, "max_length": 64, "report_to": "tensorboard"}
    res = align(
        AlignConfig(**common, policy=tiny_causal_lm_dir, output=str(tmp_path / "al"), weighting="confidence")
    )
    out = Path(res["output"])
    scalars = _scalars(_only_run(out))
    logged = json.loads((out / "metrics.json").read_text())["steps"]
    # the same per-step values the run recorded in metrics.json, the weighted loss and the weights
    assert [s for s, _ in scalars["train/loss"]] == [1, 2]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([s["loss"] for s in logged], rel=1e-6)
    assert [v for _, v in scalars["train/weight/mean"]] == pytest.approx([0.15, 0.35], rel=1e-6)
    assert not (out / "checkpoints" / "runs").exists()  # moved beside the model, outlives checkpoints
    manifest = json.loads((out / "manifest.json").read_text())
    assert any(f.startswith("runs/") for f in manifest["files"])  # --overwrite may remove them

    res = sft(SFTConfig(**common, model=tiny_causal_lm_dir, output=str(tmp_path / "sft")))
    assert [s for s, _ in _scalars(_only_run(Path(res["output"])))["train/loss"]] == [1, 2]


def test_report_to_passes_through_and_is_checked(tmp_path, monkeypatch):
    from transformers.integrations import integration_utils

    def cfg(report_to):
        return SFTConfig(train="t.jsonl", output=str(tmp_path / "o"), report_to=report_to)

    assert trainer_common_kwargs(cfg("none"), tmp_path, autocast=False)["report_to"] == "none"
    with pytest.raises(ConfigError, match="report_to: unknown tensorbord; use none, all or some of"):
        cfg("tensorbord")
    if "wandb" not in integration_utils.get_available_reporting_integrations():
        with pytest.raises(ConfigError, match=r"report_to: wandb is not installed \(pip install wandb\)"):
            cfg("wandb")
    # where the trackers are installed, the list reaches the Trainer as given
    monkeypatch.setattr(
        integration_utils, "get_available_reporting_integrations", lambda: ["tensorboard", "trackio", "wandb"]
    )
    kwargs = trainer_common_kwargs(cfg("tensorboard, trackio,wandb"), tmp_path, autocast=False)
    assert kwargs["report_to"] == ["tensorboard", "trackio", "wandb"]


def test_recipes_take_report_to_without_changing_stage_keys(tmp_path):
    from cwpo.experiments.point_runner import decided_precision
    from cwpo.experiments.recipe import Recipe, validate

    recipe = Recipe(
        data={"source": "pairs.jsonl"},
        sft={"report_to": "tensorboard", "lr": 1e-4},
        align={"report_to": "tensorboard"},
    )
    assert validate(recipe) == []
    assert decided_precision(recipe.sft) == decided_precision({"lr": 1e-4})  # a cached stage is reused


def test_a_run_killed_before_its_first_checkpoint_leaves_only_its_events(tmp_path):
    from cwpo.align.stage_output import checkpoint_to_resume

    out = tmp_path / "o"
    work, resume_from = checkpoint_to_resume(out, resume=False, stage="align")
    assert resume_from is None and work.parent == tmp_path and not out.exists()
    events = work / "checkpoints" / "runs" / "Dec06_01-00-00_host"  # what a killed run leaves
    events.mkdir(parents=True)
    (events / "events.out.tfevents.1.host.1.0").write_bytes(b"x")
    again, resume_from = checkpoint_to_resume(out, resume=False, stage="align")
    assert again == work and resume_from is None
    assert not (work / "checkpoints").exists()  # nothing to resume: cwpo's own scratch is cleared
    mine = out / "checkpoints" / "runs" / "Dec06_01-00-00_host"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(CWPOError, match="not a cwpo `align` output"):
        checkpoint_to_resume(out, resume=False, stage="align")
    assert (mine / "notes.txt").exists()
