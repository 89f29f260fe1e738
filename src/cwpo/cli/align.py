"""``cwpo align``: one command for every method (Human, WS-DPO, CW-PO, filtering, Table 5 weights)."""

from __future__ import annotations

import argparse
import dataclasses

from cwpo.config import add_config_args, build_config, config_from_args, load_yaml
from cwpo.errors import ConfigError
from cwpo.losses import LOSS_NAMES

HELP = (
    "Preference optimization of the SFT model. A method is data: Human = --train with human labels + "
    "--weighting none; WS-DPO = weak labels + none; CW-PO = weak labels + confidence; filtering = top-N; "
    f"--loss {'|'.join(LOSS_NAMES)}. With --online, the policy samples pairs for --prompts, the weak --annotator "
    "labels them with a confidence, and a weighted step follows (paper App. J.5)."
)
ON_INTERRUPT = (
    "checkpoints saved so far (every --save-steps) are kept beside --output and an earlier output is "
    "unchanged; re-run with --resume to continue (--online starts over)"
)

_ONLINE_ONLY = ("prompts", "annotator", "rounds", "prompts_per_round", "max_new_tokens", "temperature")


def configure(parser: argparse.ArgumentParser) -> None:
    from cwpo.align.align import AlignConfig

    add_config_args(parser, AlignConfig)
    parser.add_argument(
        "--full", action="store_true", help="full fine-tuning instead of LoRA (= --lora false)"
    )
    online = parser.add_argument_group("online CW-DPO (--online)")
    online.add_argument("--online", action="store_true", help="sample pairs from the policy each round")
    online.add_argument("--prompts", default=argparse.SUPPRESS, help="file with a 'prompt' column")
    online.add_argument("--annotator", default=argparse.SUPPRESS, help="weak annotator folder")
    online.add_argument("--rounds", type=int, default=argparse.SUPPRESS, help="rounds (default: 10)")
    online.add_argument("--prompts-per-round", dest="prompts_per_round", type=int, default=argparse.SUPPRESS)
    online.add_argument("--max-new-tokens", dest="max_new_tokens", type=int, default=argparse.SUPPRESS)
    online.add_argument("--temperature", type=float, default=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.online:
        from cwpo.align.online import OnlineConfig, online_align
        from cwpo.annotator import load_annotator

        names = {f.name for f in dataclasses.fields(OnlineConfig)}
        values = load_yaml(args.config) if getattr(args, "config", None) else {}
        values.update({k: v for k, v in vars(args).items() if k in names})
        cfg = build_config(OnlineConfig, values, "command line")
        if not cfg.annotator:
            raise ConfigError("online align needs --annotator (a weak annotator folder)")
        res = online_align(cfg, load_annotator(cfg.annotator))
        print(f"online align: {res['rounds']} rounds, final loss {res['final_loss']:.4f} -> {res['output']}")
        return 0
    given = [n for n in _ONLINE_ONLY if n in vars(args)]
    if given:
        raise ConfigError(f"{', '.join('--' + g.replace('_', '-') for g in given)} only apply with --online")
    from cwpo.align.align import AlignConfig, align
    from cwpo.console import training_bar

    cfg = config_from_args(AlignConfig, args, {"lora": False} if args.full else None)
    res = align(cfg, callbacks=[training_bar(f"align {cfg.loss}")])
    print(
        f"align: {cfg.loss} + {res['weighting']} on {res['n_pairs_trained']} pairs "
        f"({res['label_source']} labels), {res['global_step']} steps, final loss {res['final_loss']:.4f} -> "
        f"{res['output']}"
    )
    return 0
