"""cwpo accelerate-config: the path of a shipped accelerate launch config, or the list of them."""

from __future__ import annotations

HELP = (
    "Print the path of a shipped accelerate config (ddp, fsdp, zero2, zero3) for "
    '`accelerate launch --config_file "$(cwpo accelerate-config fsdp)" -m cwpo.cli.main align ...`; '
    "without a name, list them. See docs/scaling.md."
)


def configure(parser):
    parser.add_argument("name", nargs="?", help="ddp, fsdp, zero2 or zero3 (none: list them)")


def run(args) -> int:
    from cwpo.accelerate_configs import ACCELERATE_CONFIGS, accelerate_config

    if args.name:
        print(accelerate_config(args.name))
        return 0
    for c in ACCELERATE_CONFIGS.values():
        note = "  (GPU only, needs deepspeed)" if c.gpu_only else ""
        print(f"{c.name:6s} {c.what}{note}\n       {c.path}")
    return 0
