"""What every benchmark result file records beside its metrics."""

from __future__ import annotations

import re
import shlex
import sys
import time
from pathlib import Path

from cwpo.io import machine_info, now_iso, write_json

RESULTS = Path(__file__).resolve().parent / "results"


def tidy_command(cmd: str) -> str:
    """A command as run from the repository root: no machine path before ``.venv/``."""
    return re.sub(r"(?<![\w.])/\S*/(\.venv/)", r"\1", cmd)


def command_line() -> str:
    return tidy_command(" ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))


def write_result(name: str, metrics: dict, started: float, **extra) -> Path:
    """``benchmarks/results/<name>.json`` with the command, date, machine and wall time."""
    try:
        load = list(__import__("os").getloadavg())
    except OSError:
        load = None
    return write_json(
        RESULTS / f"{name}.json",
        {
            "metrics": metrics,
            **extra,
            "command": command_line(),
            "date": now_iso(),
            "wall_time_s": round(time.time() - started, 1),
            "load_average_at_end": load,
            "machine": machine_info(),
        },
    )


def partial_seeds(recipe, seeds: list[int] | None, name: str) -> tuple[str, bool]:
    """``--seeds`` for a part too long for one sitting: the results folder and whether it is partial.

    A partial run (seeds other than the recipe's) gets its own results folder, so two processes can
    run different seeds side by side, and writes no metrics: the run with the recipe's seeds then
    finds every stage in the shared cache and computes the metrics and report over all seeds.
    """
    from cwpo.experiments.recipe import all_seeds, restrict_seeds

    every = all_seeds(recipe)
    if not seeds or sorted(seeds) == sorted(every):
        return name, False
    unknown = sorted(set(seeds) - set(every))
    if unknown:
        raise SystemExit(f"--seeds {unknown}: not seeds of the recipe {recipe.name} ({every})")
    restrict_seeds(recipe, list(seeds))  # every method on its own seeds among these
    return f"{name}-seeds{'-'.join(map(str, seeds))}", True
