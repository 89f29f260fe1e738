"""cwpo demo: the whole CW-PO pipeline on the embedded data and the offline models."""

from __future__ import annotations

import textwrap
import time

HELP = (
    "Run the packaged demo recipe: CW-PO on the controlled-sentiment task with a real gold (VADER). "
    "SmolLM2-135M-Instruct answers HH-RLHF prompts shipped inside cwpo (two answers each); simulated "
    "humans label 30% of the pairs by the gold; a MiniLM-L6 Bradley-Terry annotator labels the rest with "
    "a confidence; Human-DPO, WS-DPO and CW-DPO align the model; GRA on held-out prompts, with CIs."
)
ON_INTERRUPT = "finished stages are kept and a re-run resumes"


def configure(parser):
    parser.add_argument("--output", "-o", default="cwpo-demo", help="results folder (default: ./cwpo-demo)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace another recipe's results in --output (kept until the demo is complete)",
    )


def run(args) -> int:
    from cwpo.experiments.pipeline import check_run_folder, run_recipe
    from cwpo.experiments.recipe import load_recipe
    from cwpo.experiments.recipes import PACKAGE_CONFIGS
    from cwpo.experiments.report import write_report
    from cwpo.experiments.report_evidence import has_gold_rows
    from cwpo.experiments.tables import format_summary

    start = time.time()
    recipe = load_recipe(PACKAGE_CONFIGS / "demo.yaml")
    check_run_folder(args.output, recipe, args.overwrite)  # a refused --output is one line, before the header
    print(f"cwpo demo: {recipe.description}")
    result = run_recipe(recipe, args.output, progress=not args.no_progress, overwrite=args.overwrite)
    print()
    if has_gold_rows(result["rows"]):  # the demo's table compares against the gold reward
        from cwpo.experiments.demo_table import SCALE_UP, demo_sentence, demo_summary, format_demo_table

        summary = demo_summary(result["rows"])
        intro = (
            "GRA: share of held-out prompts where the gold (VADER) scores the aligned model's answer "
            "above the starting model's (ties half); 95% CIs by bootstrap over prompts."
        )
        table, sentence = format_demo_table(summary), demo_sentence(summary)
        print(textwrap.fill(intro, width=100), table, textwrap.fill(sentence, width=100), sep="\n\n")
        print(f"\nscale it up: {SCALE_UP}")
        preamble = ["## The demo's table", "", intro, "", "```", table, "```", "", sentence, ""]
        preamble += [f"Scale it up: `{SCALE_UP}`.", ""]
        report = write_report(args.output, preamble=preamble)
    else:
        print(format_summary(result["summary"]))
        report = write_report(args.output)
    print(f"\nreport: {report}")
    if getattr(args, "log_file", None):
        print(
            f"log: {args.log_file} (library logging, per-step training metrics, warnings; --verbose shows them)"
        )
    print(f"done in {time.time() - start:.0f}s (a re-run reuses every cached stage)")
    return 0
