"""Pure metric functions over score arrays: GRA, preference accuracy, judge win-rate.

Every metric here is a pairwise comparison reduced to per-item outcomes
1 (win), 0.5 (tie) and 0 (loss); the metric is their mean, so ties count half. Alongside it:

* ``std``: the paper's spread (Table 20, App. J.4): the items are split, in their given
  order, into three disjoint contiguous subsets (``np.array_split``), the metric is computed on
  each, and ``std`` is their population standard deviation (``ddof=0``). Pass items in a random
  order (test prompts usually are) for the subsets to be random.
* ``ci_low``/``ci_high``: a percentile bootstrap 95% interval of the mean outcome with
  ``n_boot`` resamples drawn from ``numpy.random.default_rng(seed)`` (seeded: reproducible).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_array(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of numbers, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} has a non-finite value at index {bad}: {arr[bad]}")
    return arr


def outcomes(
    scores: Sequence[float] | np.ndarray, baseline: Sequence[float] | np.ndarray, tol: float = 0.0
) -> np.ndarray:
    """Per-item outcome of ``scores`` against ``baseline``: 1 win, 0.5 tie (|diff| <= tol), 0 loss."""
    a = _as_array(scores, "scores")
    b = _as_array(baseline, "baseline")
    if a.shape != b.shape:
        raise ValueError(f"scores and baseline differ in length: {a.size} vs {b.size}")
    if a.size == 0:
        raise ValueError("no items to compare (empty score arrays)")
    diff = a - b
    out = np.where(diff > tol, 1.0, 0.0)
    out[np.abs(diff) <= tol] = 0.5
    return out


def subset_std(values: np.ndarray, subsets: int = 3) -> tuple[list[float], float | None]:
    """Means of ``subsets`` disjoint contiguous parts and their population std (None if too few items)."""
    if subsets < 2 or values.size < subsets:
        return [], None
    means = [float(part.mean()) for part in np.array_split(values, subsets)]
    return means, float(np.std(means))


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (seeded)."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(values.size, 1))  # bound memory for large test sets
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarize_outcomes(
    out: np.ndarray, *, name: str, subsets: int = 3, n_boot: int = 1000, seed: int = 0
) -> dict:
    """The common summary of per-item outcomes (1/0.5/0) under the metric ``name``."""
    wins, ties = int(np.sum(out == 1.0)), int(np.sum(out == 0.5))
    means, std = subset_std(out, subsets)
    low, high = bootstrap_ci(out, n_boot=n_boot, seed=seed)
    return {
        name: float(out.mean()),
        "n": int(out.size),
        "wins": wins,
        "ties": ties,
        "losses": int(out.size) - wins - ties,
        "tie_rate": ties / out.size,
        "subset_values": means,
        "std": std,
        "ci_low": low,
        "ci_high": high,
        "n_boot": n_boot,
        "seed": seed,
    }


def gra(
    policy_scores: Sequence[float] | np.ndarray,
    reference_scores: Sequence[float] | np.ndarray,
    *,
    tol: float = 0.0,
    subsets: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Gold Reward Accuracy: share of prompts where gold(policy response) > gold(reference response).

    Ties (|difference| <= ``tol``; exact equality by default) count half and are reported in
    ``ties``. Also the mean gold score of each side and the summary fields of this module.
    """
    out = outcomes(policy_scores, reference_scores, tol)
    summary = summarize_outcomes(out, name="gra", subsets=subsets, n_boot=n_boot, seed=seed)
    summary["mean_policy"] = float(np.mean(policy_scores))
    summary["mean_reference"] = float(np.mean(reference_scores))
    return summary


def preference_accuracy(
    chosen_rewards: Sequence[float] | np.ndarray,
    rejected_rewards: Sequence[float] | np.ndarray,
    *,
    tol: float = 0.0,
    subsets: int = 3,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Share of human-labeled pairs whose human-preferred response gets the higher reward.

    Ties count half (a model that cannot tell the two responses apart, e.g. a policy equal to
    its reference, whose implicit rewards are all 0, scores exactly 0.5). ``wins`` are the
    correctly ranked pairs, ``losses`` the wrongly ranked ones. Also the mean reward margin.
    """
    out = outcomes(chosen_rewards, rejected_rewards, tol)
    summary = summarize_outcomes(out, name="accuracy", subsets=subsets, n_boot=n_boot, seed=seed)
    summary["mean_margin"] = float(np.mean(np.asarray(chosen_rewards) - np.asarray(rejected_rewards)))
    return summary


def win_rate(winners: Sequence[str | None], *, subsets: int = 3, n_boot: int = 1000, seed: int = 0) -> dict:
    """Judge win-rate of the policy from per-item winners ``"policy"``, ``"baseline"``, ``"tie"`` or None.

    ``None`` (the judge's answer could not be parsed) is excluded from the rate and counted in
    ``unparsed``; ties (if a judge ever declares one) count half.
    """
    valid = {"policy": 1.0, "baseline": 0.0, "tie": 0.5}
    bad = sorted({w for w in winners if w is not None and w not in valid})
    if bad:
        raise ValueError(f"unknown winner value(s) {bad}; expected one of {sorted(valid)} or None")
    scored = np.array([valid[w] for w in winners if w is not None], dtype=np.float64)
    unparsed = sum(w is None for w in winners)
    if scored.size == 0:
        return {"win_rate": None, "n": 0, "unparsed": unparsed}
    summary = summarize_outcomes(scored, name="win_rate", subsets=subsets, n_boot=n_boot, seed=seed)
    summary["unparsed"] = unparsed
    return summary
