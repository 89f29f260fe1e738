"""The weighted trainer against TRL's own DPOTrainer, and what a weight does to the gradient."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import DPOConfig, DPOTrainer  # noqa: E402

from cwpo.align.trainer import WeightedDPOTrainer, check_trl_version  # noqa: E402
from cwpo.errors import ConfigError  # noqa: E402

ROWS = [
    {
        "prompt": "\n\nHuman: What is a cat?\n\nAssistant:",
        "chosen": " A small furry animal.",
        "rejected": " No.",
    },
    {
        "prompt": "\n\nHuman: Say hi.\n\nAssistant:",
        "chosen": " Hi!",
        "rejected": " I will not say anything at all.",
    },
    {"prompt": "\n\nHuman: 2+2?\n\nAssistant:", "chosen": " 4", "rejected": " 5, probably"},
    {
        "prompt": "\n\nHuman: Color of sky?\n\nAssistant:",
        "chosen": " Blue on a clear day.",
        "rejected": " Green",
    },
]


def _args(tmp_path, loss_type, name):
    return DPOConfig(
        output_dir=str(tmp_path / name),
        loss_type=[loss_type],
        beta=0.1,
        label_smoothing=0.1 if loss_type == "robust" else 0.0,
        bf16=False,
        use_cpu=True,
        report_to="none",
        activation_checkpointing=False,
        per_device_train_batch_size=4,
        max_length=64,
        seed=0,
        disable_tqdm=True,
    )


def _models(path):
    """A policy that differs from the reference (so h != 0), and the reference."""
    policy = AutoModelForCausalLM.from_pretrained(path)
    ref = AutoModelForCausalLM.from_pretrained(path)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g))
    return policy, ref


@pytest.mark.parametrize(("trl_loss", "cw_loss"), [("sigmoid", "dpo"), ("ipo", "ipo"), ("robust", "rdpo")])
def test_weight_one_equals_trl(tmp_path, tiny_causal_lm_dir, trl_loss, cw_loss):
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    policy, ref = _models(tiny_causal_lm_dir)
    ours = WeightedDPOTrainer(
        model=policy,
        ref_model=ref,
        args=_args(tmp_path, trl_loss, "ours"),
        train_dataset=Dataset.from_list([dict(r, weight=1.0) for r in ROWS]),
        processing_class=tok,
        cw_loss=cw_loss,
    )
    batch = next(iter(ours.get_train_dataloader()))
    assert batch["weight"].tolist() == [1.0] * 4  # every weight is 1 here (the column itself: below)
    policy2, ref2 = _models(tiny_causal_lm_dir)
    theirs = DPOTrainer(
        model=policy2,
        ref_model=ref2,
        args=_args(tmp_path, trl_loss, "trl"),
        train_dataset=Dataset.from_list(ROWS),
        processing_class=tok,
    )
    ours_loss = ours.compute_loss(ours.model, batch)
    trl_loss_value = theirs.compute_loss(theirs.model, {k: v for k, v in batch.items() if k != "weight"})
    # 1e-6, relative where the loss is above 1: IPO's loss here is ~25, where one fp32 ulp is 1.9e-6
    # (the response-only LM head sums in another order than TRL's full head, and threads reorder too)
    assert abs(ours_loss.item() - trl_loss_value.item()) <= 1e-6 * max(1.0, abs(trl_loss_value.item()))
    at_h0 = {"dpo": math.log(2), "rdpo": math.log(2), "ipo": (1 / (2 * 0.1)) ** 2}[cw_loss]
    assert abs(ours_loss.item() - at_h0) > 0.01  # not the trivial h = 0 point
    mode = "train" if ours.model.training else "eval"
    assert ours._metrics[mode]["rewards/margins"][0] != 0.0


WEIGHTS = [0.25, 0.9, 0.5, 0.05]  # distinct and none 1.0 (the collator's fallback for a missing weight)


def _weighted_trainer(tmp_path, tok, model_dir, trl_loss, cw_loss, name):
    policy, ref = _models(model_dir)
    return WeightedDPOTrainer(
        model=policy,
        ref_model=ref,
        args=_args(tmp_path, trl_loss, name),
        train_dataset=Dataset.from_list([dict(r, weight=w) for r, w in zip(ROWS, WEIGHTS, strict=True)]),
        processing_class=tok,
        cw_loss=cw_loss,
    )


def test_weight_column_reaches_the_batch(tmp_path, tiny_causal_lm_dir):
    """The Trainer keeps the ``weight`` column (remove_unused_columns would drop it) and the
    collator carries each row's own weight, in row order."""
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    trainer = _weighted_trainer(tmp_path, tok, tiny_causal_lm_dir, "sigmoid", "dpo", "col")
    loaded = next(iter(trainer.get_train_dataloader()))  # shuffled rows, each with its weight
    assert sorted(loaded["weight"].tolist()) == pytest.approx(sorted(WEIGHTS))
    prompts = tok.batch_decode(loaded["input_ids"][:4], skip_special_tokens=True)
    by_prompt = {r["prompt"].strip(): w for r, w in zip(ROWS, WEIGHTS, strict=True)}
    expected = [next(w for p, w in by_prompt.items() if p in text) for text in prompts]
    assert loaded["weight"].tolist() == pytest.approx(expected)
    rows = [trainer.train_dataset[i] for i in range(4)]
    assert trainer.data_collator(rows)["weight"].tolist() == pytest.approx(WEIGHTS)
    assert trainer.data_collator(rows[::-1])["weight"].tolist() == pytest.approx(WEIGHTS[::-1])
    no_weight = [{k: v for k, v in r.items() if k != "weight"} for r in rows[:2]]
    with pytest.raises(ConfigError, match="no 'weight' column"):  # never a silent weight 1
        trainer.data_collator(no_weight)


