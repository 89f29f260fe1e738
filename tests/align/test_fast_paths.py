"""The fast training paths compute what the plain fp32 path computes.

* length groups (rows run in groups of similar length, each cut to its own width) equal the one
  padded forward to float rounding (fp32, 1e-6 on the loss; also covered against TRL itself in
  ``test_trainer.py``, whose 4-pair batch is split into groups);
* the bf16 frozen base with fp32 LoRA weights (``bf16: auto`` on a CPU where bf16 is faster)
  stays within a stated tolerance of fp32 eager: loss within 2e-2 relative, gradient cosine > 0.98
  (bf16 has an 8-bit mantissa: ~4e-3 relative per rounding, through two layers).
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import DPOConfig  # noqa: E402

from cwpo.align.trainable_model import lora_config, training_precision  # noqa: E402
from cwpo.align.trainer import WeightedDPOTrainer, length_groups  # noqa: E402
from cwpo.runtime import bf16_errors, parse_bf16, resolve_bf16  # noqa: E402

ROWS = [
    {
        "prompt": f"\n\nHuman: question {i}?\n\nAssistant:",
        "chosen": " yes" * (1 + 3 * i),
        "rejected": " no" * (2 + i),
    }
    for i in range(6)
]


def _trainer(tmp_path, model_dir, *, groups, dtype=torch.float32, lora=False, name="t"):
    tok = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    policy = AutoModelForCausalLM.from_pretrained(model_dir)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))
    policy.to(dtype)
    args = DPOConfig(
        output_dir=str(tmp_path / name),
        loss_type=["sigmoid"],
        beta=0.1,
        bf16=False,
        use_cpu=True,
        report_to="none",
        activation_checkpointing=False,
        per_device_train_batch_size=6,
        max_length=64,
        seed=0,
        disable_tqdm=True,
    )
    trainer = WeightedDPOTrainer(
        model=policy,
        args=args,
        train_dataset=Dataset.from_list([dict(r, weight=0.5 + 0.1 * i) for i, r in enumerate(ROWS)]),
        processing_class=tok,
        peft_config=lora_config(8, 16, 0.0) if lora else None,
        cw_length_groups=groups,
    )
    trainer.precompute_ref_logps = True
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(ROWS))])
    batch["ref_chosen_logps"] = torch.full((len(ROWS),), -30.0)
    batch["ref_rejected_logps"] = torch.full((len(ROWS),), -31.0)
    return trainer, batch


def _loss_and_grad(trainer, batch):
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, dict(batch))
    loss.backward()
    grad = torch.cat([p.grad.flatten().float() for p in trainer.model.parameters() if p.grad is not None])
    return loss.item(), grad


def test_length_groups_partition_rows():
    mask = torch.zeros(10, 20, dtype=torch.long)
    for row, n in enumerate([20, 19, 18, 17, 6, 5, 5, 4, 12, 3]):
        mask[row, :n] = 1
    groups = length_groups(mask)
    assert groups is not None and len(groups) >= 2
    rows = torch.cat([g for g, _ in groups]).tolist()
    assert sorted(rows) == list(range(10))
    for g, width in groups:
        assert int(mask[g].sum(dim=1).max()) == width
    assert length_groups(mask[:4]) is None  # too few rows to split
    left = mask.flip(dims=[1])
    assert length_groups(left) is None  # left padding: no column cut


def test_grouped_forward_equals_padded_forward(tmp_path, tiny_causal_lm_dir):
    plain, batch = _trainer(tmp_path, tiny_causal_lm_dir, groups=False, name="plain")
    grouped, batch2 = _trainer(tmp_path, tiny_causal_lm_dir, groups=True, name="grouped")
    assert length_groups(batch["attention_mask"]) is not None  # the batch really is split
    loss_a, grad_a = _loss_and_grad(plain, batch)
    loss_b, grad_b = _loss_and_grad(grouped, batch2)
    assert abs(loss_a - loss_b) < 1e-6
    torch.testing.assert_close(grad_a, grad_b, atol=1e-6, rtol=1e-5)


def test_bf16_base_with_fp32_lora_close_to_fp32(tmp_path, tiny_causal_lm_dir):
    ref, batch = _trainer(tmp_path, tiny_causal_lm_dir, groups=True, lora=True, name="fp32")
    fast, batch2 = _trainer(
        tmp_path, tiny_causal_lm_dir, groups=True, lora=True, dtype=torch.bfloat16, name="bf16"
    )
    lora_dtypes = {p.dtype for n, p in fast.model.named_parameters() if p.requires_grad}
    assert lora_dtypes == {torch.float32}  # trained weights stay fp32
    # LoRA B starts at zero: give both the same non-zero adapter so the gradient reaches A too
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for (_, p), (_, q) in zip(ref.model.named_parameters(), fast.model.named_parameters(), strict=True):
            if p.requires_grad:
                v = 0.1 * torch.randn(p.shape, generator=g)
                p.copy_(v)
                q.copy_(v)
    loss_a, grad_a = _loss_and_grad(ref, batch)
    loss_b, grad_b = _loss_and_grad(fast, batch2)
    assert abs(loss_a - loss_b) <= 2e-2 * abs(loss_a)
    assert torch.nn.functional.cosine_similarity(grad_a, grad_b, dim=0) > 0.98


def test_bf16_setting(monkeypatch):
    assert parse_bf16("auto") == "auto" and parse_bf16("true") is True and parse_bf16(False) is False
    assert bf16_errors("maybe") and not bf16_errors("auto")
    monkeypatch.setenv("CWPO_BF16", "0")
    assert resolve_bf16("auto") is False
    assert training_precision("auto", lora=True) == ("float32", False)
    assert training_precision(True, lora=False) == ("float32", True)
    monkeypatch.setenv("CWPO_BF16", "1")
    assert training_precision("auto", lora=True) == ("bfloat16", False)
    assert resolve_bf16(False) is False  # explicit settings win over the probe


def test_probe_is_cached(monkeypatch, tmp_path):
    import cwpo.runtime as rt

    monkeypatch.delenv("CWPO_BF16", raising=False)
    monkeypatch.setenv("CWPO_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(rt, "probe_bf16", lambda: calls.append(1) or {"bf16_faster": True})
    assert rt.bf16_is_faster() is True and rt.bf16_is_faster() is True
    assert len(calls) == 1
    assert (tmp_path / "runtime-probe.json").exists()


def test_the_probe_leaves_the_global_rng_alone():
    """The bf16 probe runs inside seeded stages the first time a process meets ``auto``: it must not
    draw from the global RNG, or a run's annotator would depend on whether the probe was cached."""
    import torch

    from cwpo.runtime import probe_bf16

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    probe_bf16()
    assert torch.equal(torch.rand(3), expected)
