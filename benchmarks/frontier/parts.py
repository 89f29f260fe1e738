"""Run one part of the frontier bench (``parts`` in ``plan.yaml``), or say which parts are done.

    python -m benchmarks.frontier.parts --status
    python -m benchmarks.frontier.parts P2 [--max-minutes 110] [--cache runs/bench/cache]
    python -m benchmarks.frontier.parts next      # the first part not finished

A part is one argument list per worker; each worker is ``benchmarks.frontier.run`` with those
arguments in its own single-thread process (``OMP_NUM_THREADS=1``: one per core), all started
together. When every worker has stopped, the part's stages are added to the stage archive
(``stage_archive save``: per-prompt rows, labels, no weights) and the status is printed. A part
stopped by ``--max-minutes`` (or killed) continues with the same command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from benchmarks.frontier import run
from benchmarks.frontier.train_rows import read_jsonl
from benchmarks.result_files import REPO, bench_parser, module_command, repo_env
from benchmarks.tracks.stage_archive import save_archive


def units(plan: dict, worker: list[str]) -> list[list[tuple[tuple, int]]]:
    """Every unit (one training run) of a worker: per split its key (regime, method, seed, lr,
    split) and the number of points it scores (the snapshots and step 0)."""
    a = run.build_parser().parse_args(worker)
    n_points = len(a.checkpoints or plan["checkpoints"]) + 1
    return [
        [((a.regime, m, s, lr, split), n_points) for split in a.splits]
        for s in a.seeds
        for m in a.methods
        for lr in a.lrs
    ]


def status(plan: dict, results: Path) -> dict[str, tuple[int, int]]:
    """Per part: (finished units, units), a unit finished when every point of it is indexed."""
    index = results / run.POINTS.name
    have: dict[tuple, int] = {}
    for p in read_jsonl(index) if index.exists() else []:
        key = (p["regime"], p["method"], p["seed"], p["lr"], p["split"])
        have[key] = have.get(key, 0) + 1
    out = {}
    for name, workers in plan["parts"].items():
        todo = [u for w in workers for u in units(plan, w)]
        out[name] = (sum(all(have.get(key, 0) >= n for key, n in unit) for unit in todo), len(todo))
    return out


def run_part(plan: dict, name: str, args) -> int:
    env = {**repo_env(), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    common = ["--plan", str(args.plan), "--cache", str(args.cache), "--max-minutes", str(args.max_minutes),
              "--results", str(args.results)]  # fmt: skip
    procs = [
        subprocess.Popen(module_command("benchmarks.frontier.run") + [*w, *common], env=env)
        for w in plan["parts"][name]
    ]
    codes = [p.wait() for p in procs]
    save_archive(args.cache, run.ARCHIVE)
    return max(codes)


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("part", nargs="?", help="a part of plan.yaml, or 'next'")
    ap.add_argument("--status", action="store_true")
    ap.add_argument("--plan", type=Path, default=run.HERE / "plan.yaml")
    ap.add_argument("--cache", type=Path, default=REPO / "runs" / "bench" / "cache")
    ap.add_argument("--results", type=Path, default=run.POINTS.parent)
    ap.add_argument("--max-minutes", type=float, default=110.0)
    args = ap.parse_args(argv)
    plan = yaml.safe_load(args.plan.read_text(encoding="utf-8"))
    done = status(plan, args.results)
    name = args.part
    if name == "next":
        name = next((p for p, (d, n) in done.items() if d < n), None)
        if name is None:
            print("every part is finished")
            return 0
    if name is not None:
        if name not in plan["parts"]:
            print(
                f"error: part {name!r} is not in {args.plan} (it has {', '.join(plan['parts'])})",
                file=sys.stderr,
            )
            return 2
        print(f"part {name}: {len(plan['parts'][name])} workers", flush=True)
        rc = run_part(plan, name, args)
        if rc:
            return rc
        done = status(plan, args.results)
    for part, (d, n) in done.items():
        print(f"{part:4s} {d:2d}/{n} units {'finished' if d == n else ''}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
