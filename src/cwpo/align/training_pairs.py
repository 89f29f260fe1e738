"""The pairs a training stage reads: a labeled file as is, or human-labeled unlabeled pairs."""

from __future__ import annotations

from cwpo.data.schema import HUMAN_LABEL, kind_of, read_pairs, to_labeled
from cwpo.errors import DataError


def read_training_pairs(path: str) -> tuple[list[dict], str]:
    """Labeled pairs from ``path`` and where their labels come from.

    A labeled file (prompt/chosen/rejected, e.g. written by ``cwpo annotate``) is used as is
    (``"file"``); an unlabeled file with ``human_label`` becomes the human-labeled pairs
    (``"human"``, the Human baseline). An unlabeled file without labels is refused.
    """
    rows = read_pairs(path)
    if kind_of(rows[0]) == "labeled":
        return rows, "file"
    if HUMAN_LABEL not in rows[0]:
        raise DataError(
            "unlabeled pairs (prompt/response_a/response_b) without a human_label column: label them first "
            "with `cwpo annotate`, or pass a labeled file (prompt/chosen/rejected)",
            path,
        )
    for i, row in enumerate(rows, 1):
        if row.get(HUMAN_LABEL) not in ("a", "b"):
            raise DataError(f"{HUMAN_LABEL} must be 'a' or 'b', got {row.get(HUMAN_LABEL)!r}", path, i)
    return to_labeled(rows), "human"
