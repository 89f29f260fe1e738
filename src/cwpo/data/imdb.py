"""IMDb review prefixes as prompts (the controlled-sentiment track of the DPO paper).

Data: the Large Movie Review Dataset (Maas et al., ACL 2011), one JSON object per line with
``text``, ``label``, ``rating`` and ``id`` (``../shared/data/imdb/{train,test}.jsonl.gz``).
A prompt is the first ``words`` words of a review with the HTML line breaks (``<br />``) removed;
the model continues it, and a sentiment gold reward (``vader``) scores the continuation.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

from cwpo.data.readers import iter_records
from cwpo.errors import DataError

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def clean_review(text: str) -> str:
    """Remove ``<br />`` tags and collapse whitespace."""
    return " ".join(_BR.sub(" ", text).split())


def imdb_prompts(
    path: str | os.PathLike, n: int | None = None, seed: int | None = 0, words: int = 8
) -> list[dict]:
    """Return ``[{"id": ..., "prompt": ...}]``: prefixes of ``words`` words of ``n`` reviews.

    ``path`` is a ``.jsonl.gz``/``.jsonl`` file or a folder holding ``test.jsonl.gz``. With an
    integer ``seed`` the reviews are a seeded random sample (the same seed gives the same
    prompts); with ``seed=None`` they are the first ``n`` in file order. ``n=None`` takes all.
    Reviews shorter than ``words`` words are skipped (their prefix would be the whole review).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "test.jsonl.gz"
    if not path.exists():
        raise DataError("IMDb file not found (expected a .jsonl.gz with 'text' and 'id' fields)", str(path))
    if words < 1:
        raise DataError(f"words must be >= 1, got {words}", str(path))
    rows = []
    for i, row in iter_records(path):
        if not isinstance(row.get("text"), str):
            raise DataError("row has no text field 'text'", str(path), i)
        tokens = clean_review(row["text"]).split()
        if len(tokens) > words:
            rows.append({"id": row.get("id", i - 1), "prompt": " ".join(tokens[:words])})
    if not rows:
        raise DataError(f"no review longer than {words} words", str(path))
    if n is not None and n > len(rows):
        raise DataError(f"asked for {n} prompts but the file has only {len(rows)} usable reviews", str(path))
    if seed is None:
        return rows[:n] if n is not None else rows
    order = random.Random(seed).sample(range(len(rows)), n if n is not None else len(rows))
    return [rows[i] for i in order]
