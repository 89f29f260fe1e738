"""Sequence log-probs of (prompt, response) texts under a model, cached on disk by content.

Every evaluation that scores responses under a policy and its reference (preference accuracy,
the reward–KL frontier) calls :func:`cached_sequence_logprobs`; the reference model of an
experiment is scored once, however many policies are compared with it.
"""

from __future__ import annotations

from pathlib import Path

from cwpo.atomic_files import atomic_path
from cwpo.console import progress as progress_bar
from cwpo.console import short_ref
from cwpo.hashing import hash_config


def _cached(cache_dir: str | Path | None, fields: dict, compute):
    """``compute()`` (a tensor), stored in ``cache_dir`` under the hash of ``fields``."""
    import torch

    cache_file = Path(cache_dir) / f"{hash_config(fields)}.pt" if cache_dir is not None else None
    if cache_file is not None and cache_file.exists():
        return torch.load(cache_file)
    out = compute()
    if cache_file is not None:
        with atomic_path(cache_file, suffix=".pt") as tmp:
            torch.save(out, tmp)
    return out


def cached_sequence_logprobs(
    model_ref: str,
    prompts: list[str],
    responses: list[str],
    *,
    batch_size: int,
    max_length: int,
    dtype,
    cache_dir: str | Path | None = None,
):
    """Sequence log-probs, cached by a content hash of (model weights, texts, max_length, dtype).

    The reference model of an experiment is scored once, however many policies are compared with it.
    """
    # torch/transformers (~2-8 s) load only when log-probs are computed (cached ones need none)
    from cwpo.evaluate.generation import model_content_id
    from cwpo.models.loading import load_causal_lm
    from cwpo.models.logprobs import sequence_logprobs

    def compute():
        model, tok = load_causal_lm(model_ref, dtype=dtype)
        with progress_bar(
            total=len(prompts),
            desc=f"log-probs {short_ref(model_ref)}",
            unit="seq",
            disable=len(prompts) < 16,
        ) as bar:
            return sequence_logprobs(
                model, tok, prompts, responses, batch_size=batch_size, max_length=max_length, progress=bar
            )

    fields = {"format": "cwpo-logprobs-v1", "model": model_content_id(model_ref), "prompts": prompts,
              "responses": responses, "max_length": max_length, "dtype": str(dtype)}  # fmt: skip
    return _cached(cache_dir, fields, compute)


def cached_ids_logprobs(
    model_ref: str,
    seqs: list[list[int]],
    starts: list[int],
    *,
    batch_size: int,
    dtype,
    attn_implementation: str = "sdpa",
    cache_dir: str | Path | None = None,
):
    """Σ log p of the tokens ``seqs[i][starts[i]:]`` under ``model_ref`` (token ids exactly as
    sampled, an end-of-sequence token included), cached by (model weights, ids, dtype, attention)."""
    from cwpo.evaluate.generation import model_content_id
    from cwpo.models.loading import load_causal_lm
    from cwpo.models.logprobs import ids_logprobs, pad_id_of

    def compute():
        model, tok = load_causal_lm(model_ref, dtype=dtype, attn_implementation=attn_implementation)
        with progress_bar(
            total=len(seqs), desc=f"log-probs {short_ref(model_ref)}", unit="seq", disable=len(seqs) < 16
        ) as bar:
            return ids_logprobs(model, seqs, starts, pad_id_of(tok), batch_size=batch_size, progress=bar)

    fields = {"format": "cwpo-ids-logprobs-v1", "model": model_content_id(model_ref), "seqs": seqs,
              "starts": starts, "dtype": str(dtype), "attn_implementation": attn_implementation}  # fmt: skip
    return _cached(cache_dir, fields, compute)
