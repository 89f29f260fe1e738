"""cwpo report: a markdown report with tables and plots from a results folder."""

from __future__ import annotations

HELP = (
    "Write report.md with tables (beside the paper's numbers) and PNG plots from a `cwpo run` results folder."
)


def configure(parser):
    parser.add_argument("results_dir", help="folder written by `cwpo run`")
    parser.add_argument("--output", "-o", help="report folder (default: RESULTS_DIR/report)")


def output_of(args) -> str | None:
    """What the log is named after: ``--output``, else the results folder, so the log of
    ``cwpo report runs/x`` is ``runs/x.log``, the one ``cwpo run`` wrote (inside ``runs/x``
    there is only what the run and its report write)."""
    from pathlib import Path

    if args.output:
        return args.output
    return args.results_dir if Path(args.results_dir).is_dir() else None


def run(args) -> int:
    from cwpo.experiments.report import write_report

    print(write_report(args.results_dir, args.output))
    return 0
