"""A stage cache archived without what a command rebuilds (model files, data splits) and restored
elsewhere: the run resumes and nothing reruns; a stage that needs a left-out model says so."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest
from tests.experiments.test_pipeline import _pairs_file, _recipe

from benchmarks.tracks.archived_stages import archive_stages, restore_stages
from cwpo.errors import CWPOError
from cwpo.experiments import pipeline
from cwpo.experiments.cache import LEFT_OUT, Artifact, run_stage


@pytest.fixture(scope="module")
def archived(tmp_path_factory, tiny_causal_lm_dir, tiny_encoder_dir):
    tmp = tmp_path_factory.mktemp("archive")
    recipe = _recipe(_pairs_file(tmp / "pairs.jsonl"), tiny_causal_lm_dir, tiny_encoder_dir)
    first = pipeline.run_recipe(recipe, tmp / "first", progress=False)
    summary = archive_stages(tmp / "first", tmp / "archive")
    return tmp, recipe, first, summary


def _forbid_training(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a stage restored from the archive ran again")

    for module, name in (("cwpo.align.align", "align"), ("cwpo.annotator.train", "train_annotator")):
        monkeypatch.setattr(importlib.import_module(module), name, forbidden)


def test_archive_leaves_out_model_files_and_data_splits(archived):
    tmp, _, _, summary = archived
    stages = tmp / "archive" / "stages"
    names = sorted(d.name.split("-")[0] for d in stages.iterdir())
    assert names.count("align") == 3 and names.count("evaluate") == 3 and "sft" in names and "data" in names
    stubs = sorted(s.split("-")[0] for s in summary["stubs"])
    assert stubs == ["align", "align", "align", "annotator", "data", "sft"]
    for stage in stages.iterdir():
        assert not list(stage.rglob("*.safetensors")), stage
        assert not list(stage.rglob("tokenizer*")), stage
        if stage.name.startswith(("align-", "annotator-", "sft-")):
            dropped = json.loads((stage / LEFT_OUT).read_text())["dropped"]
            assert any(d.endswith(".safetensors") for d in dropped)
        if stage.name.startswith("data-"):  # rebuilt from the recipe and the source: its manifest only
            assert sorted(f.name for f in stage.iterdir()) == [LEFT_OUT, "manifest.json"]
            assert json.loads((stage / LEFT_OUT).read_text())["recompute"] is True
        if stage.name.startswith("evaluate-"):  # the per-prompt rows an audit reads are kept
            assert list(stage.rglob("*.jsonl*")), stage
    # no absolute path of the machine it came from
    for f in stages.rglob("*.json"):
        assert str(tmp / "first") not in f.read_text(), f
    assert archive_stages(tmp / "first", tmp / "archive")["archived"] == []  # nothing new: nothing copied


def test_restored_cache_resumes_without_training(archived, monkeypatch):
    tmp, recipe, first, _ = archived
    restored = restore_stages(tmp / "archive", tmp / "cache2")
    assert len(restored) == len(list((tmp / "archive" / "stages").iterdir()))
    _forbid_training(monkeypatch)
    again = pipeline.run_recipe(recipe, tmp / "second", progress=False, stages_dir=tmp / "cache2")
    assert [r["pref_acc"] for r in again["rows"]] == [r["pref_acc"] for r in first["rows"]]
    assert all(str(tmp / "cache2") in r["eval_dir"] for r in again["rows"])
    assert restore_stages(tmp / "archive", tmp / "cache2") == []


def test_a_new_method_needs_the_left_out_sft_model_and_trains_once_it_is_deleted(
    archived, tiny_causal_lm_dir, tiny_encoder_dir
):
    tmp, recipe, first, _ = archived
    restore_stages(tmp / "archive", tmp / "cache3")
    recipe = _recipe(recipe.data["source"], tiny_causal_lm_dir, tiny_encoder_dir, methods=("cw", "top30"))
    with pytest.raises(CWPOError, match=r"stage .*needs the .*sft-\w+.*delete that folder"):
        pipeline.run_recipe(recipe, tmp / "third", progress=False, stages_dir=tmp / "cache3")
    for stub in (tmp / "cache3" / "stages").glob("sft-*"):
        shutil.rmtree(stub)  # what the message says: the SFT stage is computed again, same key
    rows = pipeline.run_recipe(recipe, tmp / "third", progress=False, stages_dir=tmp / "cache3")["rows"]
    assert [r["method"] for r in rows] == ["cw", "top30"]
    assert (
        rows[0]["pref_acc"] == next(r for r in first["rows"] if r["method"] == "cw")["pref_acc"]
    )  # archived
    assert 0.0 <= rows[1]["pref_acc"] <= 1.0


def test_a_stage_that_needs_a_stub_model_stops_with_one_line(archived, tiny_causal_lm_dir, tiny_encoder_dir):
    tmp, recipe, _, _ = archived
    restore_stages(tmp / "archive", tmp / "cache4")
    recipe = _recipe(recipe.data["source"], tiny_causal_lm_dir, tiny_encoder_dir, methods=("cw",))
    recipe.evaluate = {**recipe.evaluate, "batch_size": 4}  # a new evaluation of the archived policy
    with pytest.raises(CWPOError, match="copied without its model or data files"):
        pipeline.run_recipe(recipe, tmp / "fourth", progress=False, stages_dir=tmp / "cache4")


def test_a_stub_restored_for_rebuild_is_trained_again_when_a_new_stage_needs_it(
    archived, tiny_causal_lm_dir, tiny_encoder_dir
):
    tmp, recipe, first, _ = archived
    restore_stages(tmp / "archive", tmp / "cache5", rebuild=("sft",))
    recipe = _recipe(recipe.data["source"], tiny_causal_lm_dir, tiny_encoder_dir, methods=("cw", "top30"))
    rows = pipeline.run_recipe(recipe, tmp / "fifth", progress=False, stages_dir=tmp / "cache5")["rows"]
    assert [r["method"] for r in rows] == ["cw", "top30"]
    (sft,) = (tmp / "cache5" / "stages").glob("sft-*")
    assert not (sft / LEFT_OUT).exists() and any((sft / "model").glob("*.safetensors"))


def test_a_restore_during_the_rebuild_does_not_put_the_stub_back(archived, tmp_path):
    """Two workers of a part: one rebuilds the SFT stub while the other starts and restores the
    archive into the same cache. The rebuilt stage replaces the stub; the restore skips it."""
    tmp, _, _, _ = archived
    cache = tmp_path / "cache"
    restore_stages(tmp / "archive", cache, rebuild=("sft",))
    stub = next(s for s in (cache / "stages").glob("sft-*") if (s / LEFT_OUT).exists())
    manifest = json.loads((stub / "manifest.json").read_text())
    name, config = "sft", manifest["config"]["config"]
    inputs = {  # the stage's inputs as run_stage hands them on: their folders and content keys
        k: Artifact(Path(p), json.loads((Path(p) / "manifest.json").read_text())["inputs_hash"], {}, True)
        for k, p in manifest["config"]["inputs"].items()
    }

    def rebuild(out, work):
        assert restore_stages(tmp / "archive", cache, rebuild=("sft",)) == []  # the other worker
        (out / "model").mkdir()
        (out / "model" / "adapter_model.safetensors").write_bytes(b"weights")
        return {"rebuilt": True}

    art = run_stage(cache, name, config, inputs, rebuild)
    assert art.path == stub and art.metrics["rebuilt"] and not art.cached
    assert not (stub / LEFT_OUT).exists() and (stub / "model" / "adapter_model.safetensors").exists()
    assert run_stage(cache, name, config, inputs, rebuild).cached  # complete now: not computed again
