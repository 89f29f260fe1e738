"""Reward–KL frontiers and what the weights do: matched-KL interpolation, weight controls, BT crowds.

* A frontier is, per (method, seed), the checkpoints of one training run, each with its KL(π‖π_SFT)
  (the seed-level mean, the x axis) and per-prompt values (gold reward or GRA outcome).
  :func:`matched_matrix` interpolates the per-prompt values linearly in KL at given levels, so two
  methods are compared where both reach the same KL (:func:`common_levels`), never at a KL only one
  of them reaches (no extrapolation).
* Weight controls (what the confidence c does, beyond its values): :func:`shuffled_weights` (c
  permuted across pairs: the same distribution, no link to the pair), :func:`oracle_weights`
  (c's own values re-assigned in the order of the gold gap: the best ordering c could have),
  :func:`effective_sample_size` and :func:`ess_subset` (weight 1 on a random subset of the size
  (Σw)²/Σw²: as many effective pairs as CW, no weighting).
* A Bradley-Terry crowd: :func:`bt_agreement` (the expected share of decided pairs a BT annotator
  with temperature T labels as the gold does) and :func:`bt_temperature_for` (the T giving a target
  agreement: the flip probability of a pair then falls with its gold gap, unlike uniform flips).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np


def _curve(kl: Sequence[float], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points sorted by KL; points of equal KL averaged (np.interp needs increasing x)."""
    kl = np.asarray(kl, dtype=float)
    values = np.asarray(values, dtype=float)
    if values.shape[0] != kl.shape[0]:
        raise ValueError(f"{kl.shape[0]} KL values but {values.shape[0]} rows of values")
    if kl.size == 0 or not np.isfinite(kl).all():
        raise ValueError("a frontier needs at least one point with a finite KL")
    xs = np.unique(kl)
    ys = np.stack([values[kl == x].mean(axis=0) for x in xs])
    return xs, ys


def interpolate(kl: Sequence[float], values, levels: Sequence[float]) -> np.ndarray:
    """Values at each KL level by linear interpolation between a run's checkpoints.

    ``values``: [checkpoints] or [checkpoints, prompts]. Returns [levels] or [levels, prompts];
    NaN at a level outside the run's KL range (a run is never extrapolated).
    """
    xs, ys = _curve(kl, np.asarray(values, dtype=float))
    levels = np.asarray(levels, dtype=float)
    flat = ys.reshape(len(xs), -1)
    out = np.stack([np.interp(levels, xs, flat[:, j]) for j in range(flat.shape[1])], axis=-1)
    out[(levels < xs[0]) | (levels > xs[-1])] = np.nan
    return out.reshape((len(levels),) + ys.shape[1:])


def common_levels(kl_runs: Sequence[Sequence[float]], n: int = 5) -> list[float]:
    """``n`` evenly spaced KL levels inside the range every run reaches (empty if there is none).

    ``kl_runs``: the checkpoint KLs of each run (every seed of both methods compared).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    lo = max(min(k) for k in kl_runs)
    hi = min(max(k) for k in kl_runs)
    if not hi > lo:
        return [] if hi < lo else [float(lo)]
    return [float(x) for x in np.linspace(lo, hi, n)]


def matched_matrix(runs: Sequence[tuple[Sequence[float], np.ndarray]], levels: Sequence[float]) -> np.ndarray:
    """[levels, seeds, prompts]: each seed's per-prompt values interpolated at the KL levels.

    ``runs``: per seed (in a fixed seed order) its checkpoint KLs and [checkpoints, prompts] values.
    """
    return np.stack([interpolate(kl, values, levels) for kl, values in runs], axis=1)


def dominance(estimates: Sequence[dict]) -> dict:
    """One summary of a comparison over KL levels: at how many the difference is significantly
    positive, negative or neither, and whether one side wins at every level.

    ``estimates``: per level a dict with ``lo`` and ``hi`` (a CI of a − b).
    """
    pos = sum(e["lo"] > 0 for e in estimates)
    neg = sum(e["hi"] < 0 for e in estimates)
    n = len(estimates)
    if n and pos == n:
        verdict = "a dominates"
    elif n and neg == n:
        verdict = "b dominates"
    elif pos and not neg:
        verdict = "a better at some levels, never worse"
    elif neg and not pos:
        verdict = "b better at some levels, never worse"
    elif pos and neg:
        verdict = "curves cross"
    else:
        verdict = "no level resolved"
    return {"levels": n, "a_better": pos, "b_better": neg, "unresolved": n - pos - neg, "summary": verdict}


# ---- weight controls -------------------------------------------------------------------------


def shuffled_weights(weights: Sequence[float], seed: int) -> list[float]:
    """The same weights permuted across pairs (seeded): c's distribution without its link to a pair."""
    out = [float(w) for w in weights]
    random.Random(seed).shuffle(out)
    return out


