"""Per-pair weights of the alignment loss, as functions of the weak annotator's margin.

The paper's confidence (Eq. in Step 2 of CW-PO): c = 2·σ(|Δ|) − 1 = tanh(|Δ|/2) ∈ [0, 1),
where Δ = r(x, y_w) − r(x, y_l) is the weak annotator's score margin. This is the one place
the formula is defined.
"""

from __future__ import annotations

import math

import torch


def confidence(margin: torch.Tensor | float) -> torch.Tensor | float:
    """c = 2σ(|Δ|) − 1, computed as tanh(|Δ|/2) (identical, and exact for large |Δ|)."""
    if isinstance(margin, torch.Tensor):
        return torch.tanh(margin.abs() / 2)
    return math.tanh(abs(float(margin)) / 2)
