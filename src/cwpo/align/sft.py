"""Supervised fine-tuning of the strong model on (prompt, chosen): the start point and πref of align.

The paper SFT-trains the strong model on (x, y_w) of D_u, where y_w is the weak annotator's
choice: pass the annotated file (its ``chosen`` is y_w). A labeled file with human labels, or an
unlabeled file with ``human_label``, trains on the human choice instead.

Built on TRL's ``SFTTrainer`` with a prompt/completion dataset, so the loss covers the response
tokens only (``completion_only_loss``, TRL's default for that layout) and TRL appends EOS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cwpo.align.training_config import TrainingConfig, training_errors
from cwpo.align.training_pairs import read_training_pairs
from cwpo.config import check
from cwpo.data.chat import (
    PROMPT_MESSAGES,
    conversational_demo,
    message_problem,
    with_messages,
    without_messages,
)
from cwpo.data.readers import iter_records
from cwpo.errors import DataError


@dataclass
class SFTConfig(TrainingConfig):
    train: str = field(
        default="", metadata={"help": "labeled pairs (trains on prompt+chosen) or unlabeled + human_label"}
    )
    output: str = field(
        default="", metadata={"help": "result folder (adapter or full model, metrics, manifest)"}
    )
    lr: float = field(
        default=2e-4, metadata={"help": "peak learning rate (cosine; 2e-4 suits LoRA, ~1e-5 full)"}
    )
    batch_size: int = field(default=4, metadata={"help": "sequences per device per micro-batch"})
    model: str = field(
        default="smollm2-135m-instruct", metadata={"help": "base model (name, folder, hub id)"}
    )

    def __post_init__(self):
        errors = training_errors(self)
        if not self.model:
            errors.append("model is required")
        check(errors, "sft config")


def read_sft_rows(path: str) -> tuple[list[dict], str]:
    """(prompt, completion) rows and where they come from.

    Accepts demonstrations (``prompt`` + ``completion``, or ``prompt`` + ``chosen`` without a
    ``rejected`` column: e.g. IMDb prefixes and their continuations) as well as every pair file
    that :func:`cwpo.align.training_pairs.read_training_pairs` reads (their ``chosen`` is the target).
    """
    records = list(iter_records(path))
    first = records[0][1]
    target = (
        "completion"
        if "completion" in first
        else "chosen"
        if "chosen" in first and "rejected" not in first
        else None
    )
    if target is None:
        rows, source = read_training_pairs(path)
        return [{**with_messages(r), "completion": r["chosen"]} for r in rows], source
    out = []
    for row_no, rec in records:
        for col in ("prompt", target):
            if not isinstance(rec.get(col), str):
                raise DataError(
                    f"column {col!r} must be text, got {type(rec.get(col)).__name__}", path, row_no
                )
        if not rec[target].strip():
            raise DataError(f"empty {target!r}", path, row_no)
        problem = rec.get(PROMPT_MESSAGES) is not None and message_problem(rec[PROMPT_MESSAGES])
        if problem:
            raise DataError(f"column {PROMPT_MESSAGES!r} {problem}", path, row_no)
        out.append({**with_messages(rec), "completion": rec[target]})
    return out, "demonstrations"


def sft(cfg: SFTConfig, callbacks: list | None = None) -> dict:
    """Train on (prompt, chosen) and save the model ``cwpo align`` starts from; return a summary."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # here, not at the top: TRL, PEFT and datasets take ~10 s to import, and SFTConfig (this
    # module) is read by `cwpo sft --help` and by recipe validation
    from datasets import Dataset
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    from cwpo.align.trainable_model import lora_config
    from cwpo.align.training_args import trainer_common_kwargs
    from cwpo.align.training_stage import finish_training, start_training

    rows, label_source = read_sft_rows(cfg.train)
    run = start_training(cfg, "sft", cfg.model)
    rows = [conversational_demo(r) if cfg.chat_template else without_messages(r) for r in rows]
    data = Dataset.from_list(rows)

    args = TRLSFTConfig(**trainer_common_kwargs(cfg, run.work_dir, run.autocast), completion_only_loss=True)
    trainer = SFTTrainer(
        model=run.model,
        args=args,
        train_dataset=data,
        processing_class=run.tokenizer,
        peft_config=lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) if cfg.lora else None,
        callbacks=callbacks,
    )
    head = {"label_source": label_source, "n_examples": len(rows)}
    return finish_training(trainer, run, cfg, "sft", callbacks, head)
