"""``cwpo sft``: supervised fine-tuning of the strong model on (prompt, chosen)."""

from __future__ import annotations

import argparse

from cwpo.config import add_config_args, config_from_args

HELP = (
    "Supervised fine-tuning on (prompt, chosen): LoRA (paper: r=8, alpha=16, dropout 0.05, cosine, warmup, "
    "weight decay 0.05) or full fine-tuning. Pass the annotated file to train on the weak labels' y_w (as in "
    "the paper). CPU defaults: 1 epoch, batch 4, max_length 512. The output folder is what `cwpo align "
    "--policy` starts from and uses as reference."
)
ON_INTERRUPT = (
    "checkpoints saved so far (every --save-steps) are kept beside --output and an earlier output is "
    "unchanged; re-run with --resume to continue"
)


def configure(parser: argparse.ArgumentParser) -> None:
    from cwpo.align.sft import SFTConfig

    add_config_args(parser, SFTConfig)
    parser.add_argument(
        "--full", action="store_true", help="full fine-tuning instead of LoRA (= --lora false)"
    )


def run(args: argparse.Namespace) -> int:
    from cwpo.align.sft import SFTConfig, sft
    from cwpo.console import training_bar

    cfg = config_from_args(SFTConfig, args, {"lora": False} if args.full else None)
    res = sft(cfg, callbacks=[training_bar("sft")])
    print(f"sft: {res['global_step']} steps, final loss {res['final_loss']:.4f} -> {res['output']}")
    return 0
