"""A recipe bench's command line and its runs: one part of a recipe, or a piece of one (some seeds,
some methods, one grid point) that a later full run reads from the shared stage cache."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.result_files import command_line
from benchmarks.tracks.stage_archive import ARCHIVE, restore_archive
from cwpo.console import session
from cwpo.errors import CWPOError
from cwpo.experiments.pipeline import run_recipe
from cwpo.experiments.recipe import all_seeds, restrict_seeds


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
            "RUNS/<name>-interim.json (never the bench's own result file)",
        )
    parser.add_argument(
        "--archive",
        default=str(ARCHIVE),
        help="stage archive kept in git, restored into the cache before the run (never written by "
        "a run: python -m benchmarks.tracks.stage_archive save); '' for none",
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
    ``archive``: the stage archive restored into the cache first (a run never writes it).
    ``interim``: compute nothing; the result holds the seeds and methods finished so far.
    ``piece``: the recipe was narrowed by the caller (e.g. to one grid point): a partial run in a
    results folder of its own, named after it."""
    if archive:
        restore_archive(Path(archive), runs / "cache")
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
    every = all_seeds(recipe)
    if not seeds or sorted(seeds) == sorted(every):
        return name, False
    unknown = sorted(set(seeds) - set(every))
    if unknown:
        raise SystemExit(f"--seeds {unknown}: not seeds of the recipe {recipe.name} ({every})")
    restrict_seeds(recipe, list(seeds))  # every method on its own seeds among these
    return f"{name}-seeds{'-'.join(map(str, seeds))}", True
