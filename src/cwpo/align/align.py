"""The one alignment path: a method is (label source, weighting, loss), never a new script.

* Human     = a file with human labels (an unlabeled file with ``human_label``) + ``none``
* WS-DPO    = weak labels (``cwpo annotate`` output) + ``none``
* CW-PO     = weak labels + ``confidence`` (c = tanh(|Δ|/2), the ``confidence`` column)
* filtering = weak labels + ``top-N`` (the N% most confident pairs, weight 1)
* Table 5   = weak labels + any other weight function of the margin (:mod:`cwpo.weighting`)

each with ``--loss`` one of :data:`cwpo.losses.LOSS_REGISTRY` (dpo, ipo, rdpo). The policy starts from ``policy`` (the SFT model), which is also
πref: with LoRA the reference is the adapter-disabled model, with full fine-tuning a frozen copy
(or neither, with ``precompute_ref``: reference log-probs computed once before training).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Literal

from cwpo.align.training_config import TrainingConfig, training_errors
from cwpo.align.training_pairs import read_training_pairs
from cwpo.config import check
from cwpo.data.chat import conversational_pair, with_messages, without_messages
from cwpo.errors import ConfigError, DataError
from cwpo.losses import LOSS_NAMES, LossType
from cwpo.models.loading import load_causal_lm
from cwpo.weighting import check_weights, get_weighting, margin_from_confidence


@dataclass
class AlignConfig(TrainingConfig):
    train: str = field(
        default="",
        metadata={
            "help": "labeled pairs (prompt/chosen/rejected [+confidence, margin]) "
            "or unlabeled pairs with human_label (the Human baseline)"
        },
    )
    batch_size: int = field(default=4, metadata={"help": "pairs per device per micro-batch"})
    policy: str = field(
        default="", metadata={"help": "the SFT model: start point and reference (name, folder, hub id)"}
    )
    loss: Literal[LOSS_NAMES] = field(default="dpo", metadata={"help": "preference loss"})
    weighting: str = field(
        default="none",
        metadata={
            "help": "per-pair weight: none, confidence, top-N, or a "
            "weight function of the margin (see cwpo.weighting)"
        },
    )
    beta: float = field(default=0.1, metadata={"help": "β of DPO/rDPO (KL strength), > 0"})
    epsilon: float = field(default=0.1, metadata={"help": "rDPO label-flip rate ε in [0, 0.5)"})
    tau: float | None = field(default=None, metadata={"help": "IPO τ, > 0 (default: β, as TRL)"})
    precompute_ref: bool = field(
        default=False, metadata={"help": "compute reference log-probs once before training"}
    )

    def __post_init__(self):
        errors = training_errors(self)
        try:
            LossType.parse(self.loss)
        except ConfigError as e:
            errors.append(str(e))
        if not (isinstance(self.beta, int | float) and math.isfinite(self.beta) and self.beta > 0):
            errors.append(f"beta must be a finite number > 0, got {self.beta}")
        if not (isinstance(self.epsilon, int | float) and 0 <= self.epsilon < 0.5):
            errors.append(f"epsilon (rDPO label-flip rate) must be in [0, 0.5), got {self.epsilon}")
        if self.tau is not None and not (math.isfinite(self.tau) and self.tau > 0):
            errors.append(f"tau (IPO) must be a finite number > 0, got {self.tau}")
        try:
            get_weighting(self.weighting)
        except ConfigError as e:
            errors.append(str(e))
        if not self.policy:
            errors.append("policy (the SFT model) is required")
        check(errors, "align config")


def pair_weights(rows: list[dict], weighting: str, path: str = "train") -> list[float]:
    """The weight of every pair under ``weighting`` (from its ``confidence`` or ``margin`` column).

    ``confidence`` reads the ``confidence`` column directly; other functions of the margin read
    ``margin`` (or |Δ| = 2·atanh(c) from ``confidence``). A missing column is a clear error.
    """
    import torch

    w = get_weighting(weighting)
    if not w.needs_margin:
        return [1.0] * len(rows)
    cols = set(rows[0])
    source = (
        "confidence"
        if "confidence" in cols and (w.name == "confidence" or "margin" not in cols)
        else "margin"
    )
    if source not in cols:
        raise DataError(
            f"weighting {weighting!r} needs a 'confidence' or 'margin' column (written by `cwpo annotate`), "
            f"but the file has only {sorted(cols)}",
            path,
        )
    values = []
    for i, row in enumerate(rows, 1):
        v = row.get(source)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise DataError(f"column {source!r} must be a finite number, got {v!r}", path, i)
        if source == "confidence" and not 0 <= v <= 1:
            raise DataError(f"confidence must be in [0, 1], got {v}", path, i)
        values.append(float(v))
    t = torch.tensor(values, dtype=torch.float64)
    if source == "confidence":
        if w.name == "confidence":
            return values
        t = margin_from_confidence(t)
    return w(t).tolist()


def prepare_rows(cfg: AlignConfig) -> tuple[list[dict], dict]:
    """Labeled pairs with a ``weight`` column (filters applied) and a summary of what was done."""
    rows, label_source = read_training_pairs(cfg.train)
    weights = check_weights(pair_weights(rows, cfg.weighting, cfg.train), cfg.train, learning=False)
    w = get_weighting(cfg.weighting)
    if not any(weights):
        raise DataError(
            f"weighting {w.name!r} ({w.formula}) gives every pair weight 0 (every confidence or margin is 0): "
            "nothing would be learned; check the annotation, or use --weighting none",
            cfg.train,
        )
    out = [
        {**with_messages(r), "chosen": r["chosen"], "rejected": r["rejected"], "weight": float(wt)}
        for r, wt in zip(rows, weights, strict=True)
        if not (w.is_filter and wt == 0)
    ]
    info = {
        "label_source": label_source,
        "weighting": w.name,
        "weighting_formula": w.formula,
        "n_pairs_in_file": len(rows),
        "n_pairs_trained": len(out),
        "weight_mean": sum(r["weight"] for r in out) / max(1, len(out)),
    }
    return out, info


def training_rows(rows: list[dict], chat_template: bool) -> list[dict]:
    """The rows handed to the trainer: as they are, or as chat messages (TRL applies the template)."""
    return [conversational_pair(r) if chat_template else without_messages(r) for r in rows]


def align(cfg: AlignConfig, callbacks: list | None = None) -> dict:
    """Run preference optimization as configured; return a summary (also in metrics.json)."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # here, not at the top: TRL, PEFT and datasets take ~10 s to import, and AlignConfig (this
    # module) is read by `cwpo align --help` and by recipe validation
    from datasets import Dataset
    from trl import DPOConfig

    from cwpo.align.trainable_model import lora_config
    from cwpo.align.trainer import WeightedDPOTrainer
    from cwpo.align.training_args import trainer_common_kwargs
    from cwpo.align.training_stage import finish_training, start_training

    rows, info = prepare_rows(cfg)
    run = start_training(cfg, "align", cfg.policy)
    loss_type = LossType.parse(cfg.loss)
    ref_model = None
    if not cfg.lora and not cfg.precompute_ref:
        ref_model, _ = load_causal_lm(cfg.policy, tokenizer=False)
    args = DPOConfig(
        **trainer_common_kwargs(cfg, run.work_dir, run.autocast),
        beta=cfg.beta,
        loss_type=[loss_type.trl_name],
        label_smoothing=cfg.epsilon if loss_type.uses_epsilon else 0.0,
        precompute_ref_log_probs=cfg.precompute_ref,
        disable_dropout=True,
    )
    trainer = WeightedDPOTrainer(
        model=run.model,
        ref_model=ref_model,
        args=args,
        train_dataset=Dataset.from_list(training_rows(rows, cfg.chat_template)),
        processing_class=run.tokenizer,
        peft_config=lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) if cfg.lora else None,
        callbacks=callbacks,
        cw_loss=loss_type,
        cw_tau=cfg.tau,
    )
    head = {**info, "trl_version": run.trl_version}
    return finish_training(trainer, run, cfg, "align", callbacks, head)


def config_with(cfg: AlignConfig, **changes) -> AlignConfig:
    """A copy of ``cfg`` with some fields changed (validated again)."""
    return dataclasses.replace(cfg, **changes)
