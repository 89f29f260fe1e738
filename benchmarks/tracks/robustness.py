"""Robustness of the weak annotator to a poisoned or imbalanced D_l (paper App. J.8), annotator side.

One --part per recipe of configs/cpu/ (all share one stage cache, so their clean level is computed
once): poison (robustness-poison.yaml: 0/10/20/40% of D_l's labels flipped), targeted
(robustness-targeted.yaml: flips on D_l's Harmless pairs only), imbalanced
(robustness-imbalanced.yaml: D_l from one subset, D_u mixed). Per level (``by_level``), mean and std
over seeds of the annotator's accuracy against the human labels of D_u, its held-out accuracy,
top-30% accuracy, mean confidence and ECE; per level, the paired change of that agreement against
the part's first grid point (clean or mixed D_l) with its CI and MDE; for poison and targeted, a
verdict on App. J.8 (ii) (poisoning lowers the annotator's agreement with the human labels).
Writes benchmarks/tracks/results/robustness.json (each part its own keys) and
benchmarks/tracks/report/robustness-<part>/.

    python -m benchmarks.tracks.robustness --part poison|targeted|imbalanced|all [--runs DIR]
    python -m benchmarks.tracks.robustness --part all --workers 2   # both cores, resumable

With ``--workers N`` the unfinished (seed, grid point) pieces of the parts run in N single-thread
processes (each piece one annotator), then the metrics of each part.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.result_files import REPO, bench_parser, command_line, module_command, result_update
from benchmarks.tracks.recipe_parts import add_part_args, run_part
from benchmarks.tracks.stage_archive import restore_archive
from benchmarks.tracks.workers import cached_rows, run_workers
from cwpo.experiments.evidence import read_jsonl
from cwpo.experiments.recipe import all_seeds, load_recipe
from cwpo.experiments.report import write_report
from cwpo.experiments.report_curves import level_label
from cwpo.machine import now_iso
from cwpo.stats import Claim, Estimate, crossed_bootstrap, judge

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "robustness.json"
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


def _agreement(annotated: str) -> dict[tuple, float]:
    """Per D_u pair (keyed by prompt and its two responses, in either order): 1 if the weak label
    agrees with the human label, else 0."""
    out = {}
    for r in read_jsonl(annotated):
        if r.get("human_agrees") is not None:
            out[(r["prompt"], *sorted((r["chosen"], r["rejected"])))] = float(r["human_agrees"])
    return out


def change_vs_reference(rows: list[dict], key: str, reference) -> dict:
    """Per level of ``key``: the change of the weak labels' agreement with D_u's human labels
    against the ``reference`` level, paired by seed and by D_u pair (both runs of a seed label the
    same pairs): mean, se, p, 80%-power MDE and 95% CI from the crossed bootstrap over seeds x pairs
    (``cwpo.stats``). Seeds are truncated to the smallest number of common pairs."""
    ref_label = level_label(reference)
    by = {(r["seed"], level_label(r.get(key))): r for r in rows if r.get("annotated")}
    agree = {k: _agreement(r["annotated"]) for k, r in by.items()}
    out = {}
    for level in sorted({lv for _, lv in by} - {ref_label}):
        diffs = []
        for seed in sorted({s for s, lv in by if lv == level}):
            ref = agree.get((seed, ref_label))
            if ref is None:
                continue
            cur = agree[(seed, level)]
            common = sorted(set(ref) & set(cur))
            diffs.append([cur[c] - ref[c] for c in common])
        n = min((len(d) for d in diffs), default=0)
        if n < 2:
            continue
        est = crossed_bootstrap(np.array([d[:n] for d in diffs]))
        out[level] = {
            "agreement_change": est.mean,
            "se": est.se,
            "mde": est.mde,
            "ci": [est.lo, est.hi],
            "p": est.p,
            "estimate": est.to_dict(),
            "n_seeds": est.n_seeds,
            "n_pairs": n,
            "reference": ref_label,
        }
    return out


def degradation_verdict(change: dict) -> str | None:
    """App. J.8 (ii) on the annotator side: poisoning D_l lowers the weak labels' agreement with the
    human labels. Judged at the largest level by the one verdict rule (:func:`cwpo.stats.judge`,
    the claimed direction is a drop); here a family of one: the summary (``verdicts.py``) judges it
    again within the family of every claim it lists."""
    if not change:
        return None
    top = change[max(change, key=float)]
    (judged,) = judge([Claim("annotator degrades", Estimate(**top["estimate"]), direction=-1)])
    return judged["verdict"]


def point_pieces(parts: list[str], runs: Path) -> list[tuple[str, list[str]]]:
    """The unfinished (part, seed, grid point) pieces, for :func:`workers.run_workers`. A piece is
    one annotator (the methods of an annotator-only recipe share it), so two workers never wait on
    each other's stage; what is finished is read from the stage cache (nothing is computed)."""
    todo = []
    for part in parts:
        recipe_path, key = PARTS[part]
        recipe = load_recipe(REPO / recipe_path)
        done = {(r["seed"], level_label(r.get(key))) for r in cached_rows(recipe, runs, f"robustness-{part}")}
        for seed in all_seeds(recipe):
            for i, value in enumerate(recipe.grid[key]):
                if (seed, level_label(value)) not in done:
                    label = f"robustness {part}: seed {seed} {key.split('.')[-1]}={level_label(value)}"
                    todo.append((label, ["--part", part, "--seeds", str(seed), "--point", str(i)]))
    return todo


