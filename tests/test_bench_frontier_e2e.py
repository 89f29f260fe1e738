"""The frontier bench end to end on tiny models: run (data, annotator, align with snapshots, scoring)
then analyze, in a temporary cache and results folder."""

import json

import pytest
import yaml

from benchmarks.frontier import analyze, run


@pytest.mark.slow  # tiny models, but about 25 model loads: 20-110 s depending on the machine's load
def test_run_then_analyze_on_tiny_models(
    tmp_path, imdb_dir, tiny_causal_lm_dir, tiny_encoder_dir, monkeypatch
):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # `--archive ''` means no archive, not the working folder
    tiny = {"batch_size": 4, "max_length": 48, "save_steps": 1000, "lr": 1e-2}
    recipe = {
        "name": "tiny-frontier",
        "track": "sentiment",
        "strong_model": tiny_causal_lm_dir,
        "seeds": [0],
        "methods": ["human"],
        "sentiment": {
            "imdb": str(imdb_dir), "n_sft_texts": 8, "sft_response_words": 6, "n_prompts": 24,
            "n_test_prompts": 6, "n_val_prompts": 3, "eval_set": "test", "pool_seed": 0, "prompt_words": 5,
            "max_new_tokens": 6, "human_temperature": 0.0, "batch_size": 8, "gold": "vader",
        },
        "annotator": {"backbone": tiny_encoder_dir, "epochs": 1, "batch_size": 4, "max_length": 48,
                      "progress": False, "bf16": False},
        "sft": {**tiny, "max_steps": 1},
        "align": {**tiny, "epochs": 1},
    }  # fmt: skip
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    plan = yaml.safe_load((run.HERE / "plan.yaml").read_text())
    plan.update(
        recipe=str(tmp_path / "recipe.yaml"),
        checkpoints=[0.5, 1.0],
        grid={"lr": [1e-2], "epochs": 1},
        eval={"n_val_prompts": 3, "n_test_prompts": 6, "n_samples": 1, "max_new_tokens": 6,
              "temperature": 1.0, "batch_size": 8, "second_gold": "afinn", "dtype": "float32",
              "attn_implementation": "sdpa"},
    )  # fmt: skip
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    results, cache = tmp_path / "results", tmp_path / "cache"
    common = [
        "--plan",
        str(tmp_path / "plan.yaml"),
        "--cache",
        str(cache),
        "--archive",
        "",
        "--results",
        str(results),
    ]
    argv = ["--regime", "crowd_bt", "--methods", "human", "cw", "--seeds", "0", "--lrs", "1e-2", *common]
    assert run.main(argv) == 0
    assert not list(work.iterdir())
    points = [json.loads(x) for x in (results / "points.jsonl").read_text().splitlines()]
    # step 0 (the SFT model) and two snapshots (0.5 and 1 epoch), each on val and test, for both methods
    for m in ("cw", "human"):
        mine = [p for p in points if p["method"] == m]
        steps = sorted({p["step"] for p in mine})
        assert len(steps) == 3 and steps[0] == 0 and len(mine) == 6
        assert sorted(p["epochs"] for p in mine if p["split"] == "test") == [0.0, 0.5, 1.0]
    sft_points = [p for p in points if p["step"] == 0]
    assert all(
        p["kl"] == 0.0 and 0.0 <= p["gra"] <= 1.0 for p in sft_points
    )  # GRA: an independent SFT sample
    assert len({p["sft_sha"] for p in points}) == 1
    assert 0.6 < points[0]["human_gold_agreement"] < 0.8  # the BT crowd near its 67.5% target
    stats = json.loads((results / "label_stats.json").read_text())["crowd_bt/0"]
    assert stats["n_pairs"] > 0 and "corr_c_gold_gap" in stats
    # a second run finds every stage cached and adds nothing new
    assert run.main(argv) == 0
    assert len((results / "points.jsonl").read_text().splitlines()) == len(points)
    report = tmp_path / "report"
    argv_an = ["--cache", str(cache), "--results", str(results), "--levels", "2", "--report", str(report)]
    assert analyze.main(argv_an) == 0
    assert (report / "frontier-crowd_bt.png").stat().st_size > 0
    out = json.loads((results / "frontier.json").read_text())["metrics"]
    r = out["regimes"]["crowd_bt"]
    assert len(r["frontier"]["cw"]) == 3 and r["tuned"]["chosen"]["cw"]["lr"] == 1e-2
    assert out["stats"]["multiplicity"] == "holm" and "cw" in r["fluency"] and "cw" in r["second_gold"]

    # D_u labelled by another annotator (an active-labelling round): its own align stage and name
    (own,) = cache.glob("stages/annotate-*/annotated.jsonl")
    ext = tmp_path / "round"
    ext.mkdir()
    rows = [json.loads(x) for x in own.read_text().splitlines()]
    ext_rows = [{**x, "confidence": 0.25 + 0.5 * (i % 2)} for i, x in enumerate(rows)]
    (ext / "annotated.jsonl").write_text("".join(json.dumps(x) + "\n" for x in ext_rows))
    argv_ext = [
        "--regime",
        "crowd_bt",
        "--methods",
        "cw",
        "--seeds",
        "0",
        "--lrs",
        "1e-2",
        "--splits",
        "test",
    ]
    assert run.main([*argv_ext, "--annotation", str(ext), *common]) == 2  # no --tag
    assert run.main([*argv_ext, "--annotation", str(ext), "--tag", "round", *common]) == 0
    points = [json.loads(x) for x in (results / "points.jsonl").read_text().splitlines()]
    theirs = [p for p in points if p["method"] == "cw@round"]
    assert (
        len(theirs) == 3 and min(p["step"] for p in theirs) == 0 and {p["split"] for p in theirs} == {"test"}
    )
    cw_stage = next(p["align_stage"] for p in points if p["method"] == "cw")
    assert theirs[-1]["align_stage"] != cw_stage  # trained on the other annotation, not reused
    assert "crowd_bt/0/round" in json.loads((results / "label_stats.json").read_text())
    # another round's annotation (other weights) is another training run, whatever the folder
    (ext / "annotated.jsonl").write_text("".join(json.dumps({**x, "confidence": 0.9}) + "\n" for x in rows))
    assert run.main([*argv_ext, "--annotation", str(ext), "--tag", "round2", *common]) == 0
    points = [json.loads(x) for x in (results / "points.jsonl").read_text().splitlines()]
    second = next(p["align_stage"] for p in points if p["method"] == "cw@round2" and p["step"])
    assert second != theirs[-1]["align_stage"]


def test_bad_arguments_exit_2(capsys):
    assert run.main(["--regime", "nope", "--methods", "cw", "--seeds", "0", "--lrs", "1e-3"]) == 2
    assert "unknown ['nope']" in capsys.readouterr().err
