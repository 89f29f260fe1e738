"""``cwpo select``: the next pairs for humans to label, from an unlabelled pool (thin wrapper)."""

from __future__ import annotations

from cwpo.annotator.select import SelectConfig, select_pairs
from cwpo.config import add_config_args, config_from_args

HELP = (
    "Choose the next pairs for humans to label from an unlabelled pool: random, uncertainty (the "
    "annotator's lowest confidence) or uncertain_diverse; one round of select -> label -> "
    "train-annotator -> annotate."
)


def configure(parser) -> None:
    add_config_args(parser, SelectConfig)


def run(args) -> int:
    stats = select_pairs(config_from_args(SelectConfig, args))
    line = f"{stats['n_selected']} of {stats['n_pool'] - stats['n_already_labeled']} unlabelled pairs chosen "
    line += f"({stats['strategy']}) into {stats['output']}"
    if stats["mean_confidence_selected"] is not None:
        line += f"; their mean annotator confidence {stats['mean_confidence_selected']:.3f}"
    print(line)
    return 0
