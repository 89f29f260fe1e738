"""The one representation of preference data that every stage reads and writes.

* **Labeled pairs**: ``prompt``, ``chosen``, ``rejected`` (the chosen response is preferred).
* **Unlabeled pairs**: ``prompt``, ``response_a``, ``response_b``. When they come from a labeled
  pool, the human label is kept in ``human_label`` (``"a"`` or ``"b"``: which response the human
  preferred) for evaluation only; no training code reads it.

A conversation longer than one user turn also keeps its turns in ``prompt_messages`` (a list of
``{"role", "content"}``; ``prompt`` is then its transcript, see :mod:`cwpo.data.chat`).
Rows are plain dicts; any extra column is carried along untouched. Files are JSON Lines
(``.jsonl``) or Parquet (``.parquet``), chosen by extension, always written atomically.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from cwpo.atomic_files import atomic_path, write_jsonl
from cwpo.data.chat import PROMPT_MESSAGES, message_problem
from cwpo.data.readers import read_records
from cwpo.errors import DataError

LABELED = ("prompt", "chosen", "rejected")
UNLABELED = ("prompt", "response_a", "response_b")
HUMAN_LABEL = "human_label"


def kind_of(columns: Iterable[str]) -> str | None:
    """``"labeled"``, ``"unlabeled"`` or ``None`` for a set of column names."""
    cols = set(columns)
    if set(LABELED) <= cols:
        return "labeled"
    if set(UNLABELED) <= cols:
        return "unlabeled"
    return None


def validate_row(row: dict, kind: str, path: str | None = None, row_no: int | None = None) -> None:
    """Raise :class:`DataError` naming the file, row and problem if ``row`` is not a valid pair."""
    required = LABELED if kind == "labeled" else UNLABELED
    missing = [c for c in required if c not in row]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; found {sorted(row)} (a column mapping such as "
            f"--column-map prompt=question can rename them)",
            path,
            row_no,
        )
    for col in required:
        value = row[col]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError(f"column {col!r} is empty (null/NaN)", path, row_no)
        if not isinstance(value, str):
            raise DataError(f"column {col!r} must be text, got {type(value).__name__}", path, row_no)
    for col in required[1:]:
        if not row[col].strip():
            raise DataError(f"empty response in column {col!r}", path, row_no)
    if row.get(PROMPT_MESSAGES) is not None:
        problem = message_problem(row[PROMPT_MESSAGES])
        if problem:
            raise DataError(f"column {PROMPT_MESSAGES!r} {problem}", path, row_no)


def read_pairs(path: str | os.PathLike, kind: str | None = None) -> list[dict]:
    """Read a normalized pair file (JSONL or Parquet, as :func:`write_pairs` writes; JSON, CSV and
    gzipped files too, as `cwpo data` reads them).

    Validates every row; ``kind`` (labeled/unlabeled) is detected from the columns if not given.
    For other layouts (HH-RLHF, CSV, hub datasets...) use :func:`cwpo.data.load_pairs`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", str(path))
    if path.is_dir():
        raise DataError("is a folder, not a pair file (give its JSONL, JSON, CSV or Parquet file)", str(path))
    rows = read_records(path)  # the readers of `cwpo data`: .gz, CSV, JSON, Parquet too
    if not rows:
        raise DataError("file holds no pairs", str(path))
    kind = kind or kind_of(rows[0])
    if kind is None:
        raise DataError(
            f"columns {sorted(rows[0])} are neither labeled {list(LABELED)} nor unlabeled {list(UNLABELED)}",
            str(path),
            1,
        )
    for i, row in enumerate(rows, 1):
        validate_row(row, kind, str(path), i)
    return rows


def write_pairs(path: str | os.PathLike, rows: Sequence[dict]) -> Path:
    """Write rows atomically as JSONL, or Parquet when ``path`` ends in ``.parquet``."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_path(path) as tmp:
            pq.write_table(pa.Table.from_pylist(list(rows)), tmp)
        return path
    return write_jsonl(path, rows)


def to_unlabeled(rows: Sequence[dict], seed: int = 0) -> list[dict]:
    """Hide the labels of labeled pairs: a seeded random order of the two responses.

    The human label is kept as ``human_label`` ("a"/"b") for evaluation only.
    """
    rng = random.Random(seed)
    out = []
    for row in rows:
        extra = {k: v for k, v in row.items() if k not in LABELED}
        if rng.random() < 0.5:
            a, b, label = row["chosen"], row["rejected"], "a"
        else:
            a, b, label = row["rejected"], row["chosen"], "b"
        out.append({"prompt": row["prompt"], "response_a": a, "response_b": b, HUMAN_LABEL: label, **extra})
    return out


def to_labeled(rows: Sequence[dict]) -> list[dict]:
    """Recover human-labeled pairs from unlabeled rows that carry ``human_label``."""
    out = []
    for i, row in enumerate(rows, 1):
        if HUMAN_LABEL not in row:
            raise DataError(f"row has no {HUMAN_LABEL!r} column to recover the human label from", row=i)
        extra = {k: v for k, v in row.items() if k not in (*UNLABELED, HUMAN_LABEL)}
        a, b = row["response_a"], row["response_b"]
        chosen, rejected = (a, b) if row[HUMAN_LABEL] == "a" else (b, a)
        out.append({"prompt": row["prompt"], "chosen": chosen, "rejected": rejected, **extra})
    return out
