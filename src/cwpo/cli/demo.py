"""cwpo demo: the whole CW-PO pipeline on the embedded data and the offline models."""

from __future__ import annotations

import time

HELP = (
    "Run the packaged demo recipe: 800 real HH-RLHF pairs shipped inside cwpo, a MiniLM-L6 Bradley-Terry "
    "annotator trained on 30% of them, confidence labels for the rest, SFT and then Human-DPO, WS-DPO and "
    "CW-DPO of SmolLM2-135M-Instruct, preference accuracy on held-out human pairs, and a report."
)
ON_INTERRUPT = "finished stages are kept and a re-run resumes"


def configure(parser):
    parser.add_argument("--output", "-o", default="cwpo-demo", help="results folder (default: ./cwpo-demo)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    from cwpo.experiments.pipeline import run_recipe
    from cwpo.experiments.recipe import load_recipe
    from cwpo.experiments.recipes import PACKAGE_CONFIGS
    from cwpo.experiments.report import write_report
    from cwpo.experiments.tables import format_summary

    start = time.time()
    recipe = load_recipe(PACKAGE_CONFIGS / "demo.yaml")
    print(f"cwpo demo: {recipe.description}")
    result = run_recipe(recipe, args.output, progress=not args.no_progress)
    report = write_report(args.output)
    rows = {r["method"]: r for r in result["rows"]}
    print()
    print("Preference accuracy of the aligned SmolLM2 on held-out human-labeled HH-RLHF pairs")
    print("(share of pairs where beta*log(pi/pi_sft) ranks the human-preferred response higher):")
    print()
    print(format_summary(result["summary"]))
    any_row = next(iter(rows.values()))
    if any_row.get("annotator_eval_acc") is not None:
        print(
            f"\nweak annotator (MiniLM-L6, BT): held-out accuracy {100 * any_row['annotator_eval_acc']:.1f}%, "
            f"accuracy of its labels on D_u {100 * (any_row.get('weak_label_acc') or float('nan')):.1f}%"
        )
    print(f"\nreport: {report}")
    if getattr(args, "log_file", None):
        print(
            f"log: {args.log_file} (library logging, per-step training metrics, warnings; --verbose shows them)"
        )
    print(f"done in {time.time() - start:.0f}s (a re-run reuses every cached stage)")
    return 0
