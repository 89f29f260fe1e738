"""cwpo report: a markdown report with tables and plots from a results folder."""

from __future__ import annotations

HELP = (
    "Write report.md with tables (beside the paper's numbers) and PNG plots from a `cwpo run` results folder."
)


def configure(parser):
    parser.add_argument("results_dir", help="folder written by `cwpo run`")
    parser.add_argument("--output", "-o", help="report folder (default: RESULTS_DIR/report)")


def output_of(args) -> str | None:
    """The report folder (its log goes beside it), when the results folder exists."""
    from pathlib import Path

    if not Path(args.results_dir).is_dir():
        return None
    return args.output or str(Path(args.results_dir) / "report")


def run(args) -> int:
    from cwpo.experiments.report import write_report

    print(write_report(args.results_dir, args.output))
    return 0
