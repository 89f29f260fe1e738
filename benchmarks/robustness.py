"""Robustness of the weak annotator to a poisoned or imbalanced D_l (paper App. J.8), annotator side.

One --part per recipe of configs/cpu/ (all share one stage cache, so their clean level is computed
once): poison (robustness-poison.yaml: 0/10/20/40% of D_l's labels flipped), targeted
(robustness-targeted.yaml: flips on D_l's Harmless pairs only), imbalanced
(robustness-imbalanced.yaml: D_l from one subset, D_u mixed). Per level, mean and std over seeds of
the annotator's accuracy against the human labels of D_u, its held-out accuracy, top-30% accuracy,
mean confidence and ECE. Writes benchmarks/results/robustness.json (each part its own keys) and
benchmarks/report/robustness-<part>/.

    .venv/bin/python benchmarks/robustness.py --part poison|targeted|imbalanced|all [--runs DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import add_part_args, command_line, result_update, run_part  # noqa: E402

from cwpo.experiments.recipe import all_seeds, load_recipe  # noqa: E402
from cwpo.experiments.report import write_report  # noqa: E402
from cwpo.experiments.report_curves import level_label  # noqa: E402
from cwpo.io import now_iso  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARTS = {
    "poison": ("configs/cpu/robustness-poison.yaml", "data.poison_frac"),
    "targeted": ("configs/cpu/robustness-targeted.yaml", "data.poison_frac"),
    "imbalanced": ("configs/cpu/robustness-imbalanced.yaml", "data.labeled_mix"),
}
METRICS = {  # row key -> result key
    "weak_label_acc": "acc_vs_human_du",
    "annotator_eval_acc": "heldout_acc",
    "annotator_eval_acc_top30": "heldout_acc_top30",
    "mean_confidence": "mean_confidence",
    "annotator_eval_ece": "ece",
}


def part_metrics(rows: list[dict], key: str) -> dict:
    """Per level of ``key``: mean, std over seeds and per-seed values of every annotator metric."""
    by_level: dict = {}
    for r in rows:
        by_level.setdefault(level_label(r.get(key)), []).append(r)
    out = {}
    for level, members in by_level.items():
        entry = {"n_seeds": len(members)}
        for row_key, name in METRICS.items():
            vals = [float(m[row_key]) for m in members if m.get(row_key) is not None]
            entry[name] = float(np.mean(vals)) if vals else None
            entry[f"{name}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
            entry[f"{name}_per_seed"] = vals
        out[level] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_part_args(parser, list(PARTS), REPO / "runs" / "bench")
    args = parser.parse_args()
    start = time.time()
    runs = Path(args.runs)
    for part in list(PARTS) if args.part == "all" else [args.part]:
        recipe_path, key = PARTS[part]
        recipe = load_recipe(REPO / recipe_path)
        name = f"robustness-{part}"
        res = run_part(recipe, runs, name, args.seeds, args.methods, args.archive)
        if res is None:
            continue
        report = write_report(runs / name, REPO / "benchmarks" / "report" / name)
        with result_update("robustness", start) as doc:  # two parts may run as two processes side by side
            doc["metrics"][part] = part_metrics(res["rows"], key)
            doc["commands"][part] = {
                "recipe": recipe_path,
                "seeds": all_seeds(recipe),
                "command": command_line(),
                "date": now_iso(),
            }
        print(f"wrote benchmarks/results/robustness.json ({part}); report {report}")


if __name__ == "__main__":
    main()
