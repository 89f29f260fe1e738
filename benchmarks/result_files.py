"""What every benchmark result file records beside its metrics."""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import shlex
import sys
import time
from pathlib import Path

from cwpo.atomic_files import write_json
from cwpo.machine import machine_info, now_iso

RESULTS = Path(__file__).resolve().parent / "results"
# the benches' stage cache without model weights: a bench longer than one sitting, on machines
# that keep no files between sittings, continues from it (benchmarks/archive/README.md)
ARCHIVE = Path(__file__).resolve().parent / "archive" / "bench"


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
    """The exact command, with the environment variables of ``ENV_KEYS`` that were set."""
    import os

    env = [f"{k}={shlex.quote(os.environ[k])}" for k in ENV_KEYS if os.environ.get(k)]
    return tidy_command(" ".join([*env, *(shlex.quote(a) for a in [sys.executable, *sys.argv])]))


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


@contextlib.contextmanager
def result_update(name: str, started: float):
    """Read ``results/<name>.json`` under a lock and yield its ``metrics``, ``commands`` and
    ``reports`` (mutable dicts) for a part to update; then write them back (:func:`write_result`).
    Two parts of one bench may finish at the same moment: neither loses the other's keys."""
    path = RESULTS / f"{name}.json"
    with open(str(path) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = json.loads(path.read_text()) if path.exists() else {}
        doc = {k: dict(previous.get(k) or {}) for k in ("metrics", "commands", "reports")}
        yield doc
        extra = {k: doc[k] for k in ("commands", "reports") if doc[k]}
        write_result(name, doc["metrics"], started, **extra)


def add_part_args(parser, parts: list[str], runs_default: Path, interim: bool = False) -> None:
    """``--part``, ``--runs``, ``--seeds``, ``--methods``, ``--archive`` (and ``--interim`` where the bench
    writes interim keys) of a bench run through recipes (see :func:`run_part`)."""
    parser.add_argument("--runs", default=str(runs_default), help="results and stage cache folder")
    parser.add_argument(
        "--part",
        choices=[*parts, "all"],
        default="all",
        help="one part or all of them (each part updates its own keys of the result file)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="only these seeds (a part too long for one sitting; its own results folder, no metrics)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        help="only these methods of the recipe (likewise partial: two processes can share a seed)",
    )
    if interim:
        parser.add_argument(
            "--interim",
            action="store_true",
            help="compute nothing: the metrics over the seeds and methods finished so far, in "
            "results/<name>-interim.json (never the bench's own keys)",
        )
    parser.add_argument(
        "--archive",
        default=str(ARCHIVE),
        help="stage archive kept in git (cwpo.experiments.archive): restored into the cache before "
        "the run, new stages added after it; '' for none",
    )


def run_part(
    recipe,
    runs: Path,
    name: str,
    seeds: list[int] | None,
    methods: list[str] | None = None,
    archive: str | None = None,
    interim: bool = False,
    piece: str | None = None,
):
    """Run a recipe (``--seeds`` / ``--methods``: a part of it, see :func:`partial_seeds`) with the
    stage cache ``runs/cache``; return the run's result, or ``None`` for a partial run (no metrics).
    ``archive``: the stage archive restored into the cache first and updated after the run.
    ``interim``: compute nothing; the result holds the seeds and methods finished so far.
    ``piece``: the recipe was narrowed by the caller (e.g. to one grid point): a partial run in a
    results folder of its own, named after it."""
    from cwpo.console import session
    from cwpo.errors import CWPOError
    from cwpo.experiments.pipeline import run_recipe

    if archive:
        sync_archive(Path(archive), runs / "cache", restore=True)

    folder, partial = partial_seeds(recipe, seeds, name)
    if methods and set(methods) != set(recipe.methods or ()):  # recipe.methods: a list, a mapping or None
        folder, partial = f"{folder}-{'-'.join(methods)}", True
    if piece:
        folder, partial = f"{folder}-{piece}", True
    if interim:
        folder, partial = f"{folder}-interim", False
    # as under `cwpo run`: a line per stage here, library logs and warnings in the run's log file
    try:
        with session(runs / folder / "bench.log", title=command_line()):
            res = run_recipe(
                recipe,
                runs / folder,
                progress=False,
                only_methods=methods,
                stages_dir=runs / "cache",
                cache_only=interim,
            )
    except CWPOError as e:  # one line, as cwpo's own commands print it
        print(f"{name}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:  # what finished is kept, even when the run stopped on an error
        if archive and not interim:
            sync_archive(Path(archive), runs / "cache", restore=False)
    if partial:
        what = ", ".join(
            f"{k} {v}" for k, v in (("seeds", seeds), ("methods", methods), ("piece", piece)) if v
        )
        print(f"{name}: {what} done (cached in {runs / 'cache'}); run it again without --seeds, "
              "--methods and --point for the metrics and the report over all of it")  # fmt: skip
        return None
    return res


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


def sync_archive(archive: Path, cache: Path, restore: bool) -> None:
    """Restore the archive's stages into the cache, or add the cache's new stages to the archive."""
    from cwpo.experiments.archive import archive_stages, restore_stages

    if restore:
        done = restore_stages(archive, cache)
        if done:
            print(f"restored {len(done)} stages from {archive}")
        hint = precision_hint(archive)
        if hint:
            print(hint)
        return
    out = archive_stages(cache, archive)
    if out["archived"]:
        print(f"archived {len(out['archived'])} new stages in {archive} ({out['in_archive']} in all)")


def precision_hint(archive: Path) -> str | None:
    """Stage keys hold the precision a machine decided for ``bf16: auto``: where the archive's SFT
    stages were trained with another one, this machine would compute everything anew. Say how to
    continue them instead (``CWPO_BF16``), never decide it silently."""
    from cwpo.atomic_files import read_json
    from cwpo.runtime import bf16_is_faster

    decided = bf16_is_faster()
    used = set()
    for manifest in (archive / "stages").glob("sft-*/manifest.json"):
        value = read_json(manifest).get("config", {}).get("config", {}).get("sft", {}).get("bf16")
        if isinstance(value, bool) and value != decided:
            used.add(value)
    if not used:
        return None
    value = sorted(used)[0]
    return (
        f"note: the archive's SFT stages were trained with bf16={str(value).lower()}, this machine decides "
        f"bf16={str(decided).lower()}: run with CWPO_BF16={int(value)} to continue them (as is, their "
        "later stages are computed anew)"
    )


def timed_train_step(trainer, batch) -> float:
    """Seconds of one training step called directly: forward, backward, optimizer step, zero_grad."""
    start = time.perf_counter()
    trainer.training_step(trainer.model, dict(batch))
    trainer.optimizer.step()
    trainer.optimizer.zero_grad()
    return time.perf_counter() - start
