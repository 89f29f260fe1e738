"""cwpo run: a whole pipeline, or a grid of pipelines, from a YAML recipe."""

from __future__ import annotations

import os

from cwpo.errors import ConfigError

HELP = (
    "Run a recipe (data, annotator, annotate, SFT, align for every method, evaluate) with content-hash "
    "caching of every stage: a re-run redoes nothing, an interrupted run resumes, a changed input never "
    "reuses a stale artifact. Recipes: configs/ in the repository, or `cwpo run --list`."
)
ON_INTERRUPT = "finished stages are kept and a re-run resumes"


def configure(parser):
    parser.add_argument("recipe", nargs="?", help="recipe YAML (a path, or the name of a packaged recipe)")
    parser.add_argument("--output", "-o", help="results folder (default: runs/<recipe name>)")
    parser.add_argument("--methods", nargs="+", help="run only these methods of the recipe")
    parser.add_argument(
        "--cache", help="folder of cached stages, shareable between recipes (default: the results folder)"
    )
    parser.add_argument("--validate", action="store_true", help="check the recipe and stop")
    parser.add_argument("--list", action="store_true", help="list the packaged recipes")
    parser.add_argument("--report", action="store_true", help="write the markdown report when done")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of another recipe in --output (kept until the new run is complete)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run each training and generation stage under accelerate launch on N processes",
    )
    parser.add_argument(
        "--accelerate-config",
        help="with --processes: a shipped accelerate config (ddp, fsdp, zero2, zero3) or a YAML path",
    )


def _output(args) -> str:
    from cwpo.experiments.recipe import load_recipe
    from cwpo.experiments.recipes import find_recipe

    return args.output or f"runs/{load_recipe(find_recipe(args.recipe)).name}"


def output_of(args) -> str | None:
    """The results folder (its log goes beside it); None for --list and --validate."""
    if args.list or args.validate or not args.recipe:
        return None
    return _output(args)


def _launcher(args):
    """The launcher of ``--processes``/``--accelerate-config`` (None: every stage in this process)."""
    from cwpo.accelerate_configs import ACCELERATE_CONFIGS, accelerate_config
    from cwpo.experiments.launched import Launcher

    if args.processes < 1:
        raise ConfigError(f"--processes must be >= 1, got {args.processes}")
    config = args.accelerate_config
    if config in ACCELERATE_CONFIGS:
        config = str(accelerate_config(config))
    elif config and not os.path.isfile(config):
        raise ConfigError(f"--accelerate-config {config}: not a shipped config name nor a file")
    if args.processes == 1 and not config:
        return None
    return Launcher(args.processes, config)


def run(args) -> int:
    from cwpo.experiments.recipe import all_seeds, check_run, load_recipe
    from cwpo.experiments.recipes import find_recipe, packaged_recipes

    if args.list:
        for name, path in packaged_recipes().items():
            print(f"{name:28s} {path}")
        return 0
    if not args.recipe:
        print("cwpo run: give a recipe YAML (or --list)")
        return 2
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # every rank would run the whole pipeline and wait on the others' stage locks: refuse
        raise ConfigError(
            "cwpo run does not run under accelerate launch / torchrun: it launches its stages itself, "
            "use `cwpo run RECIPE --processes N [--accelerate-config NAME]` (see docs/scaling.md)"
        )
    launcher = _launcher(args)
    path = find_recipe(args.recipe)
    recipe = load_recipe(path)
    check_run(recipe, args.methods)  # the checks run_recipe makes before it writes anything
    if launcher is not None:
        from cwpo.experiments.launched import per_device_errors

        errors = per_device_errors({"sft": recipe.sft, "align": recipe.align}, launcher.processes)
        if errors:
            raise ConfigError("; ".join(errors))
    if args.validate:
        extra = "".join(f", {m}: {len(v)}" for m, v in recipe.method_seeds.items())
        seeds = f"{len(all_seeds(recipe))} seed(s){extra}"
        print(f"{path}: ok ({recipe.track} track, {seeds}, grid {recipe.grid or 'none'})")
        return 0
    from cwpo.experiments.pipeline import run_recipe
    from cwpo.experiments.tables import format_summary

    out = _output(args)
    result = run_recipe(
        recipe,
        out,
        progress=not args.no_progress,
        only_methods=args.methods,
        stages_dir=args.cache,
        overwrite=args.overwrite,
        launcher=launcher,
    )
    print(format_summary(result["summary"]))
    print(f"results: {result['results_dir']}")
    if args.report:
        from cwpo.experiments.report import write_report

        print(f"report: {write_report(out)}")
    if getattr(args, "log_file", None):
        print(f"log: {args.log_file}")
    return 0
