"""The runner end to end on tiny models: every stage, caching, invalidation, report."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cwpo.experiments import pipeline, point_runner
from cwpo.experiments.recipe import Recipe
from cwpo.experiments.report import write_report


def _pairs_file(path, n=48, tweak=""):
    rows = []
    for i in range(n):
        good, bad = f" Sure, here is a kind and helpful answer number {i}.{tweak}", f" No. {i}"
        rows.append({"prompt": f"\n\nHuman: question {i}?\n\nAssistant:", "chosen": good, "rejected": bad})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _recipe(src, strong, encoder, methods=("human", "ws", "cw")) -> Recipe:
    tiny = {"max_steps": 2, "batch_size": 4, "max_length": 64, "save_steps": 1000}
    return Recipe(
        name="tiny",
        track="pairs",
        strong_model=strong,
        seeds=[0],
        methods=list(methods),
        data={"source": str(src), "labeled_frac": 0.3, "test_frac": 0.25, "max_tokens": 0},
        annotator={
            "backbone": encoder,
            "epochs": 1,
            "batch_size": 8,
            "max_length": 64,
            "progress": False,
            "bf16": False,
        },
        annotate={"batch_size": 16},
        sft=tiny,
        align={**tiny, "beta": 0.1},
        evaluate={"batch_size": 8, "max_length": 64, "n_boot": 50},
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_causal_lm_dir, tiny_encoder_dir):
    tmp = tmp_path_factory.mktemp("run")
    src = _pairs_file(tmp / "pairs.jsonl")
    recipe = _recipe(src, tiny_causal_lm_dir, tiny_encoder_dir)
    result = pipeline.run_recipe(recipe, tmp / "results", progress=False)
    return tmp, src, recipe, result


def test_every_method_has_a_result_row(tiny_run):
    tmp, _, _, result = tiny_run
    rows = result["rows"]
    assert [r["method"] for r in rows] == ["human", "ws", "cw"]
    for r in rows:
        assert 0.0 <= r["pref_acc"] <= 1.0
        assert r["annotator_eval_acc"] is not None and r["weak_label_acc"] is not None
    assert [r["weighting"] for r in rows] == ["none", "none", "confidence"]
    for r in rows:
        # what the trainer saw: the weight of every batch and the loss with and without it
        metrics = json.loads((Path(r["policy_dir"]) / "metrics.json").read_text())
        steps = metrics["steps"]
        assert len(steps) == 2
        if r["method"] == "cw":  # confidences in [0, 1): the weighted loss E[w·l] is below E[l]
            assert 0 < metrics["summary"]["weight_mean"] < 1
            assert all(0 < s["weight/mean"] < 1 for s in steps)
            assert all(s["loss"] < s["loss/unweighted"] - 1e-4 for s in steps)
        else:  # weight 1 everywhere: the loss is the unweighted one
            assert metrics["summary"]["weight_mean"] == 1.0
            assert all(s["weight/mean"] == 1.0 for s in steps)
            assert all(s["loss"] == pytest.approx(s["loss/unweighted"], rel=1e-5) for s in steps)
    results = tmp / "results"
    assert (results / "recipe.yaml").exists() and (results / "summary.json").exists()
    assert "stage data" in (results / "logs" / "run.log").read_text()
    manifests = list((results / "stages").glob("*/manifest.json"))
    # data, annotator, annotate, sft, 3 x align, 3 x evaluate
    assert len(manifests) == 10
    assert not list((results / "work").glob("*/*"))  # scratch of finished stages is gone


def test_rerun_redoes_nothing(tiny_run, monkeypatch):
    tmp, _, recipe, first = tiny_run

    def forbidden(*args, **kwargs):
        raise AssertionError("a cached stage ran again")

    import importlib

    # the packages re-export these names, so patch the modules themselves
    monkeypatch.setattr(importlib.import_module("cwpo.align.align"), "align", forbidden)
    monkeypatch.setattr(importlib.import_module("cwpo.annotator.train"), "train_annotator", forbidden)
    again = pipeline.run_recipe(recipe, tmp / "results", progress=False)
    assert [r["pref_acc"] for r in again["rows"]] == [r["pref_acc"] for r in first["rows"]]


def test_changed_input_invalidates_downstream(tiny_run, tiny_causal_lm_dir, tiny_encoder_dir):
    tmp, _, _, first = tiny_run
    src2 = _pairs_file(tmp / "pairs2.jsonl", tweak=" Really.")
    recipe = _recipe(src2, tiny_causal_lm_dir, tiny_encoder_dir, methods=("cw",))
    result = pipeline.run_recipe(recipe, tmp / "results", progress=False, overwrite=True)  # other settings
    new_dir = result["rows"][0]["policy_dir"]
    old_dir = next(r["policy_dir"] for r in first["rows"] if r["method"] == "cw")
    assert new_dir != old_dir


def test_report_from_results(tiny_run):
    tmp, _, _, _ = tiny_run
    report = write_report(tmp / "results")
    text = report.read_text()
    assert "Preference accuracy" in text and "| cw |" in text and "Where the paper's claims held" in text
    for png in ("confidence_hist.png", "accuracy_by_confidence.png", "pref_acc_by_method.png"):
        assert (report.parent / png).read_bytes()[:4] == b"\x89PNG"


def test_sentiment_track_tiny(tmp_path, imdb_dir, tiny_causal_lm_dir, tiny_encoder_dir):
    tiny = {"max_steps": 1, "batch_size": 4, "max_length": 48, "save_steps": 1000}
    recipe = Recipe(
        name="tiny-sentiment",
        track="sentiment",
        strong_model=tiny_causal_lm_dir,
        seeds=[0],
        methods=["human", "cw"],
        sentiment={
            "imdb": str(imdb_dir),
            "n_sft_texts": 8,
            "sft_response_words": 6,
            "n_prompts": 24,
            "n_test_prompts": 6,
            "prompt_words": 5,
            "max_new_tokens": 6,
            "human_temperature": 0.1,
            "batch_size": 8,
        },
        annotator={
            "backbone": tiny_encoder_dir,
            "epochs": 1,
            "batch_size": 4,
            "max_length": 48,
            "progress": False,
            "bf16": False,
        },
        sft=tiny,
        align=tiny,
        evaluate={"batch_size": 8, "n_boot": 50},
    )
    result = pipeline.run_recipe(recipe, tmp_path / "results", progress=False)
    for row in result["rows"]:
        assert 0.0 <= row["gra"] <= 1.0 and row["gra_n"] == 6
    labels = next((tmp_path / "results" / "stages").glob("labels-*"))
    meta = json.loads((labels / "manifest.json").read_text())["metrics"]
    assert 0.5 <= meta["human_gold_agreement"] <= 1.0


def test_annotator_only_study_over_poison_levels(tmp_path, tiny_causal_lm_dir, tiny_encoder_dir):
    """The robustness recipes' shape: no strong model, one row per grid point, curves in the report."""
    src = tmp_path / "pairs.jsonl"
    rows = []
    for i in range(48):
        source = "harmless-base/test.jsonl.gz" if i % 2 else "helpful-base/test.jsonl.gz"
        rows.append(
            {"prompt": f"q {i}?", "chosen": f" a kind answer {i}", "rejected": f" no {i}", "source": source}
        )
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = _recipe(src, tiny_causal_lm_dir, tiny_encoder_dir)
    recipe.annotator_only = True
    recipe.grid = {"data.poison_frac": [0.0, 0.5]}
    result = pipeline.run_recipe(recipe, tmp_path / "results", progress=False)
    assert [(r["method"], r["data.poison_frac"]) for r in result["rows"]] == [
        ("annotator", 0.0),
        ("annotator", 0.5),
    ]
    assert result["rows"][1]["data_stats"]["poisoned"] == 6  # half of D_l's 11 pairs (0.3 x 36), rounded
    assert all(r["weak_label_acc"] is not None and r["mean_confidence"] is not None for r in result["rows"])
    assert not list((tmp_path / "results" / "stages").glob("align-*"))  # no strong model trained
    manifest = json.loads((tmp_path / "results" / "manifest.json").read_text())
    assert {"results.jsonl", "summary.json", "recipe.yaml"} <= set(manifest["files"])  # listed at the end
    assert manifest["metrics"] == {"rows": 2, "grid_points": 2}
    report = write_report(tmp_path / "results").read_text()
    assert "| poison_frac | seeds |" in report and "weak_label_acc_vs_poison_frac.png" in report
    assert (tmp_path / "results" / "report" / "weak_label_acc_vs_poison_frac.png").exists()
    assert str(tmp_path) not in report  # no machine path in a report


