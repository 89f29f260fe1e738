"""What SFT and alignment share: reading the training pairs, LoRA settings, checkpoints, saving.

The output folder of a training stage holds the model itself (a LoRA adapter whose
``base_model_name_or_path`` is the exact folder it was trained from, or a full model), its
tokenizer, ``metrics.json``, ``cwpo_config.json`` and ``manifest.json`` (written last: its presence
means the folder is complete), plus ``checkpoints/`` for resuming.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cwpo.atomic_files import read_json, write_json
from cwpo.data.schema import HUMAN_LABEL, kind_of, read_pairs, to_labeled
from cwpo.errors import ConfigError, DataError
from cwpo.hashing import hash_config, sha256_path
from cwpo.models import resolve_model
from cwpo.outputs import MANIFEST, clear_output, write_manifest

CHECKPOINTS = "checkpoints"
RUN_CONFIG = "cwpo_config.json"  # not config.json: a full model folder has its own


def read_training_pairs(path: str) -> tuple[list[dict], str]:
    """Labeled pairs from ``path`` and where their labels come from.

    A labeled file (prompt/chosen/rejected, e.g. written by ``cwpo annotate``) is used as is
    (``"file"``); an unlabeled file with ``human_label`` becomes the human-labeled pairs
    (``"human"``, the Human baseline). An unlabeled file without labels is refused.
    """
    rows = read_pairs(path)
    if kind_of(rows[0]) == "labeled":
        return rows, "file"
    if HUMAN_LABEL not in rows[0]:
        raise DataError(
            "unlabeled pairs (prompt/response_a/response_b) without a human_label column: label them first "
            "with `cwpo annotate`, or pass a labeled file (prompt/chosen/rejected)",
            path,
        )
    for i, row in enumerate(rows, 1):
        if row.get(HUMAN_LABEL) not in ("a", "b"):
            raise DataError(f"{HUMAN_LABEL} must be 'a' or 'b', got {row.get(HUMAN_LABEL)!r}", path, i)
    return to_labeled(rows), "human"


def training_precision(bf16, lora: bool) -> tuple[str, bool]:
    """(dtype of the loaded weights, autocast on/off) for a stage's ``bf16`` setting.

    ``bf16`` is ``auto`` (the probe of :mod:`cwpo.runtime` decides), ``true`` or ``false``. With
    bf16 and LoRA on a CPU, the frozen base is *held* in bf16 and the LoRA weights stay fp32 (PEFT
    upcasts adapters), so no step re-casts 135M weights; elsewhere bf16 means autocast (GPU, or
    full fine-tuning, whose trained weights stay fp32).
    """
    import torch

    from cwpo.runtime import resolve_bf16

    if not resolve_bf16(bf16):
        return "float32", False
    if lora and not torch.cuda.is_available():
        return "bfloat16", False
    return "float32", True


EAGER_ATTENTION_MAX_LENGTH = 512


def training_attention(max_length: int) -> str | None:
    """The attention kernel for training: ``eager`` on a CPU up to 512 tokens, else the model's own.

    PyTorch's CPU flash-attention backward is slow at these lengths: a SmolLM2 + LoRA step ran
    1.19x (64 tokens) and 1.10x (256 tokens) faster with eager attention on a 2-core Zen4
    (``benchmarks/results/speed.md``). A documented default, not a probe; ``CWPO_ATTN=sdpa|eager``
    overrides it. Both compute the same softmax attention (eager in fp32 softmax).
    """
    import os

    import torch

    env = os.environ.get("CWPO_ATTN")
    if env:
        return env
    if torch.cuda.is_available() or max_length > EAGER_ATTENTION_MAX_LENGTH:
        return None
    return "eager"


def load_trainable(
    model_ref: str, seed: int, lora: bool, dtype: str = "float32", attention: str | None = None
):
    """Seed everything, then load the model to train (and its tokenizer) in train mode.

    With ``lora=False`` every weight is made trainable: a merged adapter folder comes back frozen.
    ``dtype`` is the dtype of the loaded weights (bf16 only for a frozen LoRA base); ``attention``
    an attention implementation to switch to (see :func:`training_attention`; not saved).
    """
    import torch
    from transformers import set_seed

    from cwpo.models.loading import load_causal_lm

    set_seed(seed)
    model, tokenizer = load_causal_lm(model_ref)  # fp32: an adapter folder is merged at full precision
    if dtype != "float32":
        model.to(getattr(torch, dtype))
    if attention:
        model.set_attn_implementation(attention)
    model.train()
    if not lora:
        model.requires_grad_(True)
    return model, tokenizer


def lora_config(r: int, alpha: int, dropout: float):
    """The paper's LoRA (r=8, α=16, dropout 0.05) on every linear layer except the LM head."""
    from peft import LoraConfig

    return LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"
    )


