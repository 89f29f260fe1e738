"""The active-labelling and LLM-annotator benches: their crowd, their split and their report pages."""

from __future__ import annotations

from pathlib import Path

from benchmarks.annotator import active, llm_annotator
from cwpo.experiments.simulate import gold_agreement


def test_crowd_humans_are_calibrated_and_the_eval_pairs_are_never_selectable():
    rows = active.read_pool()
    pool, held = active.split(rows)
    assert len(held) == active.N_EVAL and len(pool) + len(held) == len(rows)
    assert not {(r["prompt"], r["response_a"]) for r in pool} & {(r["prompt"], r["response_a"]) for r in held}
    t = active.crowd_temperature(rows)
    labelled = active.labelled(pool, "crowd_bt", 0, t)
    agree = gold_agreement(
        [r["human_label"] for r in labelled], [r["gold_a"] for r in pool], [r["gold_b"] for r in pool]
    )
    assert abs(agree - active.CROWD_AGREEMENT) < 0.02  # one draw of the calibrated Bradley-Terry humans
    noisefree = active.labelled(pool, "noisefree", 0, t)
    assert (
        gold_agreement(
            [r["human_label"] for r in noisefree], [r["gold_a"] for r in pool], [r["gold_b"] for r in pool]
        )
        == 1.0
    )


def test_report_pages_come_from_the_metrics():
    metrics = {
        "by_regime": {"noisefree": {"10%": {"labels": 156, **{s: {"eval": [0.5, 0.6], "rest": [], "seeds": [0, 1]}
                                                            for s in active.STRATEGIES}}}},
        "claims": [{"name": "noisefree 10% uncertainty > random", "verdict": "unresolved", "p_holm": 0.4,
                    "estimate": {"mean": 0.02, "lo": -0.05, "hi": 0.09, "mde": 0.07, "n_seeds": 10}}],
        "pieces_finished": ["noisefree/random/seed0"],
    }  # fmt: skip
    page = active.render(metrics)
    assert "| noisefree | 10% (156) | 55.0 (2) |" in page and "**unresolved**, +2.0 points" in page
    assert "MDE 7.0 (10 seeds)" in page
    est = {"mean": -0.05, "lo": -0.1, "hi": 0.0}
    doc = {"logprobs": {
        "server": {"model": "smollm2"}, "n_labeled": 200, "n_eval": 300, "n_unparsed": 60,
        "llm": {"accuracy": 0.52, "ece_before_temperature": 0.3, "ece_after_temperature": 0.05, "temperature": 4.0,
                "accuracy_by_confidence_quintile": [0.5] * 5, "labels_per_second": 0.4, "requests": 1000},
        "bt": {"accuracy": 0.7, "ece": 0.1, "accuracy_by_confidence_quintile": [0.6] * 5, "labels_per_second": 5.0},
        "llm_minus_bt": {"estimate": est, "p_holm": 0.04, "verdict": "fails"},
    }}  # fmt: skip
    page = llm_annotator.render(doc, Path("llm_annotator.json"))
    # an earlier result (pairs without a verdict left out): all-pairs accuracy rebuilt, the verdict flagged
    assert (
        "| logprobs | LLM (smollm2) | 51.6 | 240/300 | 52.0 | 0.300 | 0.050 | 4 |" in page
    )  # (0.52*240 + 30) / 300
    assert (
        "LLM − BT accuracy -5.0 points [-10.0, +0.0], p 0.04: fails**, over the 240 pairs with a verdict only"
        in page
    )
    new = {
        **doc["logprobs"],
        "n_one_order": 7,
        "llm": {
            **doc["logprobs"]["llm"],
            "accuracy_all_pairs": 0.515,
            "accuracy_with_verdict": 0.52,
            "temperature": 20.0,
        },
    }
    page = llm_annotator.render({"logprobs": new}, Path("llm_annotator.json"))
    assert "| 51.5 | 240/300 | 52.0 |" in page and "20 (the fit's bound)" in page
    assert (
        "over all 300 D_u pairs (60 without a verdict, counted as coin flips; 7 with a verdict in one order"
        in page
    )
    assert "carry no signal" in page
    assert "not a speed" in page  # an earlier result's labels/s came from caches
    speed = {"bt_labels_per_second": 4.0, "bt_seconds": 125.0, "bt_labels": 500, "llm_labels_per_second": 0.25,
             "llm_timed_pairs": 20, "llm_seconds": 80.0, "bt_over_llm": 16.0, "load_average_before": [2.5, 2, 2],
             "load_average_after": [2.9, 2, 2], "cpu_count": 2}  # fmt: skip
    page = llm_annotator.render({"logprobs": {**new, "speed": speed}}, Path("llm_annotator.json"))
    assert "not a speed" not in page
    assert "load average 2.5 → 2.9 on 2 cores" in page and "BT/LLM 16×" in page


def test_holm_counts_every_planned_claim_while_some_lack_seeds(tmp_path, monkeypatch):
    """Only noisefree uncertainty has its seeds: its claim is still adjusted over the planned 4."""
    import json

    monkeypatch.setattr(active, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(active, "SEEDS", (0, 1, 2))
    monkeypatch.setattr(active, "align_claims", lambda cache=None: ({}, []))
    budgets = [round(s * len(active.split(active.read_pool())[0])) for s in active.SHARES]
    for strategy, gain in (("random", 0.0), ("uncertainty", 0.03)):
        for seed in active.SEEDS:
            for r in range(len(active.SHARES) + 1):
                acc = {"gold_accuracy": 0.7 + gain + 0.002 * seed * (r % 2)}
                metrics = {
                    "round": r,
                    "eval": acc,
                    "rest": acc,
                    **({"trained_on": budgets[r - 1]} if r else {}),
                }
                folder = active.piece_dir("noisefree", strategy, seed) / "rounds" / f"round-{r:02d}"
                folder.mkdir(parents=True)
                (folder / "round.json").write_text(json.dumps({"metrics": metrics}))
    metrics = active.summarize(0.0, tmp_path / "active.json")
    (primary,) = metrics["claims"]
    assert primary["family_size"] == active.PRIMARY_FAMILY == 4
    assert {c["family_size"] for c in metrics["secondary_claims"]} == {active.SECONDARY_FAMILY} == {12}
    from benchmarks.annotator import active_align

    assert active_align.ALIGN_FAMILY == 4  # 2 regimes x uncertainty vs random x (GRA, reward)


def test_a_piece_killed_between_its_label_files_resumes(tmp_path):
    import pytest

    from cwpo.errors import ConfigError

    rows = [{"i": 1, "human_label": 1}]
    active.keep_or_write(tmp_path / "pool.jsonl", rows)  # killed here: eval.jsonl never written
    active.keep_or_write(tmp_path / "pool.jsonl", rows)  # the re-run keeps it ...
    active.keep_or_write(tmp_path / "eval.jsonl", rows)  # ... and writes the missing one
    assert (tmp_path / "eval.jsonl").read_text() == (tmp_path / "pool.jsonl").read_text()
    with pytest.raises(ConfigError, match="other labels"):
        active.keep_or_write(tmp_path / "eval.jsonl", [{"i": 1, "human_label": 0}])
