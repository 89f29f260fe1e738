"""A recipe bench on both cores: its unfinished (seed, method) pieces run by single-thread worker
processes (``--workers N``), each piece a ``--seeds S --methods M`` run of the same script.

Two single-thread processes out-ran one two-thread process here (``speed/results/speed.md``,
"thread layout"); stages are locked, so workers never compute a shared stage (the SFT model, a seed's
annotator) twice, and every piece is archived when it ends (``--archive``). What is finished is
read from the stage cache (``run_recipe(cache_only=True)``), so a bench stopped anywhere restarts
with only what is left. Saving the cache in the archive is a separate, explicit command
(:mod:`benchmarks.tracks.stage_archive`).
"""

from __future__ import annotations

import math
import os
import subprocess
import threading
import time
from collections import Counter, deque
from pathlib import Path

from benchmarks.result_files import repo_env
from cwpo.experiments.pipeline import run_recipe
from cwpo.experiments.recipe import resolve_methods, seeds_of


def pieces(recipe) -> list[tuple[int, str]]:
    """Every (seed, method) of a recipe: methods with more seeds first (the headline comparison
    finishes before the rest), then by seed, then in the recipe's order."""
    names = list(resolve_methods(recipe.methods))
    every = [(s, m) for m in names for s in seeds_of(recipe, m)]
    return sorted(every, key=lambda p: (-len(seeds_of(recipe, p[1])), p[0], names.index(p[1])))


def cached_rows(recipe, runs: Path, name: str) -> list[dict]:
    """The result rows of a recipe whose stages are all in the cache ``runs/cache`` (nothing is computed)."""
    return run_recipe(
        recipe, runs / f"{name}-finished", progress=False, stages_dir=runs / "cache", cache_only=True
    )["rows"]


def finished(recipe, runs: Path, name: str) -> set[tuple[int, str]]:
    """The pieces whose every stage, at every grid point, is in the cache ``runs/cache`` (nothing
    is computed). A piece of a grid recipe with only some grid points cached is not finished."""
    rows = cached_rows(recipe, runs, name)
    points = math.prod(len(values) for values in recipe.grid.values())
    count = Counter((r["seed"], r["method"]) for r in rows)
    return {piece for piece, n in count.items() if n >= points}


def method_pieces(part: str, todo: list[tuple[int, str]]) -> list[tuple[str, list[str]]]:
    """(seed, method) pieces of a part as :func:`run_workers` takes them: a label and the arguments."""
    return [(f"{part}: seed {s} {m}", ["--part", part, "--seeds", str(s), "--methods", m]) for s, m in todo]


def run_workers(
    command: list[str],
    part: str,
    todo: list[tuple[str, list[str]]],
    workers: int,
    runs: Path,
    extra: list[str],
) -> bool:
    """Run the pieces (a label and the arguments of ``command`` for it, see :func:`method_pieces`) in
    order in ``workers`` processes at a time (OMP_NUM_THREADS=1 each), each worker taking the next
    piece when its last one ends; their output goes to ``runs/workers/<part>-<i>.log``, one
    terminal line per piece. After a failed piece no new one starts. True if every piece
    succeeded."""
    env = repo_env({**os.environ, "OMP_NUM_THREADS": "1"})
    logs = runs / "workers"
    logs.mkdir(parents=True, exist_ok=True)
    left = deque(todo)
    failed: list[str] = []
    lock = threading.Lock()
    procs: list[subprocess.Popen] = []

    def worker(i: int) -> None:
        log = logs / f"{part}-{i}.log"
        while True:
            with lock:
                if failed or not left:
                    return
                what, args = left.popleft()
            cmd = [*command, *args, *extra]
            start = time.time()
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
                fh.flush()
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
                with lock:
                    procs.append(proc)
                rc = proc.wait()
            with lock:
                if rc:
                    failed.append(what)
                    print(f"{what}: failed (exit {rc}; see {log})", flush=True)
                    return
                print(f"{what}: done in {(time.time() - start) / 60:.1f} min ({len(left)} left)", flush=True)

    n = min(workers, len(todo))
    print(f"{part}: {len(todo)} pieces left, {n} single-thread workers (logs: {logs})", flush=True)
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(timeout=1.0)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    return not failed