@pytest.mark.parametrize(("trl_loss", "cw_loss"), [("sigmoid", "dpo"), ("ipo", "ipo"), ("robust", "rdpo")])
def test_distinct_weights_equal_trl_per_row(tmp_path, tiny_causal_lm_dir, trl_loss, cw_loss):
    """E[w·l] over a batch with distinct weights equals the mean of w_i times TRL's own loss of row
    i alone, so a weight paired with another row's loss fails; the logged metrics are TRL's."""
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    ours = _weighted_trainer(tmp_path, tok, tiny_causal_lm_dir, trl_loss, cw_loss, "ours")
    rows = [ours.train_dataset[i] for i in range(4)]
    batch = ours.data_collator(rows)
    policy2, ref2 = _models(tiny_causal_lm_dir)
    theirs = DPOTrainer(
        model=policy2,
        ref_model=ref2,
        args=_args(tmp_path, trl_loss, "trl"),
        train_dataset=Dataset.from_list(ROWS),
        processing_class=tok,
    )
    ours.model.train()  # as in training: the "train" metrics, with the tokens counted
    theirs.model.train()
    per_row = []
    for row in rows:
        one = theirs.data_collator([{k: v for k, v in row.items() if k != "weight"}])
        per_row.append(theirs.compute_loss(theirs.model, one).item())
    trl_metrics = {k: list(v) for k, v in theirs._metrics["train"].items()}
    loss = ours.compute_loss(ours.model, batch).item()
    expected = sum(w * v for w, v in zip(WEIGHTS, per_row, strict=True)) / 4
    swapped = sum(w * v for w, v in zip(WEIGHTS[::-1], per_row, strict=True)) / 4
    tol = 1e-5 * max(1.0, abs(expected))
    assert abs(expected - swapped) > 100 * tol  # the rows' losses differ enough to tell pairings apart
    assert loss == pytest.approx(expected, abs=tol)
    metrics = ours._metrics["train"]
    assert metrics["weight/mean"] == [pytest.approx(sum(WEIGHTS) / 4)]
    assert metrics["loss/unweighted"] == [pytest.approx(sum(per_row) / 4, abs=tol)]
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert metrics[key] == [pytest.approx(sum(trl_metrics[key]) / 4, abs=1e-5)], key
    for key in ("logps/chosen", "logps/rejected"):
        assert metrics[key] == [pytest.approx(sum(trl_metrics[key]) / 4, rel=1e-5)], key
    assert 0 < metrics["rewards/accuracies"][0] < 1  # a mix of right and wrong orderings
    assert metrics["num_tokens"] == [batch["attention_mask"].sum().item()]


