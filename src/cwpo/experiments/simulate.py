"""Simulated human annotators for the controlled-sentiment track.

A simulated annotator prefers response a over b with Bradley-Terry noise on the gold reward:
``P(a ≻ b) = σ((g_a − g_b) / T)``. ``T = 0`` is a noise-free annotator (always the higher gold;
an exact tie is a fair coin). Larger ``T`` is noisier; :func:`gold_agreement` reports the share
of pairs where the simulated label matches the gold ordering, the number comparable to the
63-70% inter-annotator agreement of HH-RLHF crowd workers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def bt_preference_prob(gold_a: float, gold_b: float, temperature: float) -> float:
    """σ((g_a − g_b)/T); a step function at T = 0 (0.5 on an exact tie)."""
    diff = gold_a - gold_b
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return 1.0 if diff > 0 else 0.0 if diff < 0 else 0.5
    z = diff / temperature
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def simulate_labels(
    gold_a: Sequence[float], gold_b: Sequence[float], temperature: float, seed: int, flip: float = 0.0
) -> list[str]:
    """One simulated human label ("a" or "b") per pair, seeded.

    Bradley-Terry noise with ``temperature``; then, independently, each label is flipped with
    probability ``flip`` (uniform label noise, the other crowd model: a careless annotator errs as
    often on a clear pair as on a close one). ``flip = 0`` draws the same labels as before it existed.
    """
    if not 0 <= flip < 1:
        raise ValueError(f"flip must be in [0, 1), got {flip}")
    rng = random.Random(seed)
    labels = [
        "a" if rng.random() < bt_preference_prob(a, b, temperature) else "b"
        for a, b in zip(gold_a, gold_b, strict=True)
    ]
    if flip:
        flips = random.Random(seed + 15_485_863)
        labels = [("b" if lab == "a" else "a") if flips.random() < flip else lab for lab in labels]
    return labels


def gold_agreement(labels: Sequence[str], gold_a: Sequence[float], gold_b: Sequence[float]) -> float:
    """Share of pairs with different gold where the label picks the higher-gold response."""
    decided = [(lab, a, b) for lab, a, b in zip(labels, gold_a, gold_b, strict=True) if a != b]
    if not decided:
        return float("nan")
    return sum((lab == "a") == (a > b) for lab, a, b in decided) / len(decided)
