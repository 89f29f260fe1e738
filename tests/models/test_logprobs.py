"""Sequence log-probs: batched equals one-by-one equals a hand computation; truncation rule."""

from __future__ import annotations

import torch

from cwpo.models.loading import load_causal_lm
from cwpo.models.logprobs import length_buckets, sequence_logprobs, tokenize_pair


def test_batched_equals_single_and_manual(tiny_causal_lm_dir):
    model, tok = load_causal_lm(tiny_causal_lm_dir)
    prompts = ["The film was", "Hi", "A much longer prompt about movies and plots"]
    responses = [" great fun.", " there", " no"]
    batched = sequence_logprobs(model, tok, prompts, responses, batch_size=3)
    single = torch.stack(
        [sequence_logprobs(model, tok, [p], [r])[0] for p, r in zip(prompts, responses, strict=True)]
    )
    assert torch.allclose(batched, single, atol=1e-5)
    ids, n_prompt = tokenize_pair(tok, prompts[0], responses[0], 512)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0], -1)
    manual = sum(logp[t - 1, ids[t]].item() for t in range(n_prompt, len(ids)))
    assert abs(batched[0].item() - manual) < 1e-4
    avg = sequence_logprobs(model, tok, prompts[:1], responses[:1], average=True)
    assert abs(avg[0].item() - manual / (len(ids) - n_prompt)) < 1e-4


def test_truncation_keeps_response_and_end_of_prompt(tiny_causal_lm_dir):
    _, tok = load_causal_lm(tiny_causal_lm_dir)
    ids, n_prompt = tokenize_pair(tok, "word " * 100, " the answer", 20)
    resp = tok(" the answer", add_special_tokens=False)["input_ids"]
    assert len(ids) == 20 and ids[-len(resp) :] == resp and n_prompt == 20 - len(resp)


def test_length_buckets_cover_all_indices():
    batches = length_buckets([3, 9, 1, 7, 5], 2)
    assert sorted(i for b in batches for i in b) == list(range(5))
    assert batches[0] == [1, 3]  # longest first
