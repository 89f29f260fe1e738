"""What every benchmark records beside its metrics, and the command line they share.

A result file (``<study>/results/<name>.json``) holds the metrics, the exact command, the date,
the machine and the load average; :func:`bench_parser` is every script's argument parser.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

from cwpo.atomic_files import write_json
from cwpo.console import silence_known_warnings
from cwpo.machine import machine_info, now_iso

REPO = Path(__file__).resolve().parents[1]
# the data sets shared beside the checkout (IMDb, HH-RLHF), or where CWPO_SHARED_DATA says
SHARED_DATA = Path(os.environ.get("CWPO_SHARED_DATA", REPO.parent / "shared" / "data"))


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of a benchmark script: its module docstring as the help, kept as written,
    and its usage line as the script is run (``python -m benchmarks.<study>.<script>``). The
    dependency warnings the CLI silences are silenced for the script too (its log stays readable)."""
    silence_known_warnings()
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    prog = f"python -m {spec.name}" if spec is not None and spec.name.startswith("benchmarks.") else None
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def module_command(module: str) -> list[str]:
    """The command that runs a bench module (``benchmarks.tracks.sentiment``) in a child process;
    start it with :func:`repo_env` so that it finds the package from any folder."""
    return [sys.executable, "-m", module]


def repo_env(env: dict | None = None) -> dict:
    """``env`` (default: this process's environment) with the repository first on ``PYTHONPATH``."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


# folders of a checkout: an absolute path through one of them is written from the repository root
_REPO_DIRS = (".venv", "benchmarks", "runs", "configs")


def tidy_command(cmd: str) -> str:
    """A command as run from the repository root: no machine path before ``.venv/``, ``runs/``,
    ``benchmarks/`` or ``configs/`` (another checkout's, a worktree's, a fresh clone's), the shared
    data as ``../shared/data/`` and a temporary folder as ``$TMPDIR/``."""
    dirs = "|".join(re.escape(d) for d in _REPO_DIRS)
    cmd = re.sub(rf"(?<![\w.])/\S*?/((?:{dirs})/)", r"\1", cmd)
    # the workplace's shared folder beside the checkout, and a run's temporary folder
    cmd = re.sub(r"(?<![\w.])/\S*?/shared/((?:data|design|reference)/)", r"../shared/\1", cmd)
    return re.sub(r"(?<![\w.])/tmp/[^/\s]+/", "$TMPDIR/", cmd)


ENV_KEYS = (
    "OMP_NUM_THREADS",
    "CWPO_ATTN",
    "CWPO_BF16",
)  # environment that changes what or how fast a run computes


def command_line() -> str:
    """The exact command, with the environment variables of ``ENV_KEYS`` that were set; a script run
    as a module (``python -m benchmarks.speed.speed``) is written that way."""
    env = [f"{k}={shlex.quote(os.environ[k])}" for k in ENV_KEYS if os.environ.get(k)]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    script = ["-m", spec.name] if spec is not None and spec.name != "__main__" else sys.argv[:1]
    argv = [sys.executable, *script, *sys.argv[1:]]
    return tidy_command(" ".join([*env, *(shlex.quote(a) for a in argv)]))


def write_result(path: Path, metrics: dict, started: float, **extra) -> Path:
    """A result file: the metrics with the command, date, machine and wall time."""
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return write_json(
        path,
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


@contextlib.contextmanager
def result_update(path: Path, started: float):
    """Read the result file ``path`` under a lock and yield its ``metrics``, ``commands`` and
    ``reports`` (mutable dicts) for a part to update; then write them back (:func:`write_result`).
    Two parts of one bench may finish at the same moment: neither loses the other's keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = json.loads(path.read_text()) if path.exists() else {}
        doc = {k: dict(previous.get(k) or {}) for k in ("metrics", "commands", "reports")}
        yield doc
        extra = {k: doc[k] for k in ("commands", "reports") if doc[k]}
        write_result(path, doc["metrics"], started, **extra)
