"""Benchmark track 1: controlled sentiment (IMDb prompts, VADER gold, simulated BT annotators).

The evidence bench: one ~2,070-pair pool, 1,000 fixed test prompts, hyper-parameters chosen once on
validation prompts. Runs, with one shared stage cache, the recipes of configs/cpu/ (one --part each):
- v2_hp:        sentiment-v2-hp.yaml, Human-DPO noise-free on 300 validation prompts (the HP choice);
- v2_noisefree: sentiment-v2.yaml, Human/WS/CW/Human-100%, noise-free humans, 5 seeds;
- v2_crowd:     sentiment-v2-crowd.yaml, every method and weight function, crowd-like humans, 3 seeds;
- v2_split:     sentiment-v2-split.yaml, labelled share 10-50%, CW vs DPO on D_l, 3 seeds.
Writes benchmarks/tracks/results/sentiment.json (each part its own keys) and the reports under
benchmarks/tracks/report/.

    python -m benchmarks.tracks.sentiment [--part v2_hp|v2_noisefree|v2_crowd|v2_split|all] [--runs runs/bench]

A part too long for one sitting runs in pieces, side by side if you like: ``--seeds 0 1`` and/or
``--methods human ws`` (each piece caches its stages and writes no metrics); the run without them
then finds everything cached and writes the metrics and the report. ``--workers 2`` does this in
one command.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.result_files import REPO, bench_parser, command_line, module_command, result_update
from benchmarks.tracks.recipe_parts import add_part_args, run_part
from benchmarks.tracks.sentiment_v2 import v2_metrics
from benchmarks.tracks.stage_archive import restore_archive
from benchmarks.tracks.workers import finished, method_pieces, pieces, run_workers
from cwpo.experiments.recipe import all_seeds, load_recipe
from cwpo.experiments.report import write_report
from cwpo.machine import now_iso

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "sentiment.json"


PARTS = {
    "v2_hp": ("configs/cpu/sentiment-v2-hp.yaml", "sentiment-v2-hp"),
    "v2_noisefree": ("configs/cpu/sentiment-v2.yaml", "sentiment-v2"),
    "v2_crowd": ("configs/cpu/sentiment-v2-crowd.yaml", "sentiment-v2-crowd"),
    "v2_split": ("configs/cpu/sentiment-v2-split.yaml", "sentiment-v2-split"),
}


def write_interim(part: str, res: dict, recipe, runs: Path, start: float) -> None:
    """``RUNS/sentiment-interim.json`` (untracked): a part's keys over what is finished, with which
    seeds of which method that is; the bench's own keys (``sentiment.json``) come only from the
    full run."""
    finished: dict = {}
    for r in res["rows"]:
        finished.setdefault(r["method"], []).append(r["seed"])
    path = runs / "sentiment-interim.json"
    with result_update(path, start) as doc:
        doc["metrics"][part] = {
            "finished_seeds": finished,
            **(v2_metrics(part, res, recipe.to_dict()) if res["rows"] else {}),
        }
        doc["commands"][part] = {"command": command_line(), "date": now_iso()}
    print(f"wrote {path} ({part}: {len(res['rows'])} finished runs)")


def run_pieces(part: str, name: str, runs: Path, args) -> None:
    """``--workers N``: the unfinished pieces of a part in N single-thread processes."""
    recipe = load_recipe(REPO / PARTS[part][0])
    if args.archive:
        restore_archive(Path(args.archive), runs / "cache")
    done = finished(recipe, runs, name)
    todo = [p for p in pieces(recipe) if p not in done]
    extra = ["--runs", str(runs), "--archive", args.archive]
    if todo and not run_workers(
        module_command(__spec__.name), part, method_pieces(part, todo), args.workers, runs, extra
    ):
        raise SystemExit(2)


def main() -> None:
    parser = bench_parser(__doc__)
    add_part_args(parser, list(PARTS), REPO / "runs" / "bench", interim=True)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run the part's unfinished (seed, method) pieces in this many single-thread processes "
        "(benchmarks/tracks/workers.py), then its metrics; 0: everything in this process",
    )
    args = parser.parse_args()
    start = time.time()
    runs = Path(args.runs)
    parts = list(PARTS) if args.part == "all" else [args.part]
    for part in parts:
        recipe, name = PARTS[part]
        loaded = load_recipe(REPO / recipe)
        if args.workers and not (args.interim or args.seeds or args.methods):
            run_pieces(part, name, runs, args)
        res = run_part(loaded, runs, name, args.seeds, args.methods, args.archive, args.interim)
        if res is None:
            continue
        if args.interim:
            write_interim(part, res, loaded, runs, start)
            continue
        report = write_report(runs / name, HERE / "report" / name)
        with result_update(RESULT, start) as doc:  # parts may run side by side and finish at once
            doc["metrics"].update(v2_metrics(part, res, loaded.to_dict()))
            doc["reports"][name] = str(report.relative_to(REPO))
            doc["commands"][part] = {
                "recipe": recipe,
                "seeds": all_seeds(loaded),
                "command": command_line(),
                "date": now_iso(),
            }
        print(f"wrote {RESULT.relative_to(REPO)} ({part}); report {report}")


if __name__ == "__main__":
    main()
