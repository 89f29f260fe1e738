"""Prompts from HH-RLHF transcripts: the first human turn of each conversation, deduplicated.

Used by the controlled-sentiment track when its prompts come from HH-RLHF instead of IMDb (the
embedded MIT-licensed slice ``cwpo:hh-rlhf-slice`` needs nothing outside the package). A prompt is
written in HH-RLHF's own transcript format, ``"\\n\\nHuman: <turn>\\n\\nAssistant:"``, so the
strong model answers it as the pairs track's HH prompts are answered.
"""

from __future__ import annotations

import random

from cwpo.data.load import hh_files, resolve_source
from cwpo.data.readers import iter_records
from cwpo.errors import DataError

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


def first_turn(transcript: str) -> str | None:
    """The text of the first human turn, or None when the transcript does not start with one."""
    if not transcript.startswith(HUMAN):
        return None
    end = transcript.find(ASSISTANT)
    turn = transcript[len(HUMAN) : end if end >= 0 else None].strip()
    return turn or None


def hh_prompts(source: str, max_words: int = 32, seed: int = 0, subset: str = "hh") -> list[dict]:
    """``[{"id", "prompt"}]``: every distinct first human turn of at most ``max_words`` words, in one
    order fixed by ``seed`` (the id is the turn's position in the files, so it never changes)."""
    root = resolve_source(source)
    seen: dict[str, int] = {}
    for path in hh_files(root, subset):
        for i, record in iter_records(path):
            text = record.get("chosen")
            if not isinstance(text, str):
                raise DataError("row has no transcript field 'chosen'", str(path), i)
            turn = first_turn(text)
            if turn and len(turn.split()) <= max_words and turn not in seen:
                seen[turn] = len(seen)
    if not seen:
        raise DataError(f"no first human turn of at most {max_words} words", source)
    rows = [{"id": idx, "prompt": f"{HUMAN} {turn}{ASSISTANT}"} for turn, idx in seen.items()]
    random.Random(seed).shuffle(rows)
    return rows
