"""Model names: short offline names, local paths and hub ids all resolve through here."""

from cwpo.models.registry import OFFLINE_MODELS, cache_dir, resolve_model

__all__ = ["OFFLINE_MODELS", "cache_dir", "resolve_model"]