def test_annotator_only_study_over_labeled_mixes(tmp_path, tiny_causal_lm_dir, tiny_encoder_dir):
    """robustness-imbalanced.yaml's shape: a dict grid value (data.labeled_mix) runs, summarizes
    and reports (it crashed after its stages with 'unhashable type: dict')."""
    src = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": f"q {i}?", "chosen": f" a kind answer {i}", "rejected": f" no {i}",
         "source": "harmless-base/test.jsonl.gz" if i % 2 else "helpful-base/test.jsonl.gz"}
        for i in range(60)
    ]  # fmt: skip
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = _recipe(src, tiny_causal_lm_dir, tiny_encoder_dir)
    recipe.annotator_only = True
    recipe.grid = {"data.labeled_mix": [None, {"harmless": 1.0}]}
    result = pipeline.run_recipe(recipe, tmp_path / "results", progress=False)
    assert [r["data.labeled_mix"] for r in result["rows"]] == [None, {"harmless": 1.0}]
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert [g["data.labeled_mix"] for g in summary["groups"]] == [None, {"harmless": 1.0}]
    report = write_report(tmp_path / "results").read_text()
    assert "| labeled_mix | seeds |" in report and "| harmless=1 |" in report


def test_sentiment_v2_shares_pool_and_prompts_across_seeds(
    tmp_path, imdb_dir, tiny_causal_lm_dir, tiny_encoder_dir
):
    """pool_seed: one SFT model and one pair pool for every seed; eval_set: one fixed prompt set."""
    tiny = {"max_steps": 1, "batch_size": 4, "max_length": 48, "save_steps": 1000}
    recipe = Recipe(
        name="tiny-sentiment-v2",
        track="sentiment",
        strong_model=tiny_causal_lm_dir,
        seeds=[0, 1],
        methods=["human", "human_dl"],
        sft_data="labeled",
        sentiment={
            "imdb": str(imdb_dir),
            "n_sft_texts": 8,
            "sft_response_words": 6,
            "n_prompts": 24,
            "n_test_prompts": 6,
            "n_val_prompts": 3,
            "eval_set": "test",
            "pool_seed": 0,
            "prompt_words": 5,
            "max_new_tokens": 6,
            "human_temperature": 0.0,
            "batch_size": 8,
        },
        sft=tiny,
        align=tiny,
        evaluate={"batch_size": 8, "n_boot": 50},
    )
    result = pipeline.run_recipe(recipe, tmp_path / "results", progress=False)
    stages = tmp_path / "results" / "stages"
    assert len(list(stages.glob("sft-*"))) == 1 and len(list(stages.glob("pairs-*"))) == 1
    assert len(list(stages.glob("prompts-*"))) == 1 and len(list(stages.glob("labels-*"))) == 2
    prompts = [
        json.loads(x)["prompt"] for x in next(stages.glob("prompts-*")).joinpath("prompts.jsonl").open()
    ]
    assert len(prompts) == 6
    rows = {(r["seed"], r["method"]): r for r in result["rows"]}
    assert set(rows) == {(s, m) for s in (0, 1) for m in ("human", "human_dl")}
    for r in rows.values():
        evaluated = [json.loads(x)["prompt"] for x in (Path(r["eval_dir"]) / "rows.jsonl").open()]
        assert evaluated == prompts
    # human_dl trains on D_l alone: its align stage differs from human's on the same seed
    assert rows[(0, "human")]["policy_dir"] != rows[(0, "human_dl")]["policy_dir"]
    # the report's claims are paired over prompts and seeds, with an MDE per comparison
    report = write_report(tmp_path / "results").read_text()
    assert "## Evidence" in report and "| human_dl |" in report and "MDE" in report
    assert (tmp_path / "results" / "report" / "gra_ci.png").read_bytes()[:4] == b"\x89PNG"
    # the same policies on the validation prompts: new evaluations (the prompts key them), same training
    recipe.sentiment["eval_set"] = "val"
    recipe.seeds = [0]
    again = pipeline.run_recipe(
        recipe, tmp_path / "results-val", progress=False, stages_dir=tmp_path / "results"
    )
    for r in again["rows"]:
        assert r["policy_dir"] == rows[(0, r["method"])]["policy_dir"]
        evaluated = [json.loads(x)["prompt"] for x in (Path(r["eval_dir"]) / "rows.jsonl").open()]
        assert len(evaluated) == 3 and not set(evaluated) & set(prompts)


