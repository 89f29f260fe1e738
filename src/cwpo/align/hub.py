"""Pushing a training stage's model to the Hugging Face Hub, through the Trainer's own push.

``push_to_hub`` and ``hub_model_id`` are passed to the Trainer (``hub_strategy="end"``: the final
model only, no checkpoints). The Trainer creates the repository when it is built and uploads when
the final model is saved. A pushed LoRA adapter must name its base as a hub id, or it loads
nowhere but here: :func:`hub_base_model` decides that id before any model is loaded, and
:func:`name_hub_base` writes it into the adapter's config for the push. The local copy keeps its
absolute base reference (:mod:`cwpo.models.adapter_base`).
"""

from __future__ import annotations

from pathlib import Path

from cwpo.errors import ConfigError
from cwpo.models.registry import is_hub_id


def hub_model_id_errors(cfg) -> list[str]:
    """What is wrong with the hub settings of a training config (empty when fine)."""
    if cfg.hub_model_id and not is_hub_id(cfg.hub_model_id) and "/" in cfg.hub_model_id:
        return [f"hub_model_id must be NAME or OWNER/NAME, got {cfg.hub_model_id!r}"]
    if cfg.hub_base_model and not is_hub_id(cfg.hub_base_model):
        return [f"hub_base_model must be a hub id (OWNER/NAME), got {cfg.hub_base_model!r}"]
    if (cfg.hub_model_id or cfg.hub_base_model) and not cfg.push_to_hub:
        return ["hub_model_id and hub_base_model only apply with push_to_hub"]
    return []


def hub_base_model(cfg, model_ref: str) -> str | None:
    """The hub id a pushed adapter names as its base (None when nothing is pushed or no adapter).

    ``hub_base_model`` when given; else ``model_ref`` itself when it is a hub id and no local
    folder of that name exists. A local folder (a packaged model, whose weights are converted
    from a GGUF; an SFT output) cannot be named for another machine: that is refused before any
    work, asking for ``--hub-base-model``.
    """
    if not (cfg.push_to_hub and cfg.lora):
        return None
    if cfg.hub_base_model:
        return cfg.hub_base_model
    if is_hub_id(model_ref) and not Path(model_ref).exists():
        return model_ref
    raise ConfigError(
        f"push_to_hub: the adapter's base {model_ref!r} is a local model, which would not load from the "
        "hub elsewhere; pass --hub-base-model OWNER/NAME (the hub id of exactly those weights)"
    )


def name_hub_base(trainer, hub_base: str | None) -> None:
    """Make the adapter the Trainer pushes name ``hub_base`` as its base model."""
    if hub_base is None:
        return
    for adapter in getattr(trainer.model, "peft_config", {}).values():
        adapter.base_model_name_or_path = hub_base


def trainer_hub_kwargs(cfg) -> dict:
    """The Trainer's hub arguments: the final model only, to ``hub_model_id`` (default: the
    output folder's name under the token's account, as transformers does)."""
    if not cfg.push_to_hub:
        return {"push_to_hub": False}
    return {
        "push_to_hub": True,
        "hub_model_id": cfg.hub_model_id or Path(cfg.output).resolve().name,
        "hub_strategy": "end",
    }
