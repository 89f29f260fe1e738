"""Statistical power of a comparison: what difference can a bench of this size detect at all?

A comparison of two methods A and B is *paired*: both are evaluated on the same test prompts,
from the same SFT model and reference samples, for each seed. Per prompt ``p`` and seed ``s`` the
outcome ``y`` is a GRA outcome (1 win, 0.5 tie, 0 loss against the SFT model) or any per-prompt
number (a gold-reward difference), and ``d[s, p] = y_A[s, p] - y_B[s, p]``.

The estimate is the grand mean ``d̄`` (each seed weighs the same). Its standard error has two
sources: the prompts (sampling of responses and prompts, shrinking with the number of prompts)
and the seeds (training randomness, shrinking only with the number of seeds):

    se² = max( Var_s(d̄_s) / S ,  mean_s Var_p(d[s, ·]) / (S · N) )

The first term estimates both sources together but from only S seed means; the second is the
prompt term alone, well estimated; the larger is used so that a lucky small spread of a few seed
means cannot make a bench look more powerful than its prompts allow. With one seed only the
prompt term exists (and training randomness is not covered: say so).

The minimum detectable effect is ``MDE = 1.96 · se``: the smallest true difference that the bench
declares at 95% (two-sided), the number this project sizes benches by. (A strict power-80% MDE
would be 2.8 · se; the issue that introduced this module fixed the 1.96 definition.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054


def _matrix(values: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"expected a (seeds, prompts) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("non-finite outcome in a paired comparison")
    return arr


def paired_se(diffs: Sequence[Sequence[float]] | np.ndarray) -> dict:
    """Mean paired difference and its standard error from a (seeds, prompts) array (see module)."""
    d = _matrix(diffs)
    n_seeds, n_prompts = d.shape
    seed_means = d.mean(axis=1)
    within = float(d.var(axis=1, ddof=1).mean()) if n_prompts > 1 else 0.0
    prompt_term = within / (n_seeds * n_prompts)
    seed_term = float(seed_means.var(ddof=1)) / n_seeds if n_seeds > 1 else 0.0
    se = math.sqrt(max(prompt_term, seed_term))
    return {
        "mean": float(seed_means.mean()),
        "se": se,
        "se_prompts": math.sqrt(prompt_term),
        "se_seeds": math.sqrt(seed_term) if n_seeds > 1 else None,
        "n_seeds": n_seeds,
        "n_prompts": n_prompts,
    }


def mde(diffs: Sequence[Sequence[float]] | np.ndarray, z: float = Z95) -> float:
    """Minimum detectable effect (1.96 · se) of a paired (seeds, prompts) difference array."""
    return z * paired_se(diffs)["se"]


def planned_mde(
    sd_prompt: float, n_prompts: int, n_seeds: int, sd_seed: float = 0.0, z: float = Z95
) -> float:
    """MDE of a bench not yet run: per-prompt sd of the difference, prompts, seeds, seed-level sd.

    ``sd_seed`` is the spread of a seed's mean difference caused by training randomness alone.
    Used to size a bench from a pilot: e.g. GRA outcomes of two methods near 0.7, independent given
    the prompt, have a per-prompt sd of the difference ≈ sqrt(2 · 0.21) ≈ 0.65.
    """
    if n_prompts < 1 or n_seeds < 1:
        raise ValueError("n_prompts and n_seeds must be >= 1")
    return z * math.sqrt(sd_prompt**2 / (n_prompts * n_seeds) + sd_seed**2 / n_seeds)


def bootstrap_ci(
    diffs: Sequence[Sequence[float]] | np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Two-stage bootstrap interval of the mean paired difference: seeds, then prompts, resampled.

    Resampling prompts keeps pairs together (a prompt is drawn for both methods), so the interval
    is of the paired difference. With one seed only prompts are resampled.
    """
    d = _matrix(diffs)
    n_seeds, n_prompts = d.shape
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        seeds = rng.integers(0, n_seeds, n_seeds) if n_seeds > 1 else np.zeros(1, dtype=int)
        prompts = rng.integers(0, n_prompts, (len(seeds), n_prompts))
        stats[b] = d[seeds[:, None], prompts].mean()
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def ci95(
    values: Sequence[Sequence[float]] | np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    se: dict | None = None,
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """95% interval of the grand mean of a (seeds, prompts) array: the two-stage bootstrap
    interval, widened where needed to at least ``mean ± 1.96 · se`` (:func:`paired_se`).

    With a few seeds the seed stage of the bootstrap under-covers (two seeds give only three
    distinct seed sets), so on its own it can declare a difference smaller than the MDE; the
    widening keeps every verdict consistent with the MDE the report prints beside it. ``se``: the
    :func:`paired_se` of ``values`` when the caller has it already. ``bounds``: the range the mean
    can take (``(0, 1)`` for a rate, ``(-1, 1)`` for a difference of rates); the widened interval
    is cut to it, so a rate's CI never reaches past 100%.
    """
    low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed)
    est = se or paired_se(values)
    half = Z95 * est["se"]
    low, high = min(low, est["mean"] - half), max(high, est["mean"] + half)
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return low, high


def verdict(mean: float, ci: tuple[float, float], direction: int = 1) -> str:
    """``holds`` when the CI excludes 0 in the claimed direction, ``fails`` when it excludes 0 the
    other way, ``unresolved`` otherwise (then the MDE says what the bench could have seen)."""
    low, high = ci
    if direction < 0:
        low, high = -high, -low
    if low > 0:
        return "holds"
    if high < 0:
        return "fails"
    return "unresolved"


def compare(
    a: Sequence[Sequence[float]] | np.ndarray,
    b: Sequence[Sequence[float]] | np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    bounds: tuple[float, float] | None = None,
) -> dict:
    """Paired comparison of per-prompt outcomes ``a`` and ``b`` (same seeds × prompts layout):
    mean difference, se, MDE, 95% CI (:func:`ci95`, cut to ``bounds``) and the verdict on the
    claim a > b."""
    a_arr, b_arr = _matrix(a), _matrix(b)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired outcomes need the same layout, got {a_arr.shape} and {b_arr.shape}")
    d = a_arr - b_arr
    out = paired_se(d)
    out["mde"] = Z95 * out["se"]
    out["ci_low"], out["ci_high"] = ci95(d, n_boot=n_boot, seed=seed, se=out, bounds=bounds)
    out["verdict"] = verdict(out["mean"], (out["ci_low"], out["ci_high"]))
    return out