def test_sentiment_on_hh_prompts_without_sft(tmp_path, tiny_causal_lm_dir, caplog):
    """HH-RLHF first turns as prompts (the embedded MIT slice), no SFT: the strong model is the reference."""
    tiny = {"max_steps": 1, "batch_size": 4, "max_length": 64, "save_steps": 1000}
    recipe = Recipe(
        name="tiny-sentiment-hh",
        track="sentiment",
        strong_model=tiny_causal_lm_dir,
        seeds=[0],
        methods=["human"],
        sft_data="labeled",
        sentiment={
            "prompt_source": "cwpo:hh-rlhf-slice",
            "n_sft_texts": 0,
            "n_prompts": 16,
            "n_test_prompts": 6,
            "n_val_prompts": 3,
            "eval_set": "test",
            "pool_seed": 0,
            "max_new_tokens": 6,
            "human_temperature": 0.0,
            "batch_size": 8,
        },
        align=tiny,
        evaluate={"batch_size": 8, "n_boot": 50},
    )
    with caplog.at_level(logging.INFO, logger="cwpo.stage"):
        result = pipeline.run_recipe(recipe, tmp_path / "results", progress=False)
    (row,) = result["rows"]
    assert row["gra_n"] == 6
    stage_lines = [r.getMessage() for r in caplog.records if r.name == "cwpo.stage"]
    assert any(
        ln.startswith("sft ") and "no SFT: the strong model is the reference" in ln for ln in stage_lines
    )
    assert any(ln.startswith("prompts ") and "the fixed evaluation prompts" in ln for ln in stage_lines)
    sft = next((tmp_path / "results" / "stages").glob("sft-*"))
    assert json.loads((sft / "manifest.json").read_text())["metrics"]["sft_steps"] == 0
    pairs = next((tmp_path / "results" / "stages").glob("pairs-*")) / "pairs.jsonl"
    assert all(json.loads(x)["prompt"].startswith("\n\nHuman: ") for x in pairs.open())


