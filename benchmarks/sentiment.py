"""Benchmark track 1: controlled sentiment (IMDb prompts, VADER gold, simulated BT annotators).

Runs configs/cpu/sentiment.yaml (every method at human noise T = 0.1, three seeds) and
configs/cpu/sentiment-noise.yaml (Human/WS/CW at T in {0, 0.1, 0.3}, three seeds) with one shared
stage cache, writes benchmarks/results/sentiment.json and the report under benchmarks/report/sentiment.

    .venv/bin/python benchmarks/sentiment.py [--runs runs/bench]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result  # noqa: E402

from cwpo.experiments.pipeline import run_recipe  # noqa: E402
from cwpo.experiments.report import write_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default=str(REPO / "runs" / "bench"), help="results and stage cache folder")
    args = parser.parse_args()
    start = time.time()
    runs = Path(args.runs)
    cache = runs / "cache"
    main_res = run_recipe(
        REPO / "configs/cpu/sentiment.yaml", runs / "sentiment", progress=False, stages_dir=cache
    )
    noise_res = run_recipe(
        REPO / "configs/cpu/sentiment-noise.yaml", runs / "sentiment-noise", progress=False, stages_dir=cache
    )
    metrics: dict = {}
    for g in main_res["summary"]:
        m = g["method"]
        metrics[f"gra_{m}"] = g.get("gra")
        metrics[f"gra_{m}_std"] = g.get("gra_seed_std")
        metrics[f"gra_{m}_subset_std"] = g.get("gra_subset_std")
        metrics[f"gra_{m}_n_seeds"] = g.get("n_seeds")
    metrics["weak_label_acc"] = main_res["summary"][0].get("weak_label_acc")
    noise: dict = {}
    for g in noise_res["summary"]:
        t = g["sentiment.human_temperature"]
        noise.setdefault(str(t), {})[g["method"]] = {
            "gra": g.get("gra"),
            "gra_std": g.get("gra_seed_std"),
            "weak_label_acc": g.get("weak_label_acc"),
        }
    # agreement of the simulated humans with the gold, per noise level (from the labels stages)
    agreement: dict = {}
    for row in noise_res["rows"]:
        t = str(row["sentiment.human_temperature"])
        agreement.setdefault(t, set()).add(row["data_stats"].get("human_gold_agreement"))
    for t, values in agreement.items():
        vals = [v for v in values if v is not None]
        noise[t]["human_gold_agreement_mean"] = sum(vals) / len(vals) if vals else None
    metrics["noise_sweep"] = noise
    report = write_report(runs / "sentiment", REPO / "benchmarks" / "report" / "sentiment")
    noise_report = write_report(runs / "sentiment-noise", REPO / "benchmarks" / "report" / "sentiment-noise")
    write_result(
        "sentiment",
        metrics,
        start,
        recipes=["configs/cpu/sentiment.yaml", "configs/cpu/sentiment-noise.yaml"],
        reports=[str(report.relative_to(REPO)), str(noise_report.relative_to(REPO))],
    )
    print(f"wrote benchmarks/results/sentiment.json; reports {report}, {noise_report}")


if __name__ == "__main__":
    main()
