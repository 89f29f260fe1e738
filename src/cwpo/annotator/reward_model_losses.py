"""Per-example losses of the weak annotator (the reward model), pure functions, never reduced.

* Bradley-Terry (paper Eq. 5): ``ℓ = −log σ(r(x, y_w) − r(x, y_l)) = softplus(−(r_w − r_l))``.
  With r = β·log(π/π_ref) this is also the DPO loss of the WS-DPO annotator (Tao & Li).
* PairRM (paper App. J.9): one joint score f(x, y1, y2); binary cross-entropy on both orders,
  target 1 for (y_w, y_l) and 0 for (y_l, y_w):
  ``ℓ = −log σ(f(x, y_w, y_l)) − log σ(−f(x, y_l, y_w))``. The pair's margin is
  f(x, y1, y2) − f(x, y2, y1).

Both are computed with ``softplus`` so that large margins neither overflow nor lose precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bt_loss(chosen_scores: torch.Tensor, rejected_scores: torch.Tensor) -> torch.Tensor:
    """−log σ(r_w − r_l) per example. Hand check: Δ = 0 → log 2 = 0.693147; Δ = 1 → 0.313262."""
    return F.softplus(-(chosen_scores - rejected_scores))


def pairrm_loss(forward_logits: torch.Tensor, backward_logits: torch.Tensor) -> torch.Tensor:
    """BCE on both orders per example: softplus(−f(x, y_w, y_l)) + softplus(f(x, y_l, y_w))."""
    return F.softplus(-forward_logits) + F.softplus(backward_logits)
