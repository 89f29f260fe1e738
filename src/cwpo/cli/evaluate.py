"""``cwpo evaluate``: GRA of a policy against a reference, preference accuracy, judge win-rate."""

from __future__ import annotations

import argparse

HELP = (
    "Generate responses from the policy and the reference with identical sampling settings and seeds "
    "(cached), score them with a gold reward (vader, a reward-model folder or hub id, module:function) "
    "and report Gold Reward Accuracy (ties count half) with the std over three subsets and a bootstrap "
    "95% interval; optionally preference accuracy on held-out human-labeled pairs (--pairs) and an "
    "LLM-judge win-rate (--judge-url/--judge-model). Writes summary.json, summary.md, rows.jsonl and "
    "manifest.json into --output."
)
ON_INTERRUPT = "cached generations and judge verdicts are kept; a re-run reuses them"


def configure(parser: argparse.ArgumentParser) -> None:
    from cwpo.config import add_config_args
    from cwpo.evaluate.evaluate import EvalConfig

    add_config_args(parser, EvalConfig)


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from cwpo.config import config_from_args
    from cwpo.evaluate.evaluate import EvalConfig, evaluate, summary_markdown

    cfg = config_from_args(EvalConfig, args)
    summary = evaluate(cfg)
    if "rank" in summary:  # another rank of a launched run: rank 0 reports
        return 0
    print(summary_markdown(summary), end="")
    print(f"wrote {cfg.output}/summary.json, summary.md, rows.jsonl, manifest.json")
    return 0