def common_lora_errors(cfg) -> list[str]:
    errors = []
    if cfg.lora_r < 1:
        errors.append(f"lora_r must be >= 1, got {cfg.lora_r}")
    if cfg.lora_alpha <= 0:
        errors.append(f"lora_alpha must be > 0, got {cfg.lora_alpha}")
    if not 0 <= cfg.lora_dropout < 1:
        errors.append(f"lora_dropout must be in [0, 1), got {cfg.lora_dropout}")
    return errors


def common_training_errors(cfg) -> list[str]:
    """Checks shared by the SFT and align configs (all collected, reported together)."""
    from cwpo.runtime import bf16_errors

    errors = common_lora_errors(cfg) + bf16_errors(cfg.bf16)
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


def trainer_common_kwargs(cfg, output_dir: Path, autocast: bool) -> dict:
    """TrainingArguments shared by SFT and alignment, with the TRL-on-CPU pitfalls set explicitly."""
    import torch

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
        "activation_checkpointing": False,
        "use_cpu": not torch.cuda.is_available(),
        "report_to": "none",
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": 2,
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "disable_tqdm": False,
        "dataloader_num_workers": 0,
        "ddp_find_unused_parameters": False,
    }


def use_callers_progress(trainer, callbacks: list | None) -> None:
    """If a caller's callback draws the progress (``replaces_default_progress``, e.g.
    :func:`cwpo.console.training_bar`), drop the Trainer's own bar and per-step ``print(logs)``
    (the logs still reach ``trainer.state.log_history``, hence ``metrics.json``)."""
    if any(getattr(cb, "replaces_default_progress", False) for cb in callbacks or ()):
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)


def checkpoint_to_resume(output_dir: Path, resume: bool, stage: str, overwrite: bool = False) -> str | None:
    """Check ``output_dir`` before any work; return the checkpoint to resume from, if any.

    An interrupted run (checkpoints, no manifest) continues with ``resume`` and is otherwise
    refused. Anything else follows :func:`cwpo.outputs.guard_output`: a new or empty folder is used,
    an earlier output of ``stage`` is removed first only with ``overwrite`` (and only when every
    file in it is one cwpo wrote), and a folder cwpo did not write is never touched.
    """
    from transformers.trainer_utils import get_last_checkpoint

    ckpt_dir = output_dir / CHECKPOINTS
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if last:
        manifest = output_dir / MANIFEST
        found = read_json(manifest).get("stage") if manifest.exists() else stage
        if found != stage:
            raise ConfigError(
                f"{output_dir} holds a cwpo `{found}` output, not `{stage}`: choose another --output"
            )
        if resume:
            return last
        if not overwrite:
            raise ConfigError(
                f"{output_dir} holds checkpoints of an earlier run ({Path(last).name}); pass --resume to continue "
                "it, --overwrite to start again, or choose another --output"
            )
        if not manifest.exists():  # an interrupted run: only cwpo's checkpoints, no file list yet
            shutil.rmtree(ckpt_dir)
    clear_output(output_dir, stage, overwrite=overwrite)
    return None


def inputs_hash(train: str, model_ref: str) -> str:
    """Content hash of the training file and the starting model (a hub id is hashed by name)."""
    resolved = resolve_model(model_ref)
    model_hash = sha256_path(resolved) if Path(resolved).exists() else resolved
    return hash_config({"train": sha256_path(train), "model": model_hash})


