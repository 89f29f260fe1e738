"""Per-sequence log-probabilities of responses given prompts: the one tokenization rule.

The model sees ``prompt + response`` as raw text. Prompt and response are tokenized separately
and concatenated (so the response tokens are exactly those of the response), the prompt is cut
from the left when the pair is longer than ``max_length`` (the response from the right only if it
alone is too long). Batches are bucketed by length, run under ``torch.inference_mode``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def tokenize_pair(tokenizer, prompt: str, response: str, max_length: int) -> tuple[list[int], int]:
    """Token ids of prompt+response and the number of prompt tokens, truncated to ``max_length``."""
    p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    r = tokenizer(response, add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None and getattr(tokenizer, "add_bos_token", False):
        p = [tokenizer.bos_token_id, *p]
    r = r[: max(1, max_length - 1)]
    keep_prompt = max(1, max_length - len(r))  # at least one context token
    p = p[-keep_prompt:] if p else p
    return p + r, len(p)


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length (longest first) and cut into batches: little padding per batch."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def sequence_logprobs(
    model,
    tokenizer,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    batch_size: int = 8,
    max_length: int = 512,
    average: bool = False,
    progress=None,
) -> torch.Tensor:
    """log p(response | prompt) summed over response tokens (or averaged with ``average=True``).

    Returns a float32 tensor of shape [N] in input order. ``progress`` is an optional tqdm-like
    object whose ``update(n)`` is called with the number of sequences done.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    encoded = [tokenize_pair(tokenizer, p, r, max_length) for p, r in zip(prompts, responses, strict=True)]
    out = torch.empty(len(encoded), dtype=torch.float32)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    for batch in length_buckets([len(ids) for ids, _ in encoded], batch_size):
        width = max(len(encoded[i][0]) for i in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.bool)  # response tokens
        for row, i in enumerate(batch):
            ids, n_prompt = encoded[i]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
            mask[row, n_prompt : len(ids)] = True
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        token_logp = logp.gather(-1, input_ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        m = mask[:, 1:].to(device)
        summed = (token_logp * m).sum(-1)
        values = summed / m.sum(-1).clamp(min=1) if average else summed
        out[batch] = values.cpu()
        if progress is not None:
            progress.update(len(batch))
    return out