def main() -> None:
    parser = bench_parser(__doc__)
    add_part_args(parser, list(PARTS), REPO / "runs" / "bench")
    parser.add_argument(
        "--point", type=int,
        help="only this grid point (its index in the part's grid): a piece, with no metrics (see --workers)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=0,
        help="run the unfinished (seed, grid point) pieces of the parts in this many single-thread "
        "processes (benchmarks/tracks/workers.py), then the metrics; 0: everything in this process",
    )  # fmt: skip
    args = parser.parse_args()
    start = time.time()
    runs = Path(args.runs)
    parts = list(PARTS) if args.part == "all" else [args.part]
    if args.workers and not (args.seeds or args.methods or args.point is not None):
        if args.archive:
            restore_archive(Path(args.archive), runs / "cache")
        todo = point_pieces(parts, runs)
        extra = ["--runs", str(runs), "--archive", args.archive]
        if todo and not run_workers(
            module_command(__spec__.name), "robustness", todo, args.workers, runs, extra
        ):
            raise SystemExit(2)
    for part in parts:
        recipe_path, key = PARTS[part]
        recipe = load_recipe(REPO / recipe_path)
        name = f"robustness-{part}"
        piece = None
        if args.point is not None:
            values = recipe.grid[key]
            if not 0 <= args.point < len(values):
                raise SystemExit(
                    f"--point {args.point}: {key} has {len(values)} grid points (0-{len(values) - 1})"
                )
            recipe.grid[key] = [values[args.point]]
            piece = f"point{args.point}"
        res = run_part(recipe, runs, name, args.seeds, args.methods, args.archive, piece=piece)
        if res is None:
            continue
        report = write_report(runs / name, HERE / "report" / name)
        with result_update(RESULT, start) as doc:  # two parts may run as two processes side by side
            change = change_vs_reference(res["rows"], key, recipe.grid[key][0])
            doc["metrics"][part] = {
                "by_level": part_metrics(res["rows"], key),
                "agreement_change_vs_reference": change,
                # the paper's imbalance claim (Table 24) is about the aligned models only
                "verdict_annotator_degrades": degradation_verdict(change) if part != "imbalanced" else None,
            }
            doc["commands"][part] = {
                "recipe": recipe_path,
                "seeds": all_seeds(recipe),
                "command": command_line(),
                "date": now_iso(),
            }
        print(f"wrote {RESULT.relative_to(REPO)} ({part}); report {report}")


if __name__ == "__main__":
    main()
