"""Turn raw records of each known layout into normalized pairs.

Layouts: ``hh-rlhf`` (whole transcripts), ``pairs`` (prompt/chosen/rejected or
prompt/response_a/response_b, after an optional column mapping), ``ultrafeedback``
(UltraFeedback-binarized chat message lists), ``tldr`` (OpenAI summarize-from-feedback
comparisons) and ``shp`` (Stanford SHP). Each converter returns a labeled or unlabeled row, or
raises :class:`RowProblem` for a row that is skipped and counted (or fatal in strict mode).
"""

from __future__ import annotations

import math

from cwpo.data.chat import PROMPT_MESSAGES, message_problem, transcript
from cwpo.data.schema import LABELED, UNLABELED

ASSISTANT = "\n\nAssistant:"


class RowProblem(Exception):
    """A row that cannot become a valid pair; ``reason`` is the counter it is filed under."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


class MissingColumns(Exception):
    """The record lacks columns the layout needs: always fatal (the whole file is misnamed)."""


def _text(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise RowProblem(
            "empty_response" if column != "prompt" else "empty_prompt",
            f"column {column!r} is empty (null/NaN)",
        )
    if not isinstance(value, str):
        raise RowProblem("not_text", f"column {column!r} must be text, got {type(value).__name__}")
    return value


def _require(record: dict, columns: tuple[str, ...], layout: str) -> None:
    missing = [c for c in columns if c not in record]
    if missing:
        raise MissingColumns(
            f"{layout} layout needs column(s) {missing}, found {sorted(record)}; rename with a column map "
            f"(e.g. --column-map prompt=question,chosen=good,rejected=bad) or choose another --format"
        )


def _check_responses(row: dict, kind: str) -> dict:
    cols = LABELED if kind == "labeled" else UNLABELED
    for col in cols[1:]:
        if not row[col].strip():
            raise RowProblem("empty_response", f"empty response in column {col!r}")
    if row[cols[1]] == row[cols[2]]:
        raise RowProblem("identical", f"{cols[1]} and {cols[2]} are identical")
    return row


def split_transcript(text: str) -> tuple[str, str]:
    """HH-RLHF: the shared context ends at the last ``"\\n\\nAssistant:"``; the rest is the answer."""
    idx = text.rfind(ASSISTANT)
    if idx < 0:
        raise RowProblem("no_assistant_turn", 'transcript has no "\\n\\nAssistant:" turn')
    cut = idx + len(ASSISTANT)
    return text[:cut], text[cut:]


def from_hh_rlhf(record: dict) -> dict:
    _require(record, ("chosen", "rejected"), "hh-rlhf")
    chosen_t, rejected_t = _text(record["chosen"], "chosen"), _text(record["rejected"], "rejected")
    if chosen_t == rejected_t:
        raise RowProblem("identical", "chosen and rejected transcripts are identical")
    ctx_c, chosen = split_transcript(chosen_t)
    ctx_r, rejected = split_transcript(rejected_t)
    if ctx_c != ctx_r:
        raise RowProblem(
            "context_mismatch",
            "the context before the last Assistant turn differs between chosen and rejected",
        )
    extra = {k: v for k, v in record.items() if k not in ("chosen", "rejected")}
    return _check_responses({"prompt": ctx_c, "chosen": chosen, "rejected": rejected, **extra}, "labeled")


def from_pairs(record: dict, column_map: dict[str, str] | None = None) -> dict:
    """``column_map`` maps cwpo's names to the file's: ``{"prompt": "question"}``."""
    if column_map:
        rename = {source: target for target, source in column_map.items()}
        record = {rename.get(k, k): v for k, v in record.items()}
    kind = (
        "labeled"
        if all(c in record for c in LABELED)
        else "unlabeled"
        if all(c in record for c in UNLABELED)
        else None
    )
    if kind is None:
        have_labeled = sum(c in record for c in LABELED)
        have_unlabeled = sum(c in record for c in UNLABELED)
        _require(record, LABELED if have_labeled >= have_unlabeled else UNLABELED, "pairs")
    cols = LABELED if kind == "labeled" else UNLABELED
    row = dict(record)
    for col in cols:
        row[col] = _text(record[col], col)
    return _check_responses(row, kind)


def _conversation(messages, column: str) -> tuple[list[dict], str]:
    """(the turns before the last assistant turn, that turn's text) of a chat column; a text is
    the response alone."""
    if isinstance(messages, str):
        return [], messages
    if not isinstance(messages, list) or not messages:
        raise RowProblem("not_text", f"column {column!r} must be a list of chat messages")
    for idx in range(len(messages) - 1, -1, -1):
        msg = messages[idx]
        if isinstance(msg, dict) and msg.get("role") == "assistant":
            return _turns(messages[:idx], column), _text(msg.get("content"), column)
    raise RowProblem("no_assistant_turn", f"column {column!r} has no assistant message")


def _turns(messages: list, column: str) -> list[dict]:
    if not messages:
        return []
    problem = message_problem(messages)
    if problem:
        raise RowProblem("not_text", f"column {column!r}: {problem}")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def from_ultrafeedback(record: dict) -> dict:
    """Chat message lists: UltraFeedback's (chosen/rejected hold the whole conversation) or TRL's
    conversational layout (``prompt`` a message list, chosen/rejected the assistant turn).

    The response is the last assistant turn. A conversation longer than one user turn keeps its
    turns as ``prompt_messages`` and becomes a transcript in ``prompt`` (:mod:`cwpo.data.chat`).
    """
    _require(record, ("prompt", "chosen", "rejected"), "ultrafeedback")
    extra = {k: v for k, v in record.items() if k not in ("prompt", "chosen", "rejected", "messages")}
    ctx_c, chosen = _conversation(record["chosen"], "chosen")
    ctx_r, rejected = _conversation(record["rejected"], "rejected")
    if ctx_c and ctx_r and ctx_c != ctx_r:
        raise RowProblem(
            "context_mismatch", "the turns before the last assistant turn differ between chosen and rejected"
        )
    given = record["prompt"]
    context = ctx_c or ctx_r or (_turns(given, "prompt") if isinstance(given, list) else [])
    if len(context) > 1 or (context and context[0]["role"] != "user"):
        row = {"prompt": transcript(context), PROMPT_MESSAGES: context}
    else:  # one user turn: the prompt text, as for any plain-text data set
        row = {
            "prompt": _text(given, "prompt")
            if isinstance(given, str) or not context
            else context[0]["content"]
        }
    row.update(
        chosen=chosen,
        rejected=rejected,
        **{k: v for k, v in extra.items() if k in ("prompt_id", "score_chosen", "score_rejected")},
    )
    return _check_responses(row, "labeled")


def tldr_prompt(info: dict) -> str:
    """The TL;DR prompt format of the summarize-from-feedback comparisons."""
    sub = info.get("subreddit") or ""
    head = f"SUBREDDIT: r/{sub}\n" if sub else ""
    return f"{head}TITLE: {info.get('title') or ''}\nPOST: {info.get('post') or info.get('article') or ''}\nTL;DR:"


def from_tldr(record: dict) -> dict:
    _require(record, ("info", "summaries", "choice"), "tldr")
    summaries = record["summaries"]
    if not isinstance(summaries, list) or len(summaries) != 2:
        raise RowProblem("not_text", "'summaries' must hold exactly two summaries")
    texts = [_text(s.get("text") if isinstance(s, dict) else s, "summaries") for s in summaries]
    choice = int(record["choice"])
    if choice not in (0, 1):
        raise RowProblem("bad_label", f"'choice' must be 0 or 1, got {choice}")
    chosen, rejected = " " + texts[choice].strip(), " " + texts[1 - choice].strip()
    return _check_responses(
        {"prompt": tldr_prompt(record["info"]), "chosen": chosen, "rejected": rejected}, "labeled"
    )


def from_shp(record: dict) -> dict:
    _require(record, ("history", "human_ref_A", "human_ref_B", "labels"), "shp")
    a, b = _text(record["human_ref_A"], "human_ref_A"), _text(record["human_ref_B"], "human_ref_B")
    label = int(record["labels"])
    if label not in (0, 1):
        raise RowProblem("bad_label", f"'labels' must be 0 or 1, got {label}")
    chosen, rejected = (a, b) if label == 1 else (b, a)
    prompt = f"POST: {_text(record['history'], 'history')}\n\nResponse:"
    extra = {k: record[k] for k in ("post_id", "domain", "score_ratio") if k in record}
    return _check_responses(
        {"prompt": prompt, "chosen": " " + chosen, "rejected": " " + rejected, **extra}, "labeled"
    )


CONVERTERS = {
    "hh-rlhf": from_hh_rlhf,
    "pairs": from_pairs,
    "ultrafeedback": from_ultrafeedback,
    "tldr": from_tldr,
    "shp": from_shp,
}


def detect_layout(record: dict) -> str:
    """Guess the layout from the columns of the first record."""
    cols = set(record)
    if {"history", "human_ref_A", "human_ref_B", "labels"} <= cols:
        return "shp"
    if {"info", "summaries", "choice"} <= cols:
        return "tldr"
    if {"prompt", "chosen", "rejected"} <= cols and isinstance(record.get("chosen"), list):
        return "ultrafeedback"
    if {"prompt", "chosen", "rejected"} <= cols or {"prompt", "response_a", "response_b"} <= cols:
        return "pairs"
    if (
        {"chosen", "rejected"} <= cols
        and isinstance(record.get("chosen"), str)
        and ASSISTANT in record["chosen"]
    ):
        return "hh-rlhf"
    return "pairs"
