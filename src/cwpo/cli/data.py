"""cwpo data: load preference pairs, filter them, split them into D_l / D_u / test."""

from __future__ import annotations

from cwpo.config import add_config_args, config_from_args

HELP = (
    "Load preference pairs (HH-RLHF transcripts; JSONL/JSON/CSV/Parquet with prompt/chosen/rejected or "
    "prompt/response_a/response_b; UltraFeedback-binarized, TL;DR comparisons, SHP; any hub id), drop pairs "
    "over --max-tokens, and write labeled.jsonl (D_l), unlabeled.jsonl (D_u, human labels kept for "
    "evaluation only) and test.jsonl."
)


def configure(parser):
    from cwpo.data.prepare import DataConfig

    add_config_args(parser, DataConfig)
    parser.add_argument("--force", action="store_true", help="redo the work even if the output is up to date")


def run(args) -> int:
    from cwpo.data.prepare import DataConfig, prepare_data

    cfg = config_from_args(DataConfig, args)
    stats = prepare_data(cfg, force=args.force)
    args.cached = bool(stats.get("cached"))  # the closing stage line says "cached" (cwpo.cli.main)
    print(f"source: {stats['source']}" + ("  (cached: nothing to do)" if stats.get("cached") else ""))
    for name, n in stats.get("per_file", {}).items():
        print(f"  {name}: {n} pairs")
    print(f"loaded {stats['loaded']} pairs")
    for reason, n in stats.get("skipped", {}).items():
        print(f"  skipped {n} ({reason.replace('_', ' ')})")
    for line in stats.get("skipped_examples", [])[:5]:
        print(f"    e.g. {line}")
    if "dropped_too_long" in stats:
        print(f"  dropped {stats['dropped_too_long']} over {stats['max_tokens']} tokens")
    print(
        f"kept {stats['after_filters']} pairs -> " + ", ".join(f"{k}: {v}" for k, v in stats["files"].items())
    )
    print(f"wrote {cfg.output}")
    return 0
