"""The LM head at response tokens only (cwpo.models.fast_head) computes what the full head computes.

fp32: per-token log-probs and their gradients (hidden and head weight) equal a plain
``log_softmax(hidden @ W.T)`` to float rounding (1e-5), and the trainer's loss and LoRA gradient
with the response head equal TRL's fused head (1e-6 on the loss). bf16 (the compute dtype of the
fast path where the probe picks it): within 2e-2 relative of fp32, as the bf16 base test states.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("trl")

from test_fast_paths import _loss_and_grad, _trainer  # noqa: E402

from cwpo.models import fast_head  # noqa: E402


def _reference(hidden, weight, targets):
    return torch.log_softmax((hidden @ weight.t()).float(), dim=-1).gather(1, targets[:, None]).squeeze(1)


@pytest.mark.parametrize("chunk", [4, 1024])
def test_response_log_probs_match_log_softmax(monkeypatch, chunk):
    monkeypatch.setattr(fast_head, "TOKEN_CHUNK", chunk)
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(10, 16, generator=g, requires_grad=True)
    weight = torch.randn(50, 16, generator=g, requires_grad=True)
    targets = torch.randint(0, 50, (10,), generator=g)
    upstream = torch.randn(10, generator=g)
    ours = fast_head.ResponseLogProbs.apply(hidden, weight, targets, torch.float32)
    (ours * upstream).sum().backward()
    gh, gw = hidden.grad.clone(), weight.grad.clone()
    hidden.grad, weight.grad = None, None
    ref = _reference(hidden, weight, targets)
    (ref * upstream).sum().backward()
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gh, hidden.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gw, weight.grad, atol=1e-5, rtol=1e-5)


def test_response_head_bf16_close_to_fp32():
    g = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(12, 32, generator=g), torch.randn(80, 32, generator=g) * 0.2
    targets = torch.randint(0, 80, (12,), generator=g)
    fp32 = fast_head.ResponseLogProbs.apply(hidden, weight, targets, torch.float32)
    bf16 = fast_head.ResponseLogProbs.apply(hidden.bfloat16(), weight.bfloat16(), targets, torch.bfloat16)
    assert bf16.dtype == torch.float32
    assert float((bf16 - fp32).abs().sum() / fp32.abs().sum()) < 2e-2


@pytest.mark.parametrize("lora", [False, True])
def test_trainer_response_head_equals_fused_head(tmp_path, tiny_causal_lm_dir, lora):
    fused, batch = _trainer(tmp_path, tiny_causal_lm_dir, groups=False, lora=lora, name="fused")
    fused.cw_response_head = False
    ours, batch2 = _trainer(tmp_path, tiny_causal_lm_dir, groups=False, lora=lora, name="head")
    assert ours.cw_response_head and fast_head.supports(fast_head.causal_lm(ours.model))
    if lora:  # LoRA B starts at zero: the same non-zero adapter on both sides
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p, q in zip(fused.model.parameters(), ours.model.parameters(), strict=True):
                if p.requires_grad:
                    v = 0.1 * torch.randn(p.shape, generator=g)
                    p.copy_(v)
                    q.copy_(v)
    loss_a, grad_a = _loss_and_grad(fused, batch)
    loss_b, grad_b = _loss_and_grad(ours, batch2)
    assert abs(loss_a - loss_b) < 1e-6
    torch.testing.assert_close(grad_a, grad_b, atol=1e-5, rtol=1e-4)


def test_eager_attention_equals_sdpa(tmp_path, tiny_causal_lm_dir, monkeypatch):
    from cwpo.align.trainable_model import training_attention

    monkeypatch.delenv("CWPO_ATTN", raising=False)
    assert training_attention(64) == "eager" and training_attention(4096) is None
    monkeypatch.setenv("CWPO_ATTN", "sdpa")
    assert training_attention(64) == "sdpa"
    sdpa, batch = _trainer(tmp_path, tiny_causal_lm_dir, groups=True, name="sdpa")
    eager, batch2 = _trainer(tmp_path, tiny_causal_lm_dir, groups=True, name="eager")
    eager.model.set_attn_implementation("eager")
    assert sdpa.model.config._attn_implementation != "eager"
    loss_a, grad_a = _loss_and_grad(sdpa, batch)
    loss_b, grad_b = _loss_and_grad(eager, batch2)
    assert abs(loss_a - loss_b) < 1e-6
    torch.testing.assert_close(grad_a, grad_b, atol=1e-5, rtol=1e-4)
