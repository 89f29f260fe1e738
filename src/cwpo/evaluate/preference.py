"""Preference accuracy on held-out human-labeled pairs, from the DPO implicit reward.

For a pair (x, y_chosen, y_rejected) labeled by a human, the aligned policy π and its reference
πref give each response the implicit reward r(x, y) = β·[log π(y|x) − log πref(y|x)] (summed
log-probs over response tokens, :func:`cwpo.models.logprobs.sequence_logprobs`). The pair is
ranked correctly when r(x, y_chosen) > r(x, y_rejected). The ranking does not depend on β > 0;
β only scales the reported rewards and margins.

Ties count half, exactly as in GRA: a policy identical to its reference gives every reward 0,
hence every pair a tie and an accuracy of exactly 0.5 (chance), never 0 or 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cwpo.data.chat import chat_pair_texts, require_chat_template, row_prompt
from cwpo.errors import ConfigError
from cwpo.evaluate.cached_logprobs import cached_sequence_logprobs
from cwpo.evaluate.metrics import preference_accuracy


def pair_implicit_rewards(
    policy: str,
    reference: str,
    pairs: Sequence[dict],
    *,
    beta: float = 0.1,
    batch_size: int = 8,
    max_length: int = 512,
    dtype: str = "float32",
    cache_dir: str | Path | None = None,
    chat_template: bool = False,
) -> tuple[list[float], list[float]]:
    """β·log(π/πref) of the chosen and of the rejected response of every labeled pair.

    With ``cache_dir``, log-probs are cached by content hash (see :func:`cached_sequence_logprobs`).
    """
    import torch

    if beta <= 0:
        raise ConfigError(f"beta must be > 0 for the implicit reward, got {beta}")
    if not pairs:
        raise ConfigError("no held-out pairs to compute preference accuracy on")
    prompts = [p["prompt"] for p in pairs] * 2
    responses = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    if chat_template:  # the texts the policy was trained on: its turns through the chat template
        from cwpo.models.loading import load_tokenizer

        tok = load_tokenizer(policy)
        require_chat_template(tok, policy)
        given = [row_prompt(p) for p in pairs] * 2
        texts = [chat_pair_texts(tok, p, r) for p, r in zip(given, responses, strict=True)]
        prompts, responses = [t[0] for t in texts], [t[1] for t in texts]
    kw = {
        "batch_size": batch_size,
        "max_length": max_length,
        "dtype": getattr(torch, dtype),
        "cache_dir": cache_dir,
    }
    pol = cached_sequence_logprobs(policy, prompts, responses, **kw)
    ref = cached_sequence_logprobs(reference, prompts, responses, **kw)
    rewards = (beta * (pol.double() - ref.double())).tolist()
    n = len(pairs)
    return rewards[:n], rewards[n:]


def evaluate_preference(
    policy: str,
    reference: str,
    pairs: Sequence[dict],
    *,
    beta: float = 0.1,
    batch_size: int = 8,
    max_length: int = 512,
    dtype: str = "float32",
    n_boot: int = 1000,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    chat_template: bool = False,
) -> tuple[dict, list[dict]]:
    """Preference accuracy (summary) and one row per pair with both rewards and the outcome."""
    chosen, rejected = pair_implicit_rewards(
        policy, reference, pairs, beta=beta, batch_size=batch_size, max_length=max_length, dtype=dtype,
        cache_dir=cache_dir, chat_template=chat_template,
    )  # fmt: skip
    summary = preference_accuracy(chosen, rejected, n_boot=n_boot, seed=seed)
    summary["beta"] = beta
    rows = [
        {
            "prompt": p["prompt"],
            "reward_chosen": c,
            "reward_rejected": r,
            "outcome": "correct" if c > r else ("tie" if c == r else "wrong"),
        }
        for p, c, r in zip(pairs, chosen, rejected, strict=True)
    ]
    return summary, rows
