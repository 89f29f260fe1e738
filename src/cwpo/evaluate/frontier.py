"""One point of a reward–KL frontier: a policy checkpoint scored on a prompt set, one row per sample.

For every prompt the policy π samples ``n_samples`` responses (seeded, cached) and the reference
π_SFT one (the GRA comparison). Each policy sample y gets

* ``gold`` and ``gold_ref``: the gold reward of y and of the reference's response (GRA outcome;
  the reference's response itself is the ``response`` of the SFT model's own rows, step 0);
* ``second`` and ``second_ref``: a second scorer from which no label was made (reward-hacking guard);
* ``logp`` and ``logp_ref``: log π(y|x) and log π_SFT(y|x), summed over y's tokens, so that
  ``log_ratio = logp − logp_ref`` is a one-sample Monte-Carlo estimate of the sequence-level
  KL(π‖π_SFT)(x) (its mean over samples and prompts is the reported KL);
* ``n_tokens``: y's tokens as drawn (for the perplexity of y under π_SFT, a fluency guard), and
  ``finished``: whether y ended with an end-of-sequence token (its log-probability is in both sums).

Nothing is aggregated here beyond :func:`point_summary`; the rows are kept so that every number
can be re-scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from cwpo.evaluate.cached_logprobs import cached_ids_logprobs
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
        "finished": sum(bool(r.get("finished")) for r in rows) / n,
    }


MAX_PROMPT_TOKENS = 512  # one value for sampling and for scoring the samples (generate_responses' default)
REFERENCE_SEED_OFFSET = 1_000_003  # the GRA reference's draws are independent of every policy sample's


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
    dtype: str = "float32",
    attn_implementation: str = "sdpa",
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> list[dict]:
    """One row per (prompt, sample) of ``policy`` against ``reference`` (see the module docstring).

    ``prompts``: rows with ``prompt`` and ``id``. Sample k of the policy is drawn with seed
    ``seed + 1000·k``; the reference's one response with ``seed + REFERENCE_SEED_OFFSET`` (the GRA
    reference: the same for every checkpoint and method of a seed, and cached, but independent of
    the policy's draws). Both models sample and score in ``dtype`` (never a per-machine choice), and
    log-probabilities are taken of the token ids as drawn, the end-of-sequence token included when
    one was drawn (``finished``): the log-ratio is then the Monte-Carlo term of the sequence KL.
    """
    # torch/transformers (~2-8 s) load only when a checkpoint is scored
    import torch

    from cwpo.evaluate.generation import generate_responses, prompt_token_ids
    from cwpo.models import cache_dir as default_cache
    from cwpo.models.loading import load_tokenizer

    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    cache = Path(cache_dir) if cache_dir else default_cache()
    texts = [p["prompt"] for p in prompts]
    gen = {
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "batch_size": batch_size,
        "cache_dir": cache / "generations",
        "dtype": dtype,
        "attn_implementation": attn_implementation,
        "max_prompt_length": MAX_PROMPT_TOKENS,
        "progress": progress,
    }
    ref_out = generate_responses(reference, texts, seed=seed + REFERENCE_SEED_OFFSET, **gen)
    samples = [
        generate_responses(policy, texts, seed=seed + 1000 * k, return_ids=True, **gen)
        for k in range(n_samples)
    ]
    gold_fn, second_fn = get_gold(gold), get_gold(second_gold)
    g_ref, s_ref = gold_fn(texts, ref_out), second_fn(texts, ref_out)
    tok = load_tokenizer(reference)
    prompt_ids = prompt_token_ids(tok, texts, False, MAX_PROMPT_TOKENS)  # as the samples were conditioned
    all_prompts = texts * n_samples
    all_resp = [y for ys, _ in samples for y in ys]
    all_ids = [t for _, ts in samples for t in ts]
    seqs = [prompt_ids[j % len(texts)] + t for j, t in enumerate(all_ids)]
    starts = [len(prompt_ids[j % len(texts)]) for j in range(len(all_ids))]
    lp_kw = {"batch_size": batch_size, "dtype": getattr(torch, dtype), "cache_dir": cache / "logprobs",
             "attn_implementation": attn_implementation}  # fmt: skip
    logp = cached_ids_logprobs(policy, seqs, starts, **lp_kw).tolist()
    logp_ref = cached_ids_logprobs(reference, seqs, starts, **lp_kw).tolist()
    g_pol, s_pol = gold_fn(all_prompts, all_resp), second_fn(all_prompts, all_resp)
    rows = []
    for j, y in enumerate(all_resp):
        i, k = j % len(texts), j // len(texts)
        ids = all_ids[j]
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
                "n_tokens": len(ids),
                # stopped by an end-of-sequence token, not by max_new_tokens
                "finished": len(ids) < max_new_tokens or ids[-1] == tok.eos_token_id,
            }
        )
    return rows
