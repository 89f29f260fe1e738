"""Loading the weak annotator's backbone for training: a causal LM (dpo objective) or an encoder
or causal LM under a new scalar head (bt, pairrm), with the attention-dropout override."""

from __future__ import annotations

import logging

import torch

from cwpo.annotator.config import TrainAnnotatorConfig
from cwpo.models.loading import load_causal_lm, load_tokenizer
from cwpo.models.registry import LOAD_ERRORS, load_error_hint, resolve_model

log = logging.getLogger("cwpo.annotator.train")
FILE_ONLY = {"file_only": True}  # the run's log, not the terminal (cwpo.console)
ATTENTION_DROPOUT_NAMES = ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop")


def _attention_dropout_override(path: str, p: float | None) -> dict:
    """The config keyword that sets the backbone's attention dropout to ``p`` (none for ``None``).

    A config without a known field keeps its own (said in the log): the default must not fail on
    a backbone that names it differently.
    """
    if p is None:
        return {}
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError):  # e.g. a LoRA adapter folder: its base keeps its own
        log.info("attention_dropout=%s not applied: no model config at %s", p, path, extra=FILE_ONLY)
        return {}
    name = next((n for n in ATTENTION_DROPOUT_NAMES if hasattr(config, n)), None)
    if name is None:
        log.info(
            "attention_dropout=%s not applied: the %s config has none of %s",
            p,
            config.model_type,
            ", ".join(ATTENTION_DROPOUT_NAMES),
            extra=FILE_ONLY,
        )
        return {}
    return {name: p}


def _load_backbone(cfg: TrainAnnotatorConfig):
    """(model, reference-or-None, tokenizer) for the objective; the scalar head is new for bt/pairrm."""
    from transformers import AutoModelForSequenceClassification

    if cfg.objective == "dpo":
        path = resolve_model(cfg.backbone)
        return load_causal_lm(cfg.backbone, **_attention_dropout_override(path, cfg.attention_dropout))
    tok = load_tokenizer(cfg.backbone)
    try:
        path = resolve_model(cfg.backbone)
        overrides = _attention_dropout_override(path, cfg.attention_dropout)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=torch.float32, **overrides
        )
    except LOAD_ERRORS as e:
        raise load_error_hint(cfg.backbone, e) from e
    model.config.pad_token_id = tok.pad_token_id
    return model, tok
