"""Benchmark track 1: controlled sentiment (IMDb prompts, VADER gold, simulated BT annotators).

Runs, with one shared stage cache, the recipes of configs/cpu/ (one --part each):
- main:        sentiment.yaml, every method at human noise T = 0.1, 128 prompts, three seeds;
- noise:       sentiment-noise.yaml, Human/CW at T in {0, 0.1, 0.3, 1.0}, three seeds;
- large:       sentiment-large.yaml, Human/WS/CW on a 480-prompt pool, three seeds;
- split:       sentiment-split.yaml, labeled share 10/30/50% of that pool, Human/CW, seed 0;
- large_noisy: sentiment-large-noisy.yaml, that pool with noisy humans (T = 1.0), Human/CW, three seeds.
v2 (the evidence bench: one ~2,070-pair pool, 1,000 fixed test prompts, hyper-parameters chosen once
on validation prompts; flat keys in results/sentiment.json; the v1 parts write results/sentiment-v1.json):
- v2_hp:        sentiment-v2-hp.yaml, Human-DPO noise-free on 300 validation prompts (the HP choice);
- v2_noisefree: sentiment-v2.yaml, Human/WS/CW/Human-100%, noise-free humans, 5 seeds;
- v2_crowd:     sentiment-v2-crowd.yaml, every method and weight function, crowd-like humans, 3 seeds;
- v2_split:     sentiment-v2-split.yaml, labelled share 10-50%, CW vs DPO on D_l, 3 seeds.
Writes benchmarks/results/sentiment.json (each part its own keys) and the reports under benchmarks/report/.

    .venv/bin/python benchmarks/sentiment.py [--part main|noise|large|split|large_noisy|all] [--runs runs/bench]

A part too long for one sitting runs in pieces, side by side if you like: ``--seeds 0 1`` and/or
``--methods human ws`` (each piece caches its stages and writes no metrics); the run without them
then finds everything cached and writes the metrics and the report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_part_args, command_line, result_update, run_part, sync_archive  # noqa: E402
from _workers import finished, method_pieces, pieces, run_workers  # noqa: E402
from sentiment_v2 import v2_metrics  # noqa: E402

from cwpo.experiments.recipe import all_seeds, load_recipe  # noqa: E402
from cwpo.experiments.report import write_report  # noqa: E402
from cwpo.machine import now_iso  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def method_metrics(res: dict) -> dict:
    """gra_<method>, its std over seeds and over the three test subsets, and the number of seeds."""
    metrics: dict = {}
    for g in res["summary"]:
        m = g["method"]
        metrics[f"gra_{m}"] = g.get("gra")
        metrics[f"gra_{m}_std"] = g.get("gra_seed_std")
        metrics[f"gra_{m}_subset_std"] = g.get("gra_subset_std")
        metrics[f"gra_{m}_n_seeds"] = g.get("n_seeds")
    return metrics


def main_metrics(res: dict) -> dict:
    metrics = method_metrics(res)
    metrics["weak_label_acc"] = res["summary"][0].get("weak_label_acc")
    metrics["human_gold_agreement"] = res["rows"][0]["data_stats"].get("human_gold_agreement")
    return metrics


def grid_metrics(res: dict, key: str) -> dict:
    """Per grid value of ``key`` (e.g. sentiment.human_temperature): per-method GRA and label quality."""
    by_value: dict = {}
    for g in res["summary"]:
        value = str(g[key])
        by_value.setdefault(value, {})[g["method"]] = {
            "gra": g.get("gra"),
            "gra_std": g.get("gra_seed_std"),
            "weak_label_acc": g.get("weak_label_acc"),
            "n_seeds": g.get("n_seeds"),
        }
    agreement: dict = {}
    for row in res["rows"]:
        agreement.setdefault(str(row[key]), {})[row["seed"]] = row["data_stats"].get("human_gold_agreement")
    for value, by_seed in agreement.items():
        vals = [v for v in by_seed.values() if v is not None]
        by_value[value]["human_gold_agreement_mean"] = sum(vals) / len(vals) if vals else None
    return by_value


def large_metrics(res: dict) -> dict:
    out = method_metrics(res)
    rows = res["rows"]
    for key in ("weak_label_acc", "annotator_eval_acc"):
        vals = [r[key] for r in rows if r.get(key) is not None]
        out[key] = sum(vals) / len(vals) if vals else None
    out["labeled_pairs_mean"] = sum(r["data_stats"]["labeled"] for r in rows) / len(rows)
    out["unlabeled_pairs_mean"] = sum(r["data_stats"]["unlabeled"] for r in rows) / len(rows)
    out["human_gold_agreement_mean"] = sum(r["data_stats"]["human_gold_agreement"] for r in rows) / len(rows)
    return out


PARTS = {
    "main": ("configs/cpu/sentiment.yaml", "sentiment"),
    "noise": ("configs/cpu/sentiment-noise.yaml", "sentiment-noise"),
    "large": ("configs/cpu/sentiment-large.yaml", "sentiment-large"),
    "split": ("configs/cpu/sentiment-split.yaml", "sentiment-split"),
    "large_noisy": ("configs/cpu/sentiment-large-noisy.yaml", "sentiment-large-noisy"),
    "v2_hp": ("configs/cpu/sentiment-v2-hp.yaml", "sentiment-v2-hp"),
    "v2_noisefree": ("configs/cpu/sentiment-v2.yaml", "sentiment-v2"),
    "v2_crowd": ("configs/cpu/sentiment-v2-crowd.yaml", "sentiment-v2-crowd"),
    "v2_split": ("configs/cpu/sentiment-v2-split.yaml", "sentiment-v2-split"),
}


def write_interim(part: str, res: dict, recipe, start: float) -> None:
    """``results/sentiment-interim.json``: a part's keys over what is finished, with which seeds of
    which method that is; the bench's own keys (``sentiment.json``) come only from the full run."""
    finished: dict = {}
    for r in res["rows"]:
        finished.setdefault(r["method"], []).append(r["seed"])
    with result_update("sentiment-interim", start) as doc:
        doc["metrics"][part] = {
            "finished_seeds": finished,
            **(v2_metrics(part, res, recipe.to_dict()) if res["rows"] and part.startswith("v2_") else {}),
        }
        doc["commands"][part] = {"command": command_line(), "date": now_iso()}
    print(f"wrote benchmarks/results/sentiment-interim.json ({part}: {len(res['rows'])} finished runs)")