def _grads(trainer, batch):
    trainer.model.zero_grad()
    trainer.compute_loss(trainer.model, batch).backward()
    return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])


def test_weight_zero_contributes_no_gradient(tmp_path, tiny_causal_lm_dir):
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    policy, ref = _models(tiny_causal_lm_dir)
    trainer = WeightedDPOTrainer(
        model=policy,
        ref_model=ref,
        args=_args(tmp_path, "sigmoid", "w"),
        train_dataset=Dataset.from_list([dict(r, weight=1.0) for r in ROWS]),
        processing_class=tok,
    )
    collate = trainer.data_collator
    # Pair 1 has the longest sequence, so adding pair 0 changes no padding of pair 1.
    both_w = collate([dict(trainer.train_dataset[0], weight=0.0), dict(trainer.train_dataset[1], weight=1.0)])
    only = collate([dict(trainer.train_dataset[1], weight=1.0)])
    assert both_w["input_ids"].shape[1] == only["input_ids"].shape[1]
    g_both = _grads(trainer, both_w)
    g_only = _grads(trainer, only)
    torch.testing.assert_close(
        g_both, 0.5 * g_only, atol=1e-6, rtol=1e-5
    )  # mean over 2 pairs, one weighted 0
    # and a non-zero weight on pair 0 really changes the gradient
    g_one = _grads(
        trainer, collate([dict(trainer.train_dataset[0], weight=1.0), dict(trainer.train_dataset[1])])
    )
    assert (g_one - g_both).abs().max() > 1e-4


def test_loss_type_mismatch_and_trl_pin(tmp_path, tiny_causal_lm_dir, monkeypatch):
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    with pytest.raises(ConfigError, match="does not match"):
        WeightedDPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir),
            args=_args(tmp_path, "sigmoid", "m"),
            train_dataset=Dataset.from_list(ROWS),
            processing_class=tok,
            cw_loss="ipo",
        )
    import trl

    monkeypatch.setattr(trl, "__version__", "1.17.0")
    with pytest.raises(ConfigError, match="1.16"):
        check_trl_version()
    monkeypatch.setenv("CWPO_ALLOW_UNTESTED_TRL", "1")
    with pytest.warns(UserWarning, match="continuing"):
        check_trl_version()


def test_loss_and_tau_follow_the_config(tmp_path, tiny_causal_lm_dir):
    """A TRL user sets only ``loss_type`` (and τ on WeightedDPOConfig); unsupported losses are refused."""
    from cwpo import WeightedDPOConfig
    from cwpo.losses import LossType

    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    common = {"use_cpu": True, "bf16": False, "report_to": "none", "max_length": 64}

    def make(**kw):
        args = WeightedDPOConfig(output_dir=str(tmp_path / "o"), **common, **kw)
        return WeightedDPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir),
            args=args,
            train_dataset=Dataset.from_list([dict(r, weight=1.0) for r in ROWS]),
            processing_class=tok,
        )

    ipo = make(loss_type="ipo", beta=0.2, tau=0.7)
    assert (ipo.cw_loss, ipo.cw_tau) == (LossType.IPO, 0.7)
    robust = make(loss_type="robust", label_smoothing=0.1)
    assert (robust.cw_loss, robust.cw_tau) == (LossType.RDPO, robust.beta)
    with pytest.raises(ConfigError, match="no weighted form"):
        make(loss_type="hinge")
