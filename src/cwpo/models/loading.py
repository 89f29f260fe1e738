"""Load models and tokenizers from any reference the registry resolves.

A folder holding a PEFT adapter (``adapter_config.json``) is loaded on top of its base model and
merged, recursively, so an aligned adapter whose base is an SFT adapter folder loads in one call.
The base is the one the adapter was trained on, checked by :func:`cwpo.models.adapter_base.adapter_base`
(never a same-named folder elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import torch

from cwpo.models.adapter_base import adapter_base
from cwpo.models.registry import LOAD_ERRORS, load_error_hint, resolve_model


def load_tokenizer(ref: str, padding_side: str = "right"):
    """The tokenizer of ``ref`` (or of its base model for an adapter folder without one)."""
    from transformers import AutoTokenizer

    path = resolve_model(ref)
    adapter_cfg = Path(path) / "adapter_config.json"
    has_tok = any((Path(path) / f).exists() for f in ("tokenizer.json", "tokenizer_config.json"))
    if adapter_cfg.exists() and not has_tok:
        return load_tokenizer(adapter_base(path), padding_side)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001
        raise load_error_hint(str(ref), e) from e
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    tok.padding_side = padding_side
    return tok


def load_causal_lm(ref: str, dtype: torch.dtype | None = None, tokenizer: bool = True, **config_overrides):
    """Return ``(model, tokenizer)`` for a short name, local folder, adapter folder or hub id.

    The model is in eval mode; ``dtype`` defaults to float32; ``config_overrides`` set fields of the
    model's config (e.g. ``attention_dropout=0.0``).
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model(ref)
    dtype = dtype or torch.float32
    adapter_cfg = Path(path) / "adapter_config.json"
    try:
        if adapter_cfg.exists():
            from peft import PeftModel

            base_ref = adapter_base(path)
            base, _ = load_causal_lm(base_ref, dtype=dtype, tokenizer=False, **config_overrides)
            model = PeftModel.from_pretrained(base, path).merge_and_unload()
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **config_overrides)
    except LOAD_ERRORS as e:
        raise load_error_hint(str(ref), e) from e
    model.eval()
    tok = load_tokenizer(ref) if tokenizer else None
    if tok is not None and model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id
    return model, tok
