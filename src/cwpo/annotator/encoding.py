"""Pairs as token sequences for the weak annotator (see :mod:`cwpo.annotator.model` for what each
objective scores): tokenization, cutting a too-long pair (prompt from the left first, then the
response from the right), length buckets and right-padded batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cwpo.data.chat import chat_pair_texts, chat_prompt_text, transcript
from cwpo.errors import ConfigError

OBJECTIVES = ("bt", "pairrm", "dpo")
PAIRRM_MARKERS = ("\n\nResponse A:", "\n\nResponse B:")


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text (e.g. [CLS] ... [SEP])."""
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    k = _find(full, plain)
    return ([], []) if k < 0 else (list(full[:k]), list(full[k + len(plain) :]))


def _find(seq: list[int], sub: list[int], start: int = 0) -> int:
    """First index ≥ ``start`` where ``sub`` occurs in ``seq``, or -1."""
    for k in range(start, len(seq) - len(sub) + 1):
        if seq[k : k + len(sub)] == sub:
            return k
    return -1


def pair_separator(tokenizer) -> list[int]:
    """The ids the tokenizer puts between the two texts of a pair (BERT: [SEP]; none for most LMs)."""
    x = tokenizer("x", add_special_tokens=False)["input_ids"]
    y = tokenizer("y", add_special_tokens=False)["input_ids"]
    pair = tokenizer("x", "y", add_special_tokens=True)["input_ids"]
    i = _find(pair, x)
    j = _find(pair, y, i + len(x)) if i >= 0 else -1
    return list(pair[i + len(x) : j]) if j >= 0 else []


def prompt_texts(tokenizer, prompts: Sequence[str | list[dict]], chat_template: bool) -> list[str]:
    """Prompts as the annotator reads them: through the chat template (``add_generation_prompt``,
    as a chat model is trained and asked), else as text (a message list: its transcript)."""
    if chat_template:
        return [chat_prompt_text(tokenizer, p) for p in prompts]
    return [p if isinstance(p, str) else transcript(p) for p in prompts]


def _ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


@dataclass
class EncodedPairs:
    """Two token sequences per pair (a-side, b-side), the response start of each, cut flags."""

    seq_a: list[list[int]]
    seq_b: list[list[int]]
    start_a: list[int]
    start_b: list[int]
    truncated: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seq_a)


def _fit(p: list[int], r: list[int], budget: int) -> tuple[list[int], list[int], bool]:
    """Cut the response (right) only if it alone exceeds the budget, then the prompt (left)."""
    if len(p) + len(r) <= budget:
        return p, r, False
    r = r[: max(1, budget - 1)]
    keep = max(0, budget - len(r))
    return (p[len(p) - keep :] if keep else []), r, True


def encode_pairs(
    tokenizer,
    objective: str,
    prompts,
    responses_a,
    responses_b,
    max_length: int,
    separator: bool = False,
    chat_template: bool = False,
) -> EncodedPairs:
    """Tokenize pairs for ``objective`` (prompt and responses tokenized separately, in batch).

    A prompt is a text or a list of chat messages. ``separator`` (bt only): put the tokenizer's
    pair separator between prompt and response. ``chat_template`` (dpo only): render prompts with
    the tokenizer's chat template, each response then its assistant turn (with the end-of-turn).
    """
    n = len(prompts)
    if not (len(responses_a) == len(responses_b) == n):
        raise ValueError(f"{n} prompts, {len(responses_a)} responses a, {len(responses_b)} responses b")
    pre, post = special_tokens(tokenizer)
    if separator and objective != "bt":
        raise ConfigError(f"separator applies to the bt objective only, not {objective!r}")
    if chat_template and objective != "dpo":
        raise ConfigError(f"chat_template applies to the dpo objective only, not {objective!r}")
    if chat_template:  # each response one assistant turn, cut from the prompt as TRL cuts it
        side_a = [chat_pair_texts(tokenizer, p, r) for p, r in zip(prompts, responses_a, strict=True)]
        side_b = [chat_pair_texts(tokenizer, p, r) for p, r in zip(prompts, responses_b, strict=True)]
        responses_a, responses_b = [t[1] for t in side_a], [t[1] for t in side_b]
    prompts = prompt_texts(tokenizer, prompts, chat_template)
    sep = pair_separator(tokenizer) if separator else []
    budget = max_length - len(pre) - len(post) - len(sep)
    if budget < 2:
        raise ConfigError(f"max_length {max_length} leaves no room for text after the special tokens")
    P, A, B = _ids(tokenizer, prompts), _ids(tokenizer, responses_a), _ids(tokenizer, responses_b)
    out = EncodedPairs([], [], [], [])
    if objective in ("bt", "dpo"):
        if objective == "dpo":
            bos = tokenizer.bos_token_id
            if bos is not None and getattr(tokenizer, "add_bos_token", False):
                P = [[bos, *p] for p in P]
        for p, a, b in zip(P, A, B, strict=True):
            pa, a2, cut_a = _fit(p, a, budget)
            pb, b2, cut_b = _fit(p, b, budget)
            out.seq_a.append(pre + pa + sep + a2 + post)
            out.seq_b.append(pre + pb + sep + b2 + post)
            out.start_a.append(len(pre) + len(pa) + len(sep))
            out.start_b.append(len(pre) + len(pb) + len(sep))
            out.truncated.append(cut_a or cut_b)
        return out
    if objective == "pairrm":
        m1, m2 = _ids(tokenizer, list(PAIRRM_MARKERS))
        avail = budget - len(m1) - len(m2)
        if avail < 3:
            raise ConfigError(f"max_length {max_length} is too small for a joint PairRM encoding")
        for p, a, b in zip(P, A, B, strict=True):
            cut = len(p) + len(a) + len(b) > avail
            if cut:
                cap = max(1, (avail - min(len(p), avail // 4)) // 2)
                a, b = a[:cap], b[:cap]
                keep = max(0, avail - len(a) - len(b))
                p = p[len(p) - keep :] if keep else []
            out.seq_a.append(pre + p + m1 + a + m2 + b + post)
            out.seq_b.append(pre + p + m1 + b + m2 + a + post)
            out.start_a.append(0)
            out.start_b.append(0)
            out.truncated.append(cut)
        return out
    raise ConfigError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