def oracle_weights(gold_gaps: Sequence[float], weights: Sequence[float]) -> list[float]:
    """``weights``' own values re-assigned so that the pair with the largest |gold gap| gets the
    largest weight (ties in the gap keep the input order): the same distribution as c, ordered by
    how clear each pair really is."""
    if len(gold_gaps) != len(weights):
        raise ValueError(f"{len(gold_gaps)} gold gaps but {len(weights)} weights")
    order = sorted(range(len(gold_gaps)), key=lambda i: abs(gold_gaps[i]))
    out = [0.0] * len(order)
    for i, w in zip(order, sorted(float(w) for w in weights), strict=True):
        out[i] = w
    return out


def effective_sample_size(weights: Sequence[float]) -> float:
    """(Σw)²/Σw²: the number of equally weighted pairs with the same variance of a weighted mean."""
    s, s2 = sum(weights), sum(w * w for w in weights)
    if s2 <= 0:
        raise ValueError("effective sample size of all-zero weights")
    return s * s / s2


def ess_subset(n: int, ess: float, seed: int) -> list[int]:
    """Indices of a random subset (seeded, sorted) of ``round(ess)`` of ``n`` pairs."""
    k = round(ess)
    if not 1 <= k <= n:
        raise ValueError(f"an effective sample size of {ess} does not fit {n} pairs")
    return sorted(random.Random(seed).sample(range(n), k))


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tied = x == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def correlation(x: Sequence[float], y: Sequence[float], rank: bool = False) -> float:
    """Pearson correlation (Spearman with ``rank``: of average ranks); NaN when one side is constant."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if rank:
        a, b = _ranks(a), _ranks(b)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


# ---- Bradley-Terry crowd ---------------------------------------------------------------------


def bt_agreement(gold_gaps: Sequence[float], temperature: float) -> float:
    """Expected share of decided pairs (gap ≠ 0) a BT annotator labels as the gold: mean σ(|gap|/T)."""
    gaps = [abs(g) for g in gold_gaps if g != 0]
    if not gaps:
        raise ValueError("no decided pairs (every gold gap is 0)")
    if temperature <= 0:
        return 1.0
    return sum(1 / (1 + math.exp(-g / temperature)) for g in gaps) / len(gaps)


def bt_temperature_for(gold_gaps: Sequence[float], agreement: float, tol: float = 1e-6) -> float:
    """The BT temperature whose expected agreement with the gold is ``agreement`` (bisection:
    agreement falls from 1 at T → 0 to 0.5 as T → ∞)."""
    if not 0.5 < agreement < 1:
        raise ValueError(f"agreement must be in (0.5, 1), got {agreement}")
    lo, hi = 1e-9, 1.0
    while bt_agreement(gold_gaps, hi) > agreement:
        hi *= 2
        if hi > 1e12:
            raise ValueError("no temperature reaches that agreement")
    while hi - lo > tol * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if bt_agreement(gold_gaps, mid) > agreement else (lo, mid)
    return (lo + hi) / 2