def save_final(
    trainer, output_dir: Path, base_path: str, cfg_dict: dict, stage: str, metrics: dict, ihash: str
):
    """Save model + tokenizer into ``output_dir`` (main process only), then metrics, config and manifest.

    The model is written into a temporary folder and its files moved into place; ``manifest.json``
    is written last. An adapter's ``base_model_name_or_path`` is set to ``base_path`` (the folder it
    was trained from: loading it then reproduces the trained policy exactly).
    """
    if not trainer.is_world_process_zero():
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model.", suffix=".tmp", dir=output_dir))
    try:
        trainer.save_model(str(tmp))
        adapter_cfg = tmp / "adapter_config.json"
        if adapter_cfg.exists():
            data = json.loads(adapter_cfg.read_text())
            data["base_model_name_or_path"] = base_path
            write_json(adapter_cfg, data)
        (tmp / "training_args.bin").unlink(missing_ok=True)
        for f in tmp.iterdir():
            if f.is_file():
                os.replace(f, output_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(output_dir / "metrics.json", metrics)
    write_json(output_dir / RUN_CONFIG, cfg_dict)
    write_manifest(output_dir, stage, cfg_dict, ihash, metrics.get("summary", {}))


def step_metrics(log_history: list[dict]) -> list[dict]:
    """Per-step training logs (loss, rewards, lr, step time) from the Trainer's history."""
    return [dict(entry) for entry in log_history if "loss" in entry and "step" in entry]


@dataclass
class TrainingStart:
    """What ``sft`` and ``align`` share before building their trainer (see :func:`start_training`)."""

    trl_version: str
    output_dir: Path
    resume_from: str | None
    base_path: str
    inputs_hash: str
    weights_dtype: str
    autocast: bool
    model: Any
    tokenizer: Any


def start_training(cfg, stage: str, model_ref: str) -> TrainingStart:
    """The common start of a training stage, after its rows were read and checked: TRL's version,
    the output folder (resume or refuse, :func:`checkpoint_to_resume`), the inputs hash, the
    precision chosen for this machine and the trainable model (LoRA or full, seeded)."""
    from cwpo.align.trainer import check_trl_version

    trl_version = check_trl_version()
    output_dir = Path(cfg.output)
    resume_from = checkpoint_to_resume(output_dir, cfg.resume, stage, cfg.overwrite)
    base_path = resolve_model(model_ref)
    ihash = inputs_hash(cfg.train, model_ref)
    weights_dtype, autocast = training_precision(cfg.bf16, cfg.lora)
    model, tokenizer = load_trainable(
        model_ref, cfg.seed, cfg.lora, weights_dtype, training_attention(cfg.max_length)
    )
    return TrainingStart(
        trl_version=trl_version,
        output_dir=output_dir,
        resume_from=resume_from,
        base_path=base_path,
        inputs_hash=ihash,
        weights_dtype=weights_dtype,
        autocast=autocast,
        model=model,
        tokenizer=tokenizer,
    )


def finish_training(trainer, run: TrainingStart, cfg, stage: str, callbacks: list | None, head: dict) -> dict:
    """The common end of a training stage: train (resuming where ``run`` says), then save the model,
    its per-step metrics and a summary (``head`` first, then the step counts and precision)."""
    from cwpo.config import to_dict

    use_callers_progress(trainer, callbacks)
    result = trainer.train(resume_from_checkpoint=run.resume_from)
    steps = step_metrics(trainer.state.log_history)
    summary = {
        **head,
        "global_step": trainer.state.global_step,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "final_loss": steps[-1]["loss"] if steps else None,
        "resumed_from": Path(run.resume_from).name if run.resume_from else None,
        "world_size": trainer.args.world_size,
        "precision": {"weights": run.weights_dtype, "autocast_bf16": run.autocast},
    }
    metrics = {"summary": summary, "steps": steps}
    save_final(trainer, run.output_dir, run.base_path, to_dict(cfg), stage, metrics, run.inputs_hash)
    return {"output": str(run.output_dir), **summary}
