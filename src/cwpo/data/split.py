"""Seeded splits of a labeled pool (D_l, D_u, test) and the paper's token-length filter."""

from __future__ import annotations

import random
from collections.abc import Sequence

from cwpo.data.schema import LABELED, UNLABELED, to_unlabeled
from cwpo.errors import DataError


def _check_fraction(name: str, value: float, allow_zero: bool = False) -> None:
    ok = (0 <= value < 1) if allow_zero else (0 < value < 1)
    if not ok:
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise DataError(f"{name} must be in {interval}, got {value}")


def split_pool(
    rows: Sequence[dict], labeled_frac: float = 0.3, test_frac: float = 0.1, seed: int = 0
) -> dict:
    """Split labeled pairs into ``test`` (held out), ``labeled`` (D_l) and ``unlabeled`` (D_u).

    ``test_frac`` of the pool is held out first; ``labeled_frac`` of the rest becomes D_l, the
    remainder D_u with its responses in random order and the human label kept as ``human_label``
    (evaluation only). Deterministic for a given seed.
    """
    _check_fraction("labeled_frac", labeled_frac)
    _check_fraction("test_frac", test_frac, allow_zero=True)
    if rows and "chosen" not in rows[0]:
        raise DataError("split_pool needs labeled pairs (prompt, chosen, rejected)")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = round(len(rows) * test_frac)
    pool = order[n_test:]
    n_labeled = round(len(pool) * labeled_frac)
    if n_labeled == 0 or n_labeled == len(pool):
        raise DataError(
            f"labeled_frac={labeled_frac} of {len(pool)} pairs leaves an empty D_l or D_u; use more data or another fraction"
        )
    test = [rows[i] for i in sorted(order[:n_test])]
    labeled = [rows[i] for i in sorted(pool[:n_labeled])]
    unlabeled = to_unlabeled([rows[i] for i in sorted(pool[n_labeled:])], seed=seed)
    return {"labeled": labeled, "unlabeled": unlabeled, "test": test}


def filter_by_length(
    rows: Sequence[dict], tokenizer, max_tokens: int = 512, batch: int = 512
) -> tuple[list[dict], int]:
    """Drop pairs whose prompt + longer response exceeds ``max_tokens`` tokens (paper: 512).

    Returns ``(kept_rows, n_dropped)``. Token counts use ``tokenizer`` without special tokens.
    """
    if max_tokens <= 0:
        raise DataError(f"max_tokens must be positive, got {max_tokens}")
    if not rows:
        return [], 0
    cols = LABELED if "chosen" in rows[0] else UNLABELED
    kept = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        lens = {
            col: [
                len(ids) for ids in tokenizer([r[col] for r in chunk], add_special_tokens=False)["input_ids"]
            ]
            for col in cols
        }
        for j, row in enumerate(chunk):
            if lens[cols[0]][j] + max(lens[cols[1]][j], lens[cols[2]][j]) <= max_tokens:
                kept.append(row)
    return kept, len(rows) - len(kept)
