"""The model a training stage trains: its precision, attention kernel, LoRA settings, loading."""

from __future__ import annotations

import os

import torch
from peft import LoraConfig
from transformers import set_seed

from cwpo.models.loading import load_causal_lm
from cwpo.runtime import resolve_bf16


def training_precision(bf16, lora: bool) -> tuple[str, bool]:
    """(dtype of the loaded weights, autocast on/off) for a stage's ``bf16`` setting.

    ``bf16`` is ``auto`` (the probe of :mod:`cwpo.runtime` decides), ``true`` or ``false``. With
    bf16 and LoRA the frozen base is *held* in bf16 and the LoRA weights stay fp32 (PEFT upcasts
    adapters): half the memory of an fp32 base, and on a CPU no step re-casts the base weights; on
    a GPU autocast runs the adapters' matmuls in bf16 too. Full fine-tuning keeps its trained
    weights in fp32 and bf16 means autocast.
    """
    if not resolve_bf16(bf16):
        return "float32", False
    if lora:
        return "bfloat16", torch.cuda.is_available()
    return "float32", True


EAGER_ATTENTION_MAX_LENGTH = 512


def training_attention(max_length: int) -> str | None:
    """The attention kernel for training: ``eager`` on a CPU up to 512 tokens, else the model's own.

    PyTorch's CPU flash-attention backward is slow at these lengths: a SmolLM2 + LoRA step ran
    1.19x (64 tokens) and 1.10x (256 tokens) faster with eager attention on a 2-core Zen4
    (``benchmarks/speed/results/speed.md``). A documented default, not a probe; ``CWPO_ATTN=sdpa|eager``
    overrides it. Both compute the same softmax attention (eager in fp32 softmax).
    """
    env = os.environ.get("CWPO_ATTN")
    if env:
        return env
    if torch.cuda.is_available() or max_length > EAGER_ATTENTION_MAX_LENGTH:
        return None
    return "eager"


def quantization_4bit(compute_dtype: str):
    """The QLoRA base: NF4 weights with double quantization, computing in ``compute_dtype``
    (bitsandbytes, CUDA only; :func:`cwpo.align.training_config.load_in_4bit_errors` checks first)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
    )


def load_trainable(
    model_ref: str,
    seed: int,
    lora: bool,
    dtype: str = "float32",
    attention: str | None = None,
    load_in_4bit: bool = False,
    compute_dtype: str = "float32",
):
    """Seed everything, then load the model to train (and its tokenizer) in train mode.

    The weights are loaded straight in ``dtype`` (bf16 only for a frozen LoRA base), never as an
    fp32 copy cast afterwards: transformers 5 builds the model on the meta device and fills it
    from the checkpoint (what ``low_cpu_mem_usage=True`` did before), so the host holds one copy
    at the training precision (``benchmarks/speed/memory.py`` measures it). An adapter folder is
    merged into its base in that dtype too. ``load_in_4bit`` holds the frozen base in 4 bits for
    LoRA (QLoRA, CUDA only), computing in ``compute_dtype``. With ``lora=False`` every weight is
    made trainable: a merged adapter folder comes back frozen. ``attention`` is an attention
    implementation to switch to (see :func:`training_attention`; not saved).
    """
    set_seed(seed)
    extra = {"quantization_config": quantization_4bit(compute_dtype)} if load_in_4bit else {}
    model, tokenizer = load_causal_lm(model_ref, dtype=getattr(torch, dtype), **extra)
    if attention:
        model.set_attn_implementation(attention)
    model.train()
    if not lora:
        model.requires_grad_(True)
    return model, tokenizer


def lora_config(r: int, alpha: int, dropout: float) -> LoraConfig:
    """The paper's LoRA (r=8, α=16, dropout 0.05) on every linear layer except the LM head."""
    return LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"
    )
