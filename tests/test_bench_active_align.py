"""CW-DPO from active against random labelling: the budget's round is found, and the matched-KL
claims read the scored snapshots (synthetic rows with a known answer)."""

import json

import numpy as np
import pytest

from benchmarks.annotator import active_align


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_budget_round_is_the_round_trained_on_that_share(tmp_path):
    _jsonl(tmp_path / "pool.jsonl", [{"i": i} for i in range(100)])
    for r, trained in enumerate([None, 3, 10, 20, 30]):
        folder = tmp_path / "rounds" / f"round-{r:02d}"
        metrics = {"round": r, **({"trained_on": trained} if trained else {})}
        _jsonl(folder / "annotated.jsonl", [{}])
        (folder / "round.json").write_text(json.dumps({"metrics": metrics}))
    assert active_align.budget_round(tmp_path, 0.2).name == "round-03"
    assert active_align.budget_round(tmp_path, 0.3).name == "round-04"
    assert active_align.budget_round(tmp_path, 0.5) is None
    (tmp_path / "rounds" / "round-03" / "round.json").unlink()  # killed before the round finished
    assert active_align.budget_round(tmp_path, 0.2) is None


def _points(tmp_path, gain: float, seeds=(0, 1, 2), n=40):
    """Two strategies whose snapshots reach the same KL; ``uncertainty`` gains ``gain`` in gold."""
    cache, results = tmp_path / "cache", tmp_path / "results"
    index = []
    rng = np.random.default_rng(0)
    for strategy, extra in (("random", 0.0), ("uncertainty", gain)):
        for seed in seeds:
            for step, kl in ((0, 0.0), (10, 1.0), (20, 2.0), (40, 4.0)):
                stage = f"frontier-eval-{strategy}-{seed}-{step}"
                ref = rng.normal(size=n)
                gold = (
                    ref + (0.1 * kl + (extra if step else 0.0)) + rng.normal(scale=0.5, size=n) * bool(step)
                )
                rows = [
                    {"prompt_id": i, "gold": float(gold[i]), "gold_ref": float(ref[i]), "logp": kl,
                     "logp_ref": 0.0, "second": 0.0, "second_ref": 0.0}
                    for i in range(n)
                ]  # fmt: skip
                _jsonl(cache / "stages" / stage / "rows.jsonl", rows)
                index.append({"regime": "crowd_bt", "method": f"cw@{active_align.tag(strategy)}", "seed": seed,
                              "lr": active_align.LR, "step": step, "epochs": step / 40, "split": "test",
                              "stage": stage})  # fmt: skip
    _jsonl(results / "points.jsonl", index)
    return cache, results


@pytest.mark.parametrize("gain, verdict", [(1.0, "holds"), (-1.0, "fails")])
def test_matched_kl_claims_see_a_known_gain(tmp_path, gain, verdict):
    cache, results = _points(tmp_path, gain)
    metrics, claims = active_align.align_claims(results, cache, n_levels=3)
    assert sorted(c.name for c in claims) == [
        "crowd_bt 20% CW-DPO gra at matched KL: uncertainty > random",
        "crowd_bt 20% CW-DPO reward at matched KL: uncertainty > random",
    ]
    reward = next(c for c in claims if "reward" in c.name)
    assert reward.estimate.mean == pytest.approx(gain, abs=0.2)
    from cwpo.stats import judge

    assert {v["verdict"] for v in judge(claims)} == {verdict}
    frontier = metrics["by_regime"]["crowd_bt"]["frontier"]
    assert sorted(frontier) == ["cw/random", "cw/uncertainty"] and len(frontier["cw/random"]) == 4


def test_one_seed_makes_no_claim(tmp_path):
    cache, results = _points(tmp_path, 1.0, seeds=(0,))
    metrics, claims = active_align.align_claims(results, cache, n_levels=3)
    assert claims == [] and sorted(metrics["by_regime"]["crowd_bt"]["frontier"]) == [
        "cw/random",
        "cw/uncertainty",
    ]


def test_nothing_run_yet(tmp_path):
    metrics, claims = active_align.align_claims(tmp_path / "none", tmp_path)
    assert claims == [] and "no CW-DPO run" in metrics["note"]
