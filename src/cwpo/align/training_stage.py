"""The start and the end that ``sft`` and ``align`` share around building their trainer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers.trainer_callback import PrinterCallback, ProgressCallback

from cwpo.align.hub import hub_base_model, name_hub_base
from cwpo.align.stage_output import checkpoint_to_resume, inputs_hash, save_final
from cwpo.align.trainable_model import load_trainable, training_attention, training_precision
from cwpo.align.trainer import check_trl_version
from cwpo.config import to_dict
from cwpo.data.chat import require_chat_template
from cwpo.errors import warn
from cwpo.models.loading import load_tokenizer


def use_callers_progress(trainer, callbacks: list | None) -> None:
    """If a caller's callback draws the progress (``replaces_default_progress``, e.g.
    :func:`cwpo.console.training_bar`), drop the Trainer's own bar and per-step ``print(logs)``
    (the logs still reach ``trainer.state.log_history``, hence ``metrics.json``)."""
    if any(getattr(cb, "replaces_default_progress", False) for cb in callbacks or ()):
        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)


def step_metrics(log_history: list[dict]) -> list[dict]:
    """Per-step training logs (loss, rewards, lr, step time) from the Trainer's history."""
    return [dict(entry) for entry in log_history if "loss" in entry and "step" in entry]


@dataclass
class TrainingStart:
    """What ``sft`` and ``align`` share before building their trainer (see :func:`start_training`)."""

    trl_version: str
    output_dir: Path
    work_dir: Path  # where the Trainer writes (checkpoints, then the model) until it replaces output_dir
    resume_from: str | None
    base_path: str
    inputs_hash: str
    weights_dtype: str
    autocast: bool
    model: Any
    tokenizer: Any
    hub_base: str | None = None  # the hub id a pushed adapter names as its base


def start_training(cfg, stage: str, model_ref: str) -> TrainingStart:
    """The common start of a training stage, after its rows were read and checked: TRL's version,
    the output folder (resume or refuse, :func:`checkpoint_to_resume`), the inputs hash, the
    precision chosen for this machine and the trainable model (LoRA or full, seeded)."""
    trl_version = check_trl_version()
    hub_base = hub_base_model(cfg, model_ref)  # refused before any work if it cannot be named
    if cfg.chat_template:
        require_chat_template(load_tokenizer(model_ref), model_ref)
    output_dir = Path(os.path.abspath(cfg.output))
    work_dir, resume_from = checkpoint_to_resume(output_dir, cfg.resume, stage, cfg.overwrite)
    base_path = model_ref  # recorded as an absolute folder or hub id when saved
    ihash = inputs_hash(cfg.train, model_ref)
    weights_dtype, autocast = training_precision(cfg.bf16, cfg.lora)
    model, tokenizer = load_trainable(
        model_ref,
        cfg.seed,
        cfg.lora,
        "bfloat16" if cfg.load_in_4bit and autocast else weights_dtype,
        training_attention(cfg.max_length),
        load_in_4bit=cfg.load_in_4bit,
        compute_dtype="bfloat16" if autocast else "float32",
    )
    return TrainingStart(
        trl_version=trl_version,
        output_dir=output_dir,
        work_dir=work_dir,
        resume_from=resume_from,
        base_path=base_path,
        inputs_hash=ihash,
        weights_dtype=weights_dtype,
        autocast=autocast,
        model=model,
        tokenizer=tokenizer,
        hub_base=hub_base,
    )


def uneven_last_batch(n_examples: int, per_device: int, world: int) -> int:
    """At most how many examples the last batch of an epoch repeats across ``world`` processes
    (accelerate's ``even_batches`` fills the ranks that run out from the start of the epoch)."""
    left = n_examples % (per_device * world)
    return 0 if world < 2 or left == 0 else per_device * world - left


def warn_uneven_last_batch(trainer, stage: str) -> None:
    """One line on rank 0 when the last batch of an epoch differs from a one-process run."""
    args, data = trainer.args, trainer.train_dataset
    if data is None or not hasattr(data, "__len__") or args.process_index != 0:
        return
    repeated = uneven_last_batch(len(data), args.per_device_train_batch_size, args.world_size)
    if repeated:
        warn(
            f"{stage}: {len(data)} training examples are not a multiple of the global batch "
            f"{args.per_device_train_batch_size * args.world_size} ({args.world_size} processes): the last "
            f"batch of each epoch repeats up to {repeated} of them, so it differs from one process (docs/scaling.md)"
        )


def finish_training(trainer, run: TrainingStart, cfg, stage: str, callbacks: list | None, head: dict) -> dict:
    """The common end of a training stage: train (resuming where ``run`` says), then save the model,
    its per-step metrics and a summary (``head`` first, then the step counts and precision)."""
    use_callers_progress(trainer, callbacks)
    warn_uneven_last_batch(trainer, stage)
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
    name_hub_base(trainer, run.hub_base)  # the pushed copy; the local one records its own base
    save_final(
        trainer, run.work_dir, run.output_dir, run.base_path, to_dict(cfg), stage, metrics, run.inputs_hash
    )
    return {"output": str(run.output_dir), **summary}