@pytest.mark.parametrize("env, bf16, dtype", [("1", True, "bfloat16"), ("0", False, "float32")])
def test_stage_keys_hold_the_decided_precision_not_auto(monkeypatch, env, bf16, dtype):
    """bf16/dtype ``auto`` enter a stage key as what this machine decided (a cache shared with a
    machine that decides otherwise never serves a stage computed at the other precision)."""
    monkeypatch.setenv("CWPO_BF16", env)
    assert point_runner.decided_precision({"bf16": "auto", "lr": 1e-3}) == {"bf16": bf16, "lr": 1e-3}
    assert point_runner.decided_precision({"dtype": "auto", "batch_size": 64}) == {
        "dtype": dtype,
        "batch_size": 64,
    }
    assert point_runner.decided_precision({"dtype": "float32"}) == {"dtype": "float32"}
    assert point_runner.decided_precision({"bf16": True}) == {"bf16": True}


def test_cache_only_returns_finished_methods_and_computes_nothing(
    tiny_run, monkeypatch, tiny_causal_lm_dir, tiny_encoder_dir
):
    """An interim look at a run under way: the (point, method) pairs whose stages are all cached."""
    tmp, src, _, first = tiny_run
    import importlib

    def forbidden(*args, **kwargs):
        raise AssertionError("cache_only computed a stage")

    monkeypatch.setattr(importlib.import_module("cwpo.align.align"), "align", forbidden)
    monkeypatch.setattr(importlib.import_module("cwpo.annotator.train"), "train_annotator", forbidden)
    recipe = _recipe(src, tiny_causal_lm_dir, tiny_encoder_dir, methods=("human", "top30", "cw"))
    res = pipeline.run_recipe(
        recipe, tmp / "interim", progress=False, stages_dir=tmp / "results", cache_only=True
    )
    assert [r["method"] for r in res["rows"]] == ["human", "cw"]  # top30 never ran
    by_method = {r["method"]: r["pref_acc"] for r in first["rows"]}
    assert [r["pref_acc"] for r in res["rows"]] == [by_method["human"], by_method["cw"]]
    empty = pipeline.run_recipe(
        recipe, tmp / "interim2", progress=False, stages_dir=tmp / "empty", cache_only=True
    )
    assert empty["rows"] == []
    # the flag ends with the run: the next run computes again
    from cwpo.experiments.cache import CACHE_ONLY

    assert CACHE_ONLY.get() is False
