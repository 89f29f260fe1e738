"""The training settings that ``cwpo sft`` and ``cwpo align`` share (schedule, LoRA, precision,
checkpoints) and their checks. :class:`cwpo.align.sft.SFTConfig` and :class:`cwpo.align.align.AlignConfig` extend it
with what each stage trains on; their own defaults (the learning rate) and help texts override."""

from __future__ import annotations

from dataclasses import dataclass, field

from cwpo.align.hub import hub_model_id_errors
from cwpo.runtime import bf16_errors
from cwpo.tracking import report_to_errors


@dataclass
class TrainingConfig:
    train: str = field(default="", metadata={"help": "the training file"})
    output: str = field(default="", metadata={"help": "result folder (model, metrics.json, manifest.json)"})
    epochs: float = field(
        default=1.0, metadata={"help": "training epochs (paper: 3 SFT, 5 alignment; CPU default 1)"}
    )
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many optimizer steps"})
    lr: float = field(default=5e-5, metadata={"help": "peak learning rate (cosine schedule)"})
    batch_size: int = field(default=4, metadata={"help": "examples per device per micro-batch"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "warmup as a share of the steps (paper: 100 steps)"}
    )
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay (paper: 0.05)"})
    lora: bool = field(default=True, metadata={"help": "train a LoRA adapter (false: full fine-tuning)"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (paper: 8)"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (paper: 16)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout (paper: 0.05)"})
    max_length: int = field(
        default=512, metadata={"help": "max tokens of prompt+response (longer are truncated)"}
    )
    bf16: bool | str = field(
        default="auto",
        metadata={"help": "bf16 (auto: measured at run time; true/false force it); see cwpo.runtime"},
    )
    save_steps: int = field(default=50, metadata={"help": "checkpoint every this many steps (for --resume)"})
    seed: int = field(default=0, metadata={"help": "seed of LoRA init, data order and dropout"})
    resume: bool = field(
        default=False,
        metadata={"help": "continue an interrupted run from its latest checkpoint (kept beside OUTPUT)"},
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "replace an earlier cwpo output of this stage at --output (never other files; it stays until the new one is complete)"
        },
    )
    chat_template: bool = field(
        default=False,
        metadata={
            "help": "train on chat messages rendered with the tokenizer's chat template (as evaluate "
            "--chat-template generates): for chat models"
        },
    )
    activation_checkpointing: bool = field(
        default=False,
        metadata={
            "help": "recompute activations in the backward pass: less memory, about one more forward of compute"
        },
    )
    load_in_4bit: bool = field(
        default=False,
        metadata={"help": "hold the frozen LoRA base in 4 bits (QLoRA; bitsandbytes, CUDA GPU only)"},
    )
    push_to_hub: bool = field(
        default=False,
        metadata={"help": "upload the final model to the Hugging Face Hub (the Trainer's push)"},
    )
    hub_model_id: str = field(
        default="",
        metadata={"help": "the hub repository, NAME or OWNER/NAME (default: the output folder's name)"},
    )
    hub_base_model: str = field(
        default="",
        metadata={"help": "hub id a pushed LoRA adapter names as its base (default: the base, if a hub id)"},
    )
    report_to: str = field(
        default="none",
        metadata={
            "help": "where the training metrics go: none, all, or a comma-separated list of "
            "tensorboard, trackio, wandb (any transformers integration; events of tensorboard in OUTPUT/runs)"
        },
    )


def lora_errors(cfg) -> list[str]:
    """What is wrong with the LoRA settings of ``cfg`` (empty when they are valid)."""
    errors = []
    if cfg.lora_r < 1:
        errors.append(f"lora_r must be >= 1, got {cfg.lora_r}")
    if cfg.lora_alpha <= 0:
        errors.append(f"lora_alpha must be > 0, got {cfg.lora_alpha}")
    if not 0 <= cfg.lora_dropout < 1:
        errors.append(f"lora_dropout must be in [0, 1), got {cfg.lora_dropout}")
    return errors


def bitsandbytes_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def load_in_4bit_errors(cfg) -> list[str]:
    """A 4-bit base needs LoRA, bitsandbytes and a CUDA GPU: what is missing, in one line."""
    import torch

    if not cfg.load_in_4bit:
        return []
    if not cfg.lora:
        return ["load_in_4bit holds a frozen base for LoRA: it needs lora (not full fine-tuning)"]
    if not bitsandbytes_installed():
        return ["load_in_4bit needs bitsandbytes (pip install bitsandbytes) and a CUDA GPU"]
    if not torch.cuda.is_available():
        return ["load_in_4bit needs a CUDA GPU (bitsandbytes' 4-bit training is GPU-only); none found"]
    return []


def training_errors(cfg) -> list[str]:
    """Checks shared by the SFT and align configs (all collected, reported together)."""
    errors = lora_errors(cfg) + bf16_errors(cfg.bf16) + report_to_errors(cfg.report_to)
    errors += load_in_4bit_errors(cfg) + hub_model_id_errors(cfg)
    if cfg.lr <= 0:
        errors.append(f"lr must be > 0, got {cfg.lr}")
    if cfg.epochs <= 0:
        errors.append(f"epochs must be > 0, got {cfg.epochs}")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        errors.append(f"max_steps must be >= 1 (or unset), got {cfg.max_steps}")
    if cfg.batch_size < 1:
        errors.append(f"batch_size must be >= 1, got {cfg.batch_size}")
    if cfg.grad_accum < 1:
        errors.append(f"grad_accum must be >= 1, got {cfg.grad_accum}")
    if not 0 <= cfg.warmup_ratio < 1:
        errors.append(f"warmup_ratio must be in [0, 1), got {cfg.warmup_ratio}")
    if cfg.weight_decay < 0:
        errors.append(f"weight_decay must be >= 0, got {cfg.weight_decay}")
    if cfg.max_length < 8:
        errors.append(f"max_length must be >= 8 tokens, got {cfg.max_length}")
    if cfg.save_steps < 1:
        errors.append(f"save_steps must be >= 1, got {cfg.save_steps}")
    if not cfg.train:
        errors.append("train (the pair file) is required")
    if not cfg.output:
        errors.append("output (the result folder) is required")
    return errors
