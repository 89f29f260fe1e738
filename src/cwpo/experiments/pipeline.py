"""Run a recipe: every stage cached by content hash, every method through the one alignment path.

Layout of a results folder::

    recipe.yaml          the recipe as given
    stages/<stage>-<key> finished stage outputs (manifest.json in each), shared across grid points
    work/                scratch of unfinished stages (checkpoints; removed when a stage finishes)
    results.jsonl        one row per (grid point, method): metrics, annotator quality, paths
    summary.json         means and stds over seeds per (grid point without seed, method)
    logs/run.log         what ran, what was cached, how long it took

Each stage also reports itself in one terminal line (:func:`cwpo.console.stage_line`), and training
stages draw one progress bar (:func:`cwpo.console.training_bar`) instead of the Trainer's output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from cwpo.atomic_files import read_json, write_json, write_jsonl, write_text
from cwpo.console import STAGE_LOGGER
from cwpo.errors import CWPOError
from cwpo.experiments.cache import CACHE_ONLY, Artifact, StageNotCached
from cwpo.experiments.launched import LAUNCHER, Launcher
from cwpo.experiments.methods import Method
from cwpo.experiments.point_runner import PointRunner
from cwpo.experiments.recipe import Recipe, check_run, expand, load_recipe, seeds_of
from cwpo.experiments.rows import annotator_row, data_stats, flatten_eval, summarize
from cwpo.hashing import hash_config
from cwpo.outputs import MANIFEST, guard_output, owned_in_place, remove_owned, write_manifest

log = logging.getLogger("cwpo.run")


def run_point(
    root: Path, point: dict, recipe: Recipe, methods: dict[str, Method], progress: bool = True
) -> list[dict]:
    try:
        return _run_point(root, point, recipe, methods, progress)
    except StageNotCached as e:  # cache_only: a stage every method of this point needs is missing
        log.info("grid point %s: stage %s not cached, skipped", point, e)
        return []


def _run_point(
    root: Path, point: dict, recipe: Recipe, methods: dict[str, Method], progress: bool
) -> list[dict]:
    pr = PointRunner(root, point, recipe, progress)
    data = pr.data()
    if recipe.annotator_only:  # the annotator side of a study (e.g. poisoned D_l): no strong model
        ann, weak = pr.annotator(data, "annotator")
        stats = data_stats(data)
        extra = {"mean_confidence": weak.metrics.get("mean_confidence")}
        return [{**point, "method": "annotator", **annotator_row(ann, weak), **extra, "data_stats": stats}]
    needs = {m.labels for m in methods.values()}
    labels: dict[str, Artifact] = {}
    ann_rows: dict = {}
    if needs & {"weak"} or recipe.sft_data == "weak":
        ann, labels["weak"] = pr.annotator(data, "annotator")
        ann_rows = annotator_row(ann, labels["weak"])
    if "weak_dpo" in needs:
        ann_dpo, labels["weak_dpo"] = pr.annotator(data, "wsdpo_annotator")
        ann_rows["wsdpo_annotator_eval_acc"] = ann_dpo.metrics.get("eval_accuracy")
    sft = pr.sft(data, labels.get("weak"))
    rows = []
    for name, method in methods.items():
        try:
            policy = pr.align(name, method, sft, data, labels)
            ev = pr.evaluate(name, policy, sft)
        except StageNotCached as e:  # cache_only: this method is not finished on this point
            log.info("%s, seed %s: stage %s not cached, skipped", name, point.get("seed"), e)
            continue
        summary = read_json(ev.path / "eval" / "summary.json")
        rows.append(
            {
                **point,
                "method": name,
                **method.to_dict(),
                **flatten_eval(summary),
                "align_steps": (policy.metrics.get("global_step")),
                "align_s": policy.metrics.get("stage_seconds"),
                **ann_rows,
                "data_stats": data_stats(data),
                "policy_dir": str(policy.path / "model"),
                "eval_dir": str(ev.path / "eval"),
            }
        )
    return rows


def setup_logging(root: Path) -> logging.Handler:
    """``logs/run.log``: the runner's own record (the terminal and the command's log file are
    :mod:`cwpo.console`'s)."""
    (root / "logs").mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(root / "logs" / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("cwpo.run")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def run_recipe(
    recipe: Recipe | str | Path,
    results_dir: str | Path,
    progress: bool = True,
    only_methods: list[str] | None = None,
    stages_dir: str | Path | None = None,
    cache_only: bool = False,
    overwrite: bool = False,
    launcher: Launcher | None = None,
) -> dict:
    """Run every grid point and method of a recipe; return ``{"rows", "summary", "results_dir"}``.

    ``stages_dir`` (default: ``results_dir``) is where stage artifacts are cached; recipes that
    share it share every stage whose inputs and settings are equal. ``cache_only``: compute
    nothing, return the rows of the (point, method) pairs whose every stage is cached (an interim
    look at a run still under way). ``overwrite``: replace the results of another recipe in
    ``results_dir`` (see :func:`check_run_folder`). ``launcher``: run each training and generation
    stage on its processes (:mod:`cwpo.experiments.launched`); the results equal one process's.
    """
    token = CACHE_ONLY.set(cache_only)
    launch_token = LAUNCHER.set(launcher)
    try:
        return _run_recipe(recipe, results_dir, progress, only_methods, stages_dir, overwrite)
    finally:
        LAUNCHER.reset(launch_token)
        CACHE_ONLY.reset(token)


RUN_FILES = ("recipe.yaml", "results.jsonl", "summary.json", "logs/run.log")  # what a run writes at its top


def check_run_folder(results_dir: str | Path, recipe: Recipe, overwrite: bool = False) -> bool:
    """Refuse a results folder that is not a run of ``recipe`` (before anything is written).

    A new or empty folder, or a run of the same recipe (it continues: every stage is cached), is
    used. A run of another recipe is replaced only with ``overwrite`` (returns True): its results
    stay as they are until the new run is complete. Anything else is refused.
    """
    root = Path(results_dir)
    if not guard_output(root, "run", in_place=True):
        return False
    found = read_json(root / MANIFEST)
    if found.get("inputs_hash") == hash_config(recipe.to_dict()):
        return False
    if not overwrite:
        other = ((found.get("config") or {}).get("recipe") or {}).get("name", "?")
        raise CWPOError(
            f"--output {root} holds the results of another recipe (`{other}`, or other settings); pass "
            "--overwrite to replace them (its cached stages are reused), or choose another --output"
        )
    return True


def _run_recipe(recipe, results_dir, progress, only_methods, stages_dir, overwrite=False) -> dict:
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    methods = check_run(recipe, only_methods)  # before anything is written
    root = Path(results_dir).resolve()
    # a run folder is continued in place (every stage is cached); another recipe's needs overwrite
    replacing = check_run_folder(root, recipe, overwrite)
    root.mkdir(parents=True, exist_ok=True)

    def manifest(metrics: dict | None = None) -> None:
        files = owned_in_place(root, list(RUN_FILES))
        write_manifest(
            root, "run", {"recipe": recipe.to_dict()}, hash_config(recipe.to_dict()), metrics, files
        )

    if not replacing:  # else the earlier recipe's files stay until this run is complete
        manifest()
    stage_root = Path(stages_dir).resolve() if stages_dir else root
    handler = setup_logging(root)
    try:
        if not replacing:
            write_text(root / "recipe.yaml", yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        rows: list[dict] = []
        points = expand(recipe)
        for i, (point, point_recipe) in enumerate(points, 1):
            log.info("grid point %d/%d: %s", i, len(points), point)
            if len(points) > 1:
                grid = ", ".join(f"{k}={v}" for k, v in point.items())
                logging.getLogger(STAGE_LOGGER).info("grid point %d/%d: %s", i, len(points), grid)
            here = {n: m for n, m in methods.items() if point["seed"] in seeds_of(recipe, n)}
            if here or recipe.annotator_only:
                rows.extend(run_point(stage_root, point, point_recipe, here, progress))
            if not replacing:
                write_jsonl(root / "results.jsonl", rows)
        summary = summarize(rows, [k for k in points[0][0] if k != "seed"])
        if replacing:  # the new run is complete: its files replace the other recipe's, a stale report goes
            report = root / "report"
            if (report / MANIFEST).is_file() and read_json(report / MANIFEST).get("stage") == "report":
                remove_owned(report)
            write_text(root / "recipe.yaml", yaml.safe_dump(recipe.to_dict(), sort_keys=False))
            write_jsonl(root / "results.jsonl", rows)
        write_json(
            root / "summary.json",
            {"recipe": recipe.name, "track": recipe.track, "groups": summary, "paper": recipe.paper},
        )
        manifest({"rows": len(rows), "grid_points": len(points)})  # again: it lists what the run wrote
        return {"rows": rows, "summary": summary, "results_dir": str(root)}
    finally:
        logging.getLogger("cwpo.run").removeHandler(handler)
        handler.close()


__all__ = ["PointRunner", "check_run_folder", "run_recipe", "summarize"]
