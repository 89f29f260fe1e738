"""Seeded splits of a labeled pool (D_l, D_u, test) and the paper's token-length filter."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from cwpo.data.schema import LABELED, UNLABELED, to_unlabeled
from cwpo.errors import DataError


def _check_fraction(name: str, value: float, allow_zero: bool = False) -> None:
    ok = (0 <= value < 1) if allow_zero else (0 < value < 1)
    if not ok:
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise DataError(f"{name} must be in {interval}, got {value}")


def hh_subset(row: dict) -> str:
    """``harmless`` or ``helpful``: the HH-RLHF subset a loaded row came from (by its source file)."""
    return "harmless" if "harmless" in str(row.get("source", "")) else "helpful"


def _mixed_labeled(pool: list[int], rows: Sequence[dict], n_labeled: int, mix: dict, group) -> list[int]:
    """``n_labeled`` indices of ``pool`` (already shuffled) whose groups follow the shares ``mix``."""
    total = sum(mix.values())
    by_group: dict[str, list[int]] = {}
    for i in pool:
        by_group.setdefault(group(rows[i]), []).append(i)
    chosen: list[int] = []
    for name, share in mix.items():
        want = round(n_labeled * share / total)
        have = by_group.get(name, [])
        if want > len(have):
            raise DataError(
                f"labeled_mix asks for {want} {name!r} pairs in D_l but the pool has {len(have)}; "
                "lower labeled_frac or the share"
            )
        chosen += have[:want]
    return chosen


def _text_key(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def duplicate_groups(rows: Sequence[dict]) -> list[list[int]]:
    """Indices of rows that hold the same pair (same prompt and the same two responses, in
    either order): one list per pair that occurs more than once, in order of first occurrence."""
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        key = (_text_key(row["prompt"]), *sorted((_text_key(row["chosen"]), _text_key(row["rejected"]))))
        groups.setdefault(key, []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def _keep_copies_together(
    order: list[int], parts: dict[str, list[int]], groups: list[list[int]]
) -> dict[str, list[int]]:
    """Move every copy of a duplicated pair into the split of its copy that comes first in the
    seeded ``order`` (a pool without duplicates is left exactly as it was split)."""
    where = {i: name for name, idx in parts.items() for i in idx}
    rank = {i: k for k, i in enumerate(order)}
    for group in groups:
        first = min(group, key=rank.__getitem__)
        for i in group:
            where[i] = where[first]
    return {name: sorted(i for i, n in where.items() if n == name) for name in parts}


def poison_labels(rows: Sequence[dict], frac: float, seed: int, subset: str | None = None) -> list[dict]:
    """Flip the human label (swap chosen and rejected) of a seeded ``frac`` of ``rows``.

    With ``subset`` only rows of that HH-RLHF subset are candidates, and ``frac`` is a share of
    them (a targeted attack). Flipped rows carry ``poisoned: true`` (for analysis; no stage reads it).
    """
    _check_fraction("poison_frac", frac, allow_zero=True)
    candidates = [i for i, r in enumerate(rows) if subset is None or hh_subset(r) == subset]
    if subset is not None and not candidates:
        raise DataError(f"poison_subset {subset!r}: D_l has no pair of that subset")
    flip = set(random.Random(seed + 104_729).sample(candidates, round(len(candidates) * frac)))
    out = []
    for i, row in enumerate(rows):
        if i in flip:
            row = {**row, "chosen": row["rejected"], "rejected": row["chosen"], "poisoned": True}
        out.append(row)
    return out


def split_pool(
    rows: Sequence[dict],
    labeled_frac: float = 0.3,
    test_frac: float = 0.1,
    seed: int = 0,
    labeled_mix: dict[str, float] | None = None,
    group=hh_subset,
) -> dict:
    """Split labeled pairs into ``test`` (held out), ``labeled`` (D_l) and ``unlabeled`` (D_u).

    ``test_frac`` of the pool is held out first; ``labeled_frac`` of the rest becomes D_l, the
    remainder D_u with its responses in random order and the human label kept as ``human_label``
    (evaluation only). Deterministic for a given seed. ``labeled_mix`` (e.g. ``{"harmless": 0.9,
    "helpful": 0.1}``, groups given by ``group(row)``) draws D_l with those shares instead of at
    random (an imbalanced D_l, paper App. J.8); the test set and D_u stay mixed.

    Copies of the same pair (:func:`duplicate_groups`) all go to the split of the copy drawn
    first, so no test pair is also trained on; the split sizes then differ from the fractions
    by at most the number of copies moved. A pool without copies splits exactly as before.
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
    picked = _mixed_labeled(pool, rows, n_labeled, labeled_mix, group) if labeled_mix else pool[:n_labeled]
    parts = {
        "labeled": sorted(picked),
        "unlabeled": sorted(set(pool) - set(picked)),
        "test": sorted(order[:n_test]),
    }
    groups = duplicate_groups(rows)
    if groups:
        parts = _keep_copies_together(order, parts, groups)
        for name in ("labeled", "unlabeled"):
            if not parts[name]:
                raise DataError(
                    f"with every copy of a repeated pair kept in one split, {name} is empty "
                    f"({len(rows)} rows hold {len(rows) - sum(len(g) - 1 for g in groups)} distinct pairs): "
                    "use more distinct pairs or another fraction"
                )
    return {
        "labeled": [rows[i] for i in parts["labeled"]],
        "unlabeled": to_unlabeled([rows[i] for i in parts["unlabeled"]], seed=seed),
        "test": [rows[i] for i in parts["test"]],
    }


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
