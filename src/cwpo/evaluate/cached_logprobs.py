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
    import torch

    # torch/transformers (~2-8 s) load only when log-probs are computed (cached ones need none)
    from cwpo.evaluate.generation import model_content_id
    from cwpo.models.loading import load_causal_lm
    from cwpo.models.logprobs import sequence_logprobs

    cache_file = None
    if cache_dir is not None:
        key = hash_config(
            {"format": "cwpo-logprobs-v1", "model": model_content_id(model_ref), "prompts": prompts,
             "responses": responses, "max_length": max_length, "dtype": str(dtype)}
        )  # fmt: skip
        cache_file = Path(cache_dir) / f"{key}.pt"
        if cache_file.exists():
            return torch.load(cache_file)
    model, tok = load_causal_lm(model_ref, dtype=dtype)
    with progress_bar(
        total=len(prompts), desc=f"log-probs {short_ref(model_ref)}", unit="seq", disable=len(prompts) < 16
    ) as bar:
        out = sequence_logprobs(
            model, tok, prompts, responses, batch_size=batch_size, max_length=max_length, progress=bar
        )
    del model
    if cache_file is not None:
        with atomic_path(cache_file, suffix=".pt") as tmp:
            torch.save(out, tmp)
    return out
