"""Σ log π(y|x) with the LM head computed at the response tokens only.

TRL's fused LM head (``model(..., fused_lm_head=True)``) scores only the labelled positions on
devices with Triton; on a CPU it projects *every* position (prompt and padding included) through
the 49k-word head and folds each tile with a dozen elementwise passes (entropy, mean logit, top-1
for its metrics). For a small model at short lengths that head is the largest share of a step
(measured in ``benchmarks/speed/speed.py``). :func:`response_logps` runs the backbone, gathers the
hidden states of the response positions, and projects only those, with a custom backward that
recomputes each tile (memory stays at one ``[chunk, vocab]`` tile). Same compute dtype as TRL's
kernel (the autocast dtype, else the weights'), log-softmax in fp32; the per-row sums are taken in
the same ``[rows, width - 1]`` layout as TRL's, so in fp32 the values equal TRL's to float rounding
(``tests/align/test_fast_head.py``).
"""

from __future__ import annotations

import torch

TOKEN_CHUNK = 1024  # rows of the [rows, vocab] logits tile (fp32: 1024 x 49152 x 4 B = 192 MiB)


def _compute_dtype(hidden: torch.Tensor) -> torch.dtype:
    dev = hidden.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else hidden.dtype


class ResponseLogProbs(torch.autograd.Function):
    """log softmax(hidden @ weight.T)[target] per row, tile by tile; backward recomputes the tile."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, compute_dtype):
        n = hidden.size(0)
        out = torch.empty(n, dtype=torch.float32, device=hidden.device)
        log_z = torch.empty(n, dtype=torch.float32, device=hidden.device)
        w = weight.to(compute_dtype)
        for s in range(0, n, TOKEN_CHUNK):
            logits = (hidden[s : s + TOKEN_CHUNK].to(compute_dtype) @ w.t()).float()
            lz = torch.logsumexp(logits, dim=-1)
            log_z[s : s + TOKEN_CHUNK] = lz
            out[s : s + TOKEN_CHUNK] = logits.gather(1, targets[s : s + TOKEN_CHUNK, None]).squeeze(1) - lz
        ctx.save_for_backward(hidden, weight, targets, log_z)
        ctx.compute_dtype = compute_dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, targets, log_z = ctx.saved_tensors
        cd = ctx.compute_dtype
        need_h, need_w = ctx.needs_input_grad[:2]
        w = weight.to(cd)
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        grad = grad.float()
        for s in range(0, hidden.size(0), TOKEN_CHUNK):
            h = hidden[s : s + TOKEN_CHUNK].to(cd)
            g = grad[s : s + TOKEN_CHUNK, None]
            # d log p_t / d logits = onehot(t) - softmax(logits)
            d = (h @ w.t()).float().sub_(log_z[s : s + TOKEN_CHUNK, None]).exp_().mul_(-g)
            d.scatter_add_(1, targets[s : s + TOKEN_CHUNK, None], g)
            if need_h:
                grad_h[s : s + TOKEN_CHUNK] = (d.to(cd) @ w).to(hidden.dtype)
            if need_w:
                grad_w.addmm_(d.t(), h.float())
        return grad_h, (grad_w.to(weight.dtype) if need_w else None), None, None


def supports(lm) -> bool:
    """A plain causal LM head: no bias, no logit scaling or soft-capping (else use TRL's head)."""
    head = lm.get_output_embeddings()
    cfg = lm.config.get_text_config()
    scaled = any(
        getattr(cfg, k, None) is not None
        for k in ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier")
    )
    scaled = scaled or getattr(cfg, "logits_scaling", None) is not None
    return isinstance(head, torch.nn.Linear) and head.bias is None and not scaled


def causal_lm(model):
    """The causal LM inside a PEFT wrapper (its LoRA layers are injected in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def response_logps(model, input_ids, attention_mask, completion_mask) -> torch.Tensor:
    """Σ over response tokens of log π(token | prefix), one value per row (right-padded rows).

    ``completion_mask`` marks the response tokens (TRL's collator); position ``j`` predicts token
    ``j + 1``, as in TRL's ``labels[:, 1:]``.
    """
    lm = causal_lm(model)
    backbone = getattr(lm, lm.base_model_prefix)
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    mask = completion_mask[:, 1:].bool()
    h = hidden[:, :-1][mask]
    targets = input_ids[:, 1:][mask]
    per_token = ResponseLogProbs.apply(h, lm.get_output_embeddings().weight, targets, _compute_dtype(hidden))
    # same layout and summation as TRL (masked_scatter into [rows, width - 1], sum over positions)
    return per_token.new_zeros(mask.shape).masked_scatter(mask, per_token).sum(dim=1)
