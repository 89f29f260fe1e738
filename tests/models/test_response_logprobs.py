"""The Σ log p(response) through the response-only LM head equals the full-logits path."""

from __future__ import annotations

import torch

from cwpo.models.logprobs import collate, full_logits_response_logprobs, response_logprobs


def test_response_only_head_equals_full_logits_values_and_gradients(tiny_causal_lm_dir):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir, dtype=torch.float32)
    vocab = model.config.vocab_size
    seqs = [torch.randint(5, vocab, (n,)).tolist() for n in (9, 14, 6)]
    ids, attn, resp = collate(seqs, [3, 8, 2], model.config.pad_token_id)

    def run(fn):
        model.zero_grad(set_to_none=True)
        out = fn(model, ids, attn, resp)
        (out * torch.tensor([1.0, -2.0, 0.5])).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return out.detach(), grads

    fast, fast_grads = run(response_logprobs)
    full, full_grads = run(full_logits_response_logprobs)
    assert fast.shape == (3,) and fast.dtype == torch.float32
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
    assert fast_grads.keys() == full_grads.keys()
    for name, g in full_grads.items():
        torch.testing.assert_close(fast_grads[name], g, rtol=1e-4, atol=1e-6, msg=name)
