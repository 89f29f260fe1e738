"""cwpo: Confidence-Weighted Preference Optimization (Afzali, Jeon, Brbić, ICLR 2026).

Pipeline: data -> weak annotator -> annotate with confidence -> SFT -> confidence-weighted
alignment -> evaluation -> report. Every stage is a library function with a thin CLI on top.

The weighted trainer is a library of its own, for a TRL script whose preference data has a
``weight`` column::

    from cwpo import WeightedDPOConfig, WeightedDPOTrainer

:class:`WeightedDPOTrainer` is TRL's ``DPOTrainer`` with the loss E[w·ℓ] (DPO, IPO or robust
DPO); the per-example losses (:func:`dpo_loss`, :func:`ipo_loss`, :func:`rdpo_loss`,
:func:`preference_loss`), their reduction :func:`weighted_mean` and the CW-PO weight
:func:`confidence` are pure tensor functions. They load on first use, so ``import cwpo`` stays
light (the CLI does not pay for TRL).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_PUBLIC = {
    "WeightedDPOTrainer": "cwpo.align.trainer",
    "WeightedDPOConfig": "cwpo.align.trainer",
    "WeightedPreferenceCollator": "cwpo.align.trainer",
    "LossType": "cwpo.losses",
    "dpo_loss": "cwpo.losses",
    "ipo_loss": "cwpo.losses",
    "rdpo_loss": "cwpo.losses",
    "preference_loss": "cwpo.losses",
    "weighted_mean": "cwpo.losses",
    "confidence": "cwpo.weighting",
}
__all__ = [
    "__version__",
    "WeightedDPOTrainer",
    "WeightedDPOConfig",
    "WeightedPreferenceCollator",
    "LossType",
    "dpo_loss",
    "ipo_loss",
    "rdpo_loss",
    "preference_loss",
    "weighted_mean",
    "confidence",
]

if TYPE_CHECKING:
    from cwpo.align.trainer import WeightedDPOConfig, WeightedDPOTrainer, WeightedPreferenceCollator
    from cwpo.losses import LossType, dpo_loss, ipo_loss, preference_loss, rdpo_loss, weighted_mean
    from cwpo.weighting import confidence


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'cwpo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
