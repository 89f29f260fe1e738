"""The TrainingArguments that SFT and alignment share (TRL's SFTConfig/DPOConfig take them as is)."""

from __future__ import annotations

from pathlib import Path

import torch

from cwpo.align.hub import trainer_hub_kwargs
from cwpo.align.stage_output import CHECKPOINTS
from cwpo.tracking import report_targets


def trainer_common_kwargs(cfg, output_dir: Path, autocast: bool) -> dict:
    """TrainingArguments shared by SFT and alignment, with the TRL-on-CPU pitfalls set explicitly."""
    return {
        "output_dir": str(output_dir / CHECKPOINTS),
        "num_train_epochs": cfg.epochs,
        "max_steps": cfg.max_steps if cfg.max_steps else -1,
        "learning_rate": cfg.lr,
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "lr_scheduler_type": "cosine",
        "warmup_steps": cfg.warmup_ratio,  # transformers 5: a float < 1 is a ratio of the total steps
        "weight_decay": cfg.weight_decay,
        "max_length": cfg.max_length,
        "bf16": autocast,
        "fp16": False,
        "activation_checkpointing": cfg.activation_checkpointing,
        # non-reentrant: works with a frozen base (LoRA), whose inputs need no gradient
        "activation_checkpointing_kwargs": {"use_reentrant": False} if cfg.activation_checkpointing else None,
        "use_cpu": not torch.cuda.is_available(),
        "report_to": report_targets(cfg.report_to) or "none",
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": 2,
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "disable_tqdm": False,
        "dataloader_num_workers": 0,
        "ddp_find_unused_parameters": False,
        **trainer_hub_kwargs(cfg),
    }
