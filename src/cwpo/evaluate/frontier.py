"""One point of a reward–KL frontier: a policy checkpoint scored on a prompt set, one row per sample.

For every prompt the policy π samples ``n_samples`` responses (seeded, cached) and the reference
π_SFT one (the GRA comparison). Each policy sample y gets

* ``gold`` and ``gold_ref``: the gold reward of y and of the reference's response (GRA outcome;
  the reference's response itself is the ``response`` of the SFT model's own rows, step 0);
* ``second`` and ``second_ref``: a second scorer from which no label was made (reward-hacking guard);
* ``logp`` and ``logp_ref``: log π(y|x) and log π_SFT(y|x), summed over y's tokens, so that
  ``log_ratio = logp − logp_ref`` is a one-sample Monte-Carlo estimate of the sequence-level
  KL(π‖π_SFT)(x) (its mean over samples and prompts is the reported KL);
* ``n_tokens``: y's tokens (for the perplexity of y under π_SFT, a fluency guard).

Nothing is aggregated here beyond :func:`point_summary`; the rows are kept so that every number
can be re-scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from cwpo.evaluate.cached_logprobs import cached_sequence_logprobs
from cwpo.evaluate.gold import get_gold


def log_ratios(logp: Sequence[float], logp_ref: Sequence[float]) -> list[float]:
    """log π(y|x) − log π_SFT(y|x) per sample: the Monte-Carlo terms of KL(π‖π_SFT) for y ~ π."""
    if len(logp) != len(logp_ref):
        raise ValueError(f"{len(logp)} policy log-probs but {len(logp_ref)} reference log-probs")
    return [float(a) - float(b) for a, b in zip(logp, logp_ref, strict=True)]


def kl_estimate(rows: Sequence[dict]) -> float:
    """Sequence-level KL(π‖π_SFT): per prompt the mean log-ratio over its samples, then the mean
    over prompts (prompts with more samples do not weigh more)."""
    by_prompt: dict = {}
    for r in rows:
        by_prompt.setdefault(r["prompt_id"], []).append(r["logp"] - r["logp_ref"])
    if not by_prompt:
        raise ValueError("no rows to estimate the KL from")
    return sum(sum(v) / len(v) for v in by_prompt.values()) / len(by_prompt)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n: distinct word n-grams over all n-grams of the texts (0 when there are none)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [tuple(w[i : i + n]) for w in (t.split() for t in texts) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def sft_perplexity(rows: Sequence[dict]) -> float:
    """exp(−Σ log π_SFT(y|x) / Σ tokens) over the policy's samples: how fluent π_SFT finds them."""
    tokens = sum(r["n_tokens"] for r in rows)
    if tokens == 0:
        return float("nan")
    return math.exp(-sum(r["logp_ref"] for r in rows) / tokens)


def outcome_value(a: float, b: float) -> float:
    """GRA's per-prompt value: 1 when the policy's gold beats the reference's, 0.5 on a tie, else 0."""
    return 1.0 if a > b else 0.5 if a == b else 0.0


def point_summary(rows: Sequence[dict]) -> dict:
    """Means of one checkpoint's rows: reward, GRA, KL, the second scorer and fluency."""
    n = len(rows)
    if not n:
        raise ValueError("no rows to summarize")
    texts = [r["response"] for r in rows]
    return {
        "n_rows": n,
        "n_prompts": len({r["prompt_id"] for r in rows}),
        "kl": kl_estimate(rows),
        "reward": sum(r["gold"] for r in rows) / n,
        "reward_ref": sum(r["gold_ref"] for r in rows) / n,
        "gra": sum(outcome_value(r["gold"], r["gold_ref"]) for r in rows) / n,
        "second": sum(r["second"] for r in rows) / n,
        "second_gra": sum(outcome_value(r["second"], r["second_ref"]) for r in rows) / n,
        "sft_perplexity": sft_perplexity(rows),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_tokens": sum(r["n_tokens"] for r in rows) / n,
    }


def response_tokens(
    tokenizer, prompts: Sequence[str], responses: Sequence[str], max_length: int
) -> list[int]:
    """Tokens of each response as :func:`cwpo.models.logprobs.sequence_logprobs` scores them."""
    # torch/transformers (~2-8 s) load only when a checkpoint is scored
    from cwpo.models.logprobs import tokenize_pair

    return [
        len(ids) - n_prompt
        for ids, n_prompt in (
            tokenize_pair(tokenizer, p, r, max_length) for p, r in zip(prompts, responses, strict=True)
        )
    ]


def score_checkpoint(
    policy: str,
    reference: str,
    prompts: Sequence[dict],
    *,
    gold: str = "vader",
    second_gold: str = "afinn",
    n_samples: int = 1,
    seed: int = 0,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    batch_size: int = 32,
    max_length: int = 128,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> list[dict]:
    """One row per (prompt, sample) of ``policy`` against ``reference`` (see the module docstring).

    ``prompts``: rows with ``prompt`` and ``id``. Sample k of the policy is drawn with seed
    ``seed + 1000·k``; the reference's one response with ``seed`` (the GRA reference, the same for
    every checkpoint and method of a seed, and cached).
    """
    # torch/transformers (~2-8 s) load only when a checkpoint is scored
    from cwpo.evaluate.generation import generate_responses
    from cwpo.models import cache_dir as default_cache
    from cwpo.models.loading import load_tokenizer

    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    import torch

    cache = Path(cache_dir) if cache_dir else default_cache()
    texts = [p["prompt"] for p in prompts]
    gen = {
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "batch_size": batch_size,
        "cache_dir": cache / "generations",
        "dtype": "auto",  # bf16 where this machine's probe says it is faster
        "progress": progress,
    }
    ref_out = generate_responses(reference, texts, seed=seed, **gen)
    samples = [generate_responses(policy, texts, seed=seed + 1000 * k, **gen) for k in range(n_samples)]
    gold_fn, second_fn = get_gold(gold), get_gold(second_gold)
    g_ref, s_ref = gold_fn(texts, ref_out), second_fn(texts, ref_out)
    all_prompts = texts * n_samples
    all_resp = [y for ys in samples for y in ys]
    lp_kw = {"batch_size": batch_size, "max_length": max_length, "dtype": torch.float32}
    logp = cached_sequence_logprobs(
        policy, all_prompts, all_resp, cache_dir=cache / "logprobs", **lp_kw
    ).tolist()
    logp_ref = cached_sequence_logprobs(
        reference, all_prompts, all_resp, cache_dir=cache / "logprobs", **lp_kw
    ).tolist()
    n_tok = response_tokens(load_tokenizer(reference), all_prompts, all_resp, max_length)
    g_pol, s_pol = gold_fn(all_prompts, all_resp), second_fn(all_prompts, all_resp)
    rows = []
    for j, y in enumerate(all_resp):
        i, k = j % len(texts), j // len(texts)
        rows.append(
            {
                "prompt_id": prompts[i]["id"],
                "sample": k,
                "response": y,
                "gold": g_pol[j],
                "gold_ref": g_ref[i],
                "second": s_pol[j],
                "second_ref": s_ref[i],
                "logp": logp[j],
                "logp_ref": logp_ref[j],
                "n_tokens": n_tok[j],
            }
        )
    return rows
