"""Memory-lean loading: the training dtype straight from the checkpoint, activation checkpointing,
and the 4-bit (QLoRA) base refused in one line where bitsandbytes or a GPU is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

from cwpo.align import AlignConfig, SFTConfig, align, training_config
from cwpo.align.trainable_model import load_trainable, quantization_4bit, training_precision
from cwpo.align.training_args import trainer_common_kwargs
from cwpo.data.schema import write_pairs
from cwpo.errors import ConfigError


def test_weights_load_in_the_training_dtype_without_an_fp32_copy(monkeypatch, tiny_causal_lm_dir):
    asked = []
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        asked.append(kwargs.get("dtype"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    model, _ = load_trainable(tiny_causal_lm_dir, seed=0, lora=True, dtype="bfloat16")
    assert asked == [torch.bfloat16]  # read as bf16 from the checkpoint, not fp32 then cast
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.training


def test_lora_base_is_held_in_bf16_on_every_device(monkeypatch):
    monkeypatch.setenv("CWPO_BF16", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_precision("auto", lora=True) == ("bfloat16", True)  # GPU: bf16 base + autocast
    assert training_precision("auto", lora=False) == ("float32", True)  # full: fp32 master weights


def test_activation_checkpointing_trains_the_same_steps(tmp_path, labeled_rows, tiny_causal_lm_dir):
    rows = [dict(r, confidence=0.2 + 0.1 * i) for i, r in enumerate(labeled_rows[:4])]
    train = str(write_pairs(tmp_path / "train.jsonl", rows))
    common = {"train": train, "policy": tiny_causal_lm_dir, "max_steps": 2, "batch_size": 2}
    common |= {"max_length": 64, "weighting": "confidence", "bf16": False}
    plain = align(AlignConfig(**common, output=str(tmp_path / "plain")))
    ckpt = align(AlignConfig(**common, output=str(tmp_path / "ckpt"), activation_checkpointing=True))
    losses = [
        [s["loss"] for s in json.loads((Path(r["output"]) / "metrics.json").read_text())["steps"]]
        for r in (plain, ckpt)
    ]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    kwargs = trainer_common_kwargs(
        AlignConfig(**common, output="o", activation_checkpointing=True), tmp_path, False
    )
    assert kwargs["activation_checkpointing"] is True
    assert kwargs["activation_checkpointing_kwargs"] == {"use_reentrant": False}


def test_activation_checkpointing_is_on_in_the_trainer(
    tmp_path, labeled_rows, tiny_causal_lm_dir, monkeypatch
):
    """The model the Trainer trains really recomputes (the option is not dropped on the way)."""
    seen = []
    real = transformers.PreTrainedModel.activation_checkpointing_enable

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("activation_checkpointing_kwargs", args[0] if args else None))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(transformers.PreTrainedModel, "activation_checkpointing_enable", spy)
    train = str(write_pairs(tmp_path / "t.jsonl", labeled_rows[:2]))
    align(
        AlignConfig(
            train=train, policy=tiny_causal_lm_dir, output=str(tmp_path / "o"), max_steps=1, batch_size=2,
            max_length=64, activation_checkpointing=True,
        )
    )  # fmt: skip
    assert seen and seen[0] == {"use_reentrant": False}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_4bit_base_is_refused_in_one_line_without_bitsandbytes_or_gpu(monkeypatch):
    base = {"train": "t.jsonl", "output": "o", "load_in_4bit": True}
    with pytest.raises(ConfigError, match="needs lora") as err:
        SFTConfig(**base, lora=False)
    assert "\n" not in str(err.value)
    monkeypatch.setattr(training_config, "bitsandbytes_installed", lambda: False)
    with pytest.raises(ConfigError, match=r"needs bitsandbytes \(pip install bitsandbytes\) and a CUDA GPU"):
        SFTConfig(**base)
    monkeypatch.setattr(training_config, "bitsandbytes_installed", lambda: True)  # installed, but no GPU
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        AlignConfig(**base, policy="p")


def test_4bit_base_reaches_from_pretrained(monkeypatch, tiny_causal_lm_dir):
    """Up to the GPU: the QLoRA quantization config is what transformers receives (GPU-only past it)."""
    got = {}

    def fake(path, **kwargs):
        got.update(kwargs)
        raise RuntimeError("stop before bitsandbytes")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake)
    with pytest.raises(RuntimeError, match="stop before"):
        load_trainable(tiny_causal_lm_dir, 0, True, "bfloat16", load_in_4bit=True, compute_dtype="bfloat16")
    q = got["quantization_config"]
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_compute_dtype == torch.bfloat16
    assert got["dtype"] == torch.bfloat16
    assert quantization_4bit("float32").bnb_4bit_compute_dtype == torch.float32