def run_pieces(part: str, name: str, runs: Path, args) -> None:
    """``--workers N``: the unfinished pieces of a part in N single-thread processes."""
    recipe = load_recipe(REPO / PARTS[part][0])
    if args.archive:
        sync_archive(Path(args.archive), runs / "cache", restore=True)
    done = finished(recipe, runs, name)
    todo = [p for p in pieces(recipe) if p not in done]
    extra = ["--runs", str(runs), "--archive", args.archive]
    if todo and not run_workers(
        Path(__file__).resolve(), part, method_pieces(part, todo), args.workers, runs, extra
    ):
        raise SystemExit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_part_args(parser, list(PARTS), REPO / "runs" / "bench", interim=True)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run the part's unfinished (seed, method) pieces in this many single-thread processes "
        "(benchmarks/_workers.py), then its metrics; 0: everything in this process",
    )
    args = parser.parse_args()
    start = time.time()
    runs = Path(args.runs)
    parts = list(PARTS) if args.part == "all" else [args.part]
    for part in parts:
        recipe, name = PARTS[part]
        result_name = "sentiment" if part.startswith("v2_") else "sentiment-v1"
        loaded = load_recipe(REPO / recipe)
        if args.workers and not (args.interim or args.seeds or args.methods):
            run_pieces(part, name, runs, args)
        res = run_part(loaded, runs, name, args.seeds, args.methods, args.archive, args.interim)
        if res is None:
            continue
        if args.interim:
            write_interim(part, res, loaded, start)
            continue
        report = write_report(runs / name, REPO / "benchmarks" / "report" / name)
        with result_update(result_name, start) as doc:  # parts may run side by side and finish at once
            metrics = doc["metrics"]
            if part.startswith("v2_"):
                metrics.update(v2_metrics(part, res, loaded.to_dict()))
            elif part == "main":
                # main's keys are flat numbers; the other parts each own one nested dict: keep those
                for k in [k for k, v in metrics.items() if not isinstance(v, dict)]:
                    del metrics[k]
                metrics.update(main_metrics(res))
            elif part == "noise":
                metrics["noise_sweep"] = grid_metrics(res, "sentiment.human_temperature")
            elif part == "large_noisy":
                metrics["larger_pool_noisy_humans"] = large_metrics(res)
            elif part == "split":
                metrics["split_ratio"] = grid_metrics(res, "sentiment.labeled_frac")
            else:
                metrics["larger_pool"] = large_metrics(res)
            doc["reports"][name] = str(report.relative_to(REPO))
            doc["commands"][part] = {
                "recipe": recipe,
                "seeds": all_seeds(loaded),
                "command": command_line(),
                "date": now_iso(),
            }
        print(f"wrote benchmarks/results/{result_name}.json ({part}); report {report}")


if __name__ == "__main__":
    main()
