"""Per-sequence log-probabilities of responses given prompts: tokenization, padding, log-softmax.

The one place where a (prompt, response) becomes tokens and a Σ log p(response | prompt):

* :func:`tokenize_pair`: the model sees ``prompt + response`` as raw text. Prompt and response are
  tokenized separately and concatenated (so the response tokens are exactly those of the
  response), the prompt is cut from the left when the pair is longer than ``max_length`` (the
  response from the right only if it alone is too long).
* :func:`collate`: right-padded ids, attention mask and response-token mask of token sequences;
  :func:`length_buckets`: batches of similar length.
* :func:`response_logprobs`: Σ log p over the response tokens (differentiable), through the LM
  head at the response tokens only where the model allows it (:mod:`cwpo.models.fast_head`),
  else :func:`full_logits_response_logprobs`.
* :func:`text_response_logprobs` (differentiable, one batch) and :func:`sequence_logprobs`
  (bucketed, under ``torch.inference_mode``) from text, through the full logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cwpo.models.fast_head import causal_lm, response_logps, supports


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
    """Indices sorted by length (longest first, ties by index) and cut into batches: little padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(seqs: Sequence[list[int]], starts: Sequence[int], pad_id: int):
    """Right-padded ids, attention mask, and a mask of response tokens (positions ≥ start)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(seqs), width), dtype=torch.long)
    resp = torch.zeros((len(seqs), width), dtype=torch.bool)
    for row, (s, st) in enumerate(zip(seqs, starts, strict=True)):
        ids[row, : len(s)] = torch.tensor(s, dtype=torch.long)
        attn[row, : len(s)] = 1
        resp[row, st : len(s)] = True
    return ids, attn, resp


def pad_id_of(tokenizer) -> int:
    """The id padding is written with (0 when the tokenizer has no pad token)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def full_logits_response_logprobs(model, ids, attn, resp) -> torch.Tensor:
    """Σ log p(token | prefix) over response tokens per sequence, through the model's full logits."""
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = resp[:, 1:]
    return (logp * mask).sum(-1)


def response_logprobs(model, ids, attn, resp) -> torch.Tensor:
    """Σ log p(token | prefix) over response tokens, per sequence (differentiable).

    Where the model's LM head allows it, the head runs at the response tokens only, a tile at a
    time (:func:`cwpo.models.fast_head.response_logps`, the alignment's path): the full ``[rows,
    length, vocab]`` logits of a 49k-word head took 15.5 GB for a batch of 8 HH pairs at 256 tokens.
    Equal to the full-logits path to float rounding (``tests/models/test_response_logprobs.py``).
    """
    if supports(causal_lm(model)):
        return response_logps(model, ids, attn, resp)
    return full_logits_response_logprobs(model, ids, attn, resp)


def text_response_logprobs(
    model, tokenizer, prompts: Sequence[str], responses: Sequence[str], max_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ log p(response | prompt) (differentiable, full logits) and the response lengths (>= 1), one batch."""
    enc = [tokenize_pair(tokenizer, p, r, max_length) for p, r in zip(prompts, responses, strict=True)]
    ids, attn, resp = collate([i for i, _ in enc], [n for _, n in enc], pad_id_of(tokenizer))
    return full_logits_response_logprobs(model, ids, attn, resp), resp[:, 1:].sum(-1).clamp(min=1)


@torch.inference_mode()
def ids_logprobs(
    model,
    seqs: Sequence[list[int]],
    starts: Sequence[int],
    pad_id: int,
    *,
    batch_size: int = 8,
    average: bool = False,
    progress=None,
) -> torch.Tensor:
    """Σ log p over the tokens ``seqs[i][starts[i]:]`` given the tokens before them (or their mean
    with ``average=True``), for token sequences as they are: a float32 tensor [N] in input order.
    ``progress`` is an optional tqdm-like object whose ``update(n)`` is called per batch."""
    if len(seqs) != len(starts):
        raise ValueError(f"{len(seqs)} sequences but {len(starts)} start positions")
    out = torch.empty(len(seqs), dtype=torch.float32)
    device = next(model.parameters()).device
    for batch in length_buckets([len(s) for s in seqs], batch_size):
        ids, attn, resp = collate([seqs[i] for i in batch], [starts[i] for i in batch], pad_id)
        ids, attn, resp = ids.to(device), attn.to(device), resp.to(device)
        summed = full_logits_response_logprobs(model, ids, attn, resp)
        values = summed / resp[:, 1:].sum(-1).clamp(min=1) if average else summed
        out[batch] = values.cpu()
        if progress is not None:
            progress.update(len(batch))
    return out


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
    return ids_logprobs(
        model,
        [ids for ids, _ in encoded],
        [n for _, n in encoded],
        pad_id_of(tokenizer),
        batch_size=batch_size,
        average=average,
        progress=progress,
    )
