"""Pushing to the hub, tested up to the network: the Trainer's push reaches huggingface_hub's
``HfApi.create_repo`` / ``upload_folder`` (replaced here) with the final adapter, whose config
names its base by hub id, while the local copy keeps its absolute base."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest

from cwpo.align import AlignConfig, SFTConfig, align
from cwpo.align.training_args import trainer_common_kwargs
from cwpo.data.schema import write_pairs
from cwpo.errors import ConfigError


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """HfApi's repository creation and upload, recorded; each upload's folder is copied as it was."""
    calls = {"create": [], "upload": []}

    def create_repo(self, repo_id, **kwargs):
        calls["create"].append(repo_id)
        return SimpleNamespace(repo_id=repo_id)

    def upload_folder(self, *, repo_id, folder_path, ignore_patterns=None, **kwargs):
        snapshot = tmp_path / f"uploaded-{len(calls['upload'])}"
        shutil.copytree(folder_path, snapshot, ignore=shutil.ignore_patterns(*(ignore_patterns or [])))
        calls["upload"].append({"repo_id": repo_id, "folder": snapshot})

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    return calls


def _train(tmp_path, labeled_rows) -> str:
    return str(write_pairs(tmp_path / "train.jsonl", [dict(r, confidence=0.5) for r in labeled_rows[:2]]))


def test_push_uploads_the_final_adapter_naming_its_hub_base(
    tmp_path, labeled_rows, tiny_causal_lm_dir, fake_hub
):
    out = tmp_path / "cw"
    align(
        AlignConfig(
            train=_train(tmp_path, labeled_rows), policy=tiny_causal_lm_dir, output=str(out), max_steps=1,
            batch_size=2, max_length=64, save_steps=1, weighting="confidence", push_to_hub=True,
            hub_model_id="me/cw-adapter", hub_base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        )
    )  # fmt: skip
    assert fake_hub["create"] == ["me/cw-adapter"]
    assert [u["repo_id"] for u in fake_hub["upload"]] == ["me/cw-adapter"]  # the end only, no checkpoints
    pushed = fake_hub["upload"][0]["folder"]
    names = {p.name for p in pushed.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= names
    assert not any(n.startswith("checkpoint-") for n in names)
    pushed_cfg = json.loads((pushed / "adapter_config.json").read_text())
    assert pushed_cfg["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    local_cfg = json.loads((out / "adapter_config.json").read_text())
    assert local_cfg["base_model_name_or_path"] == str(Path(tiny_causal_lm_dir).resolve())
    # the pushed adapter is the trained one
    assert (pushed / "adapter_model.safetensors").read_bytes() == (
        out / "adapter_model.safetensors"
    ).read_bytes()


def test_a_local_base_is_refused_before_any_work(tmp_path, labeled_rows, tiny_causal_lm_dir, fake_hub):
    out = tmp_path / "sft"
    cfg = SFTConfig(
        train=_train(tmp_path, labeled_rows), model=tiny_causal_lm_dir, output=str(out), max_steps=1,
        push_to_hub=True,
    )  # fmt: skip
    from cwpo.align import sft

    with pytest.raises(ConfigError, match="is a local model.*--hub-base-model OWNER/NAME"):
        sft(cfg)
    assert not out.exists() and not fake_hub["create"]


def test_hub_settings_reach_the_trainer_and_are_checked(tmp_path):
    base = {"train": "t.jsonl", "output": str(tmp_path / "my-sft")}
    kwargs = trainer_common_kwargs(SFTConfig(**base, push_to_hub=True), tmp_path, autocast=False)
    assert (kwargs["push_to_hub"], kwargs["hub_model_id"], kwargs["hub_strategy"]) == (True, "my-sft", "end")
    assert trainer_common_kwargs(SFTConfig(**base), tmp_path, autocast=False)["push_to_hub"] is False
    with pytest.raises(ConfigError, match="only apply with push_to_hub"):
        SFTConfig(**base, hub_model_id="me/x")
    with pytest.raises(ConfigError, match="hub_base_model must be a hub id"):
        SFTConfig(**base, push_to_hub=True, hub_base_model="./local")
    with pytest.raises(ConfigError, match="hub_model_id must be NAME or OWNER/NAME"):
        SFTConfig(**base, push_to_hub=True, hub_model_id="a/b/c")


@pytest.mark.parametrize("stage", ["sft", "align"])
def test_cli_has_the_hub_and_memory_flags(stage):
    import argparse
    import importlib

    parser = argparse.ArgumentParser()
    importlib.import_module(f"cwpo.cli.{stage}").configure(parser)
    args = parser.parse_args(
        ["--push-to-hub", "true", "--hub-model-id", "me/m", "--hub-base-model", "o/b"]
        + ["--activation-checkpointing", "true", "--load-in-4bit", "false", "--report-to", "tensorboard"]
    )
    assert (args.push_to_hub, args.hub_model_id, args.hub_base_model) == (True, "me/m", "o/b")
    assert (args.activation_checkpointing, args.report_to) == (True, "tensorboard")
    parser.format_help()  # every help text formats (a stray % in one breaks --help)
