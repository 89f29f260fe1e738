"""Benchmark track 2: HH-RLHF with real human labels (configs/cpu/hh.yaml).

Weak-annotator accuracy and confidence against accuracy, and the strong model's preference accuracy
on held-out human pairs for every method. Writes benchmarks/results/hh.json and the report under
benchmarks/report/hh.

    .venv/bin/python benchmarks/hh.py [--runs runs/bench]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import write_result  # noqa: E402

from cwpo.experiments.pipeline import run_recipe  # noqa: E402
from cwpo.experiments.report import write_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def confidence_bins(annotated: list[str], bins: int = 5) -> list[dict]:
    """Accuracy of the weak labels against the human labels by confidence quintile (files pooled)."""
    rows = [
        json.loads(line) for path in annotated for line in Path(path).read_text().splitlines() if line.strip()
    ]
    conf = np.array([r["confidence"] for r in rows])
    agree = np.array([float(r["human_agrees"]) for r in rows])
    edges = np.quantile(conf, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    return [
        {
            "bin": b + 1,
            "confidence_mean": float(conf[idx == b].mean()),
            "accuracy": float(agree[idx == b].mean()),
            "n": int((idx == b).sum()),
        }
        for b in range(bins)
        if (idx == b).any()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default=str(REPO / "runs" / "bench"), help="results and stage cache folder")
    args = parser.parse_args()
    start = time.time()
    runs = Path(args.runs)
    res = run_recipe(REPO / "configs/cpu/hh.yaml", runs / "hh", progress=False, stages_dir=runs / "cache")
    metrics: dict = {}
    for g in res["summary"]:
        m = g["method"]
        metrics[f"pref_acc_{m}"] = g.get("pref_acc")
        metrics[f"pref_acc_{m}_std"] = g.get("pref_acc_seed_std")
        metrics[f"pref_acc_{m}_subset_std"] = g.get("pref_acc_subset_std")
        metrics[f"pref_acc_{m}_n_seeds"] = g.get("n_seeds")
    # one annotator per seed: every method row of a seed carries the same annotator numbers
    per_seed = {row["seed"]: row for row in res["rows"]}
    for key, name in (
        ("annotator_eval_acc", "annotator_heldout_acc"),
        ("annotator_eval_acc_top30", "annotator_heldout_acc_top30"),
        ("weak_label_acc", "weak_label_acc_on_du"),
    ):
        vals = [r[key] for r in per_seed.values() if r.get(key) is not None]
        metrics[name] = float(np.mean(vals)) if vals else None
        metrics[f"{name}_by_seed"] = {str(s): r.get(key) for s, r in sorted(per_seed.items())}
    metrics["weak_label_acc_by_confidence_quintile"] = confidence_bins(
        [r["annotated"] for r in per_seed.values()]
    )
    metrics["n_test_pairs_per_seed"] = res["rows"][0].get("pref_acc_n")
    metrics["n_seeds"] = len(per_seed)
    report = write_report(runs / "hh", REPO / "benchmarks" / "report" / "hh")
    write_result(
        "hh",
        metrics,
        start,
        recipe="configs/cpu/hh.yaml",
        report=str(report.relative_to(REPO)),
        std_note=(
            "pref_acc_<method>_std is the std over seeds (each seed: its own split, annotator and runs); "
            "pref_acc_<method>_subset_std is the mean over seeds of the std over three disjoint test subsets"
        ),
    )
    print(f"wrote benchmarks/results/hh.json; report {report}")


if __name__ == "__main__":
    main()
