"""The settings of ``cwpo train-annotator`` (:class:`TrainAnnotatorConfig`) and their checks.

The defaults were chosen by measurement (``benchmarks/annotator/annotator_defaults.py`` and the HH-RLHF
annotator track ``benchmarks/annotator/hh_annotator.py``); see :mod:`cwpo.annotator.train`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from cwpo.annotator.model import OBJECTIVES, POOLINGS
from cwpo.annotator.tracking import annotator_report_to_errors
from cwpo.config import check
from cwpo.runtime import bf16_errors

MIN_TRAIN_PAIRS = 32  # fewer human-labelled pairs than one default batch: warn
MIN_EARLY_STOPPING_PAIRS = 20  # below this a validation slice is too small to pick an epoch: skipped


@dataclass
class TrainAnnotatorConfig:
    train: str = field(
        default="", metadata={"help": "labeled pairs (JSONL/Parquet: prompt, chosen, rejected)"}
    )
    output: str = field(default="", metadata={"help": "annotator directory to write"})
    backbone: str = field(default="minilm-l6", metadata={"help": "short name, local folder or hub id"})
    objective: Literal["bt", "pairrm", "dpo"] = field(default="bt", metadata={"help": "training objective"})
    eval: str | None = field(default=None, metadata={"help": "held-out labeled pairs for accuracy/ECE"})
    epochs: int = field(
        default=3, metadata={"help": "epochs over D_l, at most (with early_stopping; paper: 5)"}
    )
    sft_epochs: int = field(default=1, metadata={"help": "dpo objective only: SFT epochs before DPO"})
    batch_size: int = field(default=32, metadata={"help": "pairs per optimizer step (paper: 32)"})
    lr: float = field(default=3e-5, metadata={"help": "Adam learning rate of the pretrained backbone"})
    head_lr: float | None = field(
        default=1e-3,
        metadata={"help": "learning rate of the new scalar head (bt, pairrm); null: the same as lr"},
    )
    pooling: Literal["mean", "cls", "response"] = field(
        default="mean",
        metadata={
            "help": "bt/pairrm: the head reads the mean of the last hidden states; response: their "
            "mean over the response's tokens only; cls: the model's own classification path "
            "(BERT pooler; last token for causal LMs)"
        },
    )
    separator: bool = field(
        default=False,
        metadata={"help": "bt: the tokenizer's pair separator between prompt and response (BERT: [SEP])"},
    )
    chat_template: bool = field(
        default=False,
        metadata={
            "help": "dpo: prompts (a conversation's turns) through the backbone's chat template, as "
            "sft/align with chat_template; bt/pairrm encoders read the plain-text prompt"
        },
    )
    report_to: str = field(
        default="none",
        metadata={
            "help": "none or tensorboard (all: tensorboard): step losses, validation curve and eval "
            "metrics as TensorBoard events in OUTPUT/runs, written when training ends"
        },
    )
    attention_dropout: float | None = field(
        default=0.0,
        metadata={
            "help": "dropout on the attention probabilities in training (0 lets PyTorch use its fused "
            "attention kernel: 2.5x faster MiniLM-L6 steps here, accuracy unchanged on HH-RLHF; "
            "null: the backbone's own, 0.1 for MiniLM-L6)"
        },
    )
    early_stopping: bool = field(
        default=False,
        metadata={
            "help": "hold out val_frac of --train, measure its loss after every epoch, stop after "
            "patience epochs without improvement and keep the best epoch's weights"
        },
    )
    val_frac: float = field(default=0.1, metadata={"help": "share of --train held out for early stopping"})
    patience: int = field(default=1, metadata={"help": "epochs without improvement before stopping"})
    max_length: int = field(default=256, metadata={"help": "tokens per sequence; prompts cut from the left"})
    beta: float = field(default=0.1, metadata={"help": "dpo objective: β of the implicit reward"})
    seed: int = field(default=0, metadata={"help": "seed of initialization and shuffling"})
    calibrate: bool = field(
        default=False, metadata={"help": "fit a temperature on a held-out slice of --train"}
    )
    calibration_frac: float = field(
        default=0.1,
        metadata={"help": "share of --train held out to fit T (with early_stopping: its val slice)"},
    )
    bf16: bool | str = field(
        default="auto",
        metadata={"help": "bf16 autocast (auto: where a run-time probe finds it faster; see cwpo.runtime)"},
    )
    length_buckets: bool = field(
        default=True,
        metadata={
            "help": "batch pairs of similar length (shuffled within windows of 16 batches): less padding"
        },
    )
    eval_batch_size: int = field(default=64, metadata={"help": "sequences per forward when evaluating"})
    max_train_pairs: int | None = field(
        default=None, metadata={"help": "use only the first N training pairs"}
    )
    progress: bool = field(default=True, metadata={"help": "show progress bars"})
    overwrite: bool = field(
        default=False,
        metadata={"help": "replace an earlier cwpo output of this stage at --output (never other files)"},
    )

    def __post_init__(self):
        errors = []
        if not self.train:
            errors.append("train (labeled pairs) is required")
        if not self.output:
            errors.append("output (annotator directory) is required")
        if self.objective not in OBJECTIVES:
            errors.append(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        errors += bf16_errors(self.bf16)
        if self.pooling not in POOLINGS:
            errors.append(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.separator and self.objective != "bt":
            errors.append(f"separator applies to the bt objective only, not {self.objective!r}")
        if self.chat_template and self.objective != "dpo":
            errors.append(
                f"chat_template applies to the dpo objective (a causal LM) only, not {self.objective!r}: "
                "bt/pairrm encoders read the plain-text prompt"
            )
        errors += annotator_report_to_errors(self.report_to)
        if self.attention_dropout is not None and not 0 <= self.attention_dropout < 1:
            errors.append(f"attention_dropout must be in [0, 1), got {self.attention_dropout}")
        if self.head_lr is not None and not (self.head_lr > 0 and math.isfinite(self.head_lr)):
            errors.append(f"head_lr must be a positive number or null, got {self.head_lr}")
        if not 0 < self.val_frac < 1:
            errors.append(f"val_frac must be in (0, 1), got {self.val_frac}")
        for name in ("epochs", "batch_size", "max_length", "eval_batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                errors.append(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.sft_epochs < 0:
            errors.append(f"sft_epochs must be ≥ 0, got {self.sft_epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            errors.append(f"lr must be a positive number, got {self.lr}")
        if not self.beta > 0:
            errors.append(f"beta must be > 0, got {self.beta}")
        if not 0 < self.calibration_frac < 1:
            errors.append(f"calibration_frac must be in (0, 1), got {self.calibration_frac}")
        if self.max_train_pairs is not None and self.max_train_pairs < 2:
            errors.append(f"max_train_pairs must be ≥ 2, got {self.max_train_pairs}")
        check(errors, "train-annotator config")
