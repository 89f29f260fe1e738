"""The ``cwpo`` console script: one subcommand per pipeline stage.

Stage modules are imported only when their subcommand runs, so ``cwpo --help`` is instant; each
command module imports its stage inside ``configure``/``run`` for the same reason (measured on a
2-core CPU: ``cwpo --help`` 0.4 s and ``cwpo run --help`` 0.2 s, against 8 s once a stage module
has loaded torch and transformers, as ``cwpo sft --help`` must).
Errors caused by input (:class:`cwpo.errors.CWPOError`) print one line and exit 2. On Ctrl-C a
stage says what a re-run does: its module's ``ON_INTERRUPT`` (stages that cannot resume have none).

Every command runs inside :func:`cwpo.console.session`: the terminal shows stage lines, progress
bars and results; library logging, per-step training metrics and warnings go to the command's log
file (:func:`log_file_for`), and ``--verbose`` shows them live too.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from pathlib import Path

from cwpo import __version__, hugepages
from cwpo.errors import CWPOError

# name -> (module, one-line help). Order is the pipeline's order.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": (
        "cwpo.cli.data",
        "load preference pairs (HH-RLHF, JSONL/CSV/Parquet, hub layouts), filter, split",
    ),
    "models": ("cwpo.cli.models", "list the offline models and prepare (convert/cache) them"),
    "train-annotator": (
        "cwpo.cli.train_annotator",
        "train the weak annotator (BT, PairRM or WS-DPO) on labeled pairs",
    ),
    "annotate": (
        "cwpo.cli.annotate",
        "label unlabeled pairs with the weak annotator (or any LLM endpoint) and a confidence",
    ),
    "select": ("cwpo.cli.select", "choose the next pairs for humans to label (random, uncertainty, diverse)"),
    "sft": ("cwpo.cli.sft", "supervised fine-tuning of the strong model on (prompt, chosen)"),
    "align": ("cwpo.cli.align", "confidence-weighted DPO / IPO / rDPO (and every baseline) on TRL"),
    "evaluate": ("cwpo.cli.evaluate", "gold reward accuracy, preference accuracy, LLM-judge win-rate"),
    "run": (
        "cwpo.cli.run",
        "run a whole pipeline or a grid of them from a YAML recipe, cached and resumable",
    ),
    "report": ("cwpo.cli.report", "write a markdown report with tables and plots from a results folder"),
    "demo": ("cwpo.cli.demo", "the whole CW-PO pipeline on the embedded data and offline models"),
    "accelerate-config": (
        "cwpo.cli.accelerate_config",
        "the shipped accelerate configs (DDP, FSDP, DeepSpeed ZeRO-2/3) for accelerate launch",
    ),
}


# commands that report their own stages (or are not stages); the others get one closing stage line
_NOT_STAGES = {"run", "demo", "models", "report", "accelerate-config"}


def _output_of(args: argparse.Namespace) -> str | None:
    """The ``--output`` of a stage command, from the flag or from its ``--config`` YAML."""
    if getattr(args, "output", None):
        return args.output
    config = getattr(args, "config", None)
    if config and Path(config).is_file():
        from cwpo.config import load_yaml

        try:
            return load_yaml(config).get("output")
        except CWPOError:
            return None  # the stage reports the broken YAML itself
    return None


def log_file_for(name: str, module, args: argparse.Namespace) -> Path:
    """Where a command's log goes: ``<output>.log`` beside its output (a file, a stage's folder, the
    results folder of ``cwpo run``/``demo``: never inside it, which cwpo's output guard keeps to
    cwpo's own files); ``$CWPO_CACHE/logs/<command>.log`` for a command without an output. cwpo
    only appends to a log it created: when ``<output>.log`` is anything else, the log goes to
    ``<output>.cwpo-N.log`` and a line says so (:func:`cwpo.outputs.log_path_beside`)."""
    output = module.output_of(args) if hasattr(module, "output_of") else _output_of(args)
    if output:
        from cwpo.outputs import log_path_beside

        path, note = log_path_beside(output)
        if note:
            print(f"cwpo {name}: {note}", file=sys.stderr)
        return path
    from cwpo.models.registry import cache_dir

    return cache_dir() / "logs" / f"{name}.log"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (exit 2), like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _available() -> dict[str, tuple[str, str]]:
    return {k: v for k, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cwpo",
        description="Confidence-Weighted Preference Optimization: data -> weak annotator -> annotate -> "
        "SFT -> confidence-weighted alignment -> evaluation -> report.",
    )
    parser.add_argument("--version", action="version", version=f"cwpo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in _available().items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


SECRET_ARGS = ("judge_key", "llm_key")  # API keys: never in a log


def redacted(argv: list[str], secrets: list[str | None]) -> list[str]:
    """``argv`` with every secret value (e.g. the parsed ``--judge-key``) replaced by ``***``.

    By value, not by flag name: argparse also accepts ``--judge-key=V`` and abbreviations such as
    ``--judge-k V``, and the value is what must never reach the log's header.
    """
    secrets = [s for s in secrets if s]
    out = []
    for a in argv:
        for s in secrets:
            a = a.replace(s, "***")
        out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    hugepages.choose()  # before a stage module loads torch, which reads it once
    available = _available()
    if not argv or argv[0] not in available:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 0
        parser.parse_args(argv)  # prints --help/--version or an "invalid choice" error
        return 0
    name = argv[0]
    module = importlib.import_module(available[name][0])
    parser = _Parser(prog=f"cwpo {name}", description=getattr(module, "HELP", available[name][1]))
    module.configure(parser)
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also show library logging, warnings and per-step training metrics live (always in the log file)",
    )
    args = parser.parse_args(argv[1:])
    from cwpo import console

    start = time.time()
    try:
        log_file = log_file_for(name, module, args)
        with console.session(
            log_file,
            verbose=args.verbose,
            title=f"cwpo {' '.join(redacted(argv, [getattr(args, k, None) for k in SECRET_ARGS]))}",
        ):
            args.log_file = log_file
            rc = int(module.run(args) or 0)
            if rc == 0 and name not in _NOT_STAGES:
                seconds, cached = time.time() - start, getattr(args, "cached", False)
                what = console.STAGE_WHAT.get(name, "")
                console.stage_line(name, what, seconds, cached=cached, detail=f"log: {log_file}")
            return rc
    except CWPOError as e:
        print(f"cwpo {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        after = getattr(module, "ON_INTERRUPT", "nothing was kept; a re-run starts over")
        print(f"cwpo {name}: interrupted; {after}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
