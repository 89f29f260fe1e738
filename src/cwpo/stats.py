"""The one statistics module: intervals, p-values, MDEs and the verdict rule of every report.

Every comparison in cwpo's reports is *paired*: two methods trained on the same seeds (same data
order, same SFT model and reference samples) and evaluated on the same test prompts. An outcome is
either one number per seed (an annotator's accuracy, a seed's GRA) or one number per seed and
prompt (a GRA outcome, a gold-reward difference), and the paired difference ``d`` has the same
layout.

**Intervals.** Two estimators, each named in every result (``Estimate.method``):

- *t over seeds*: the mean of the per-seed values with a Student t interval on ``S - 1`` degrees of
  freedom. Right when the seed is the unit of replication (training randomness dominates).
- *crossed bootstrap over seeds x prompts*: for a ``[seeds, prompts]`` matrix whose prompts are the
  same for every seed (a crossed design), each replicate draws seeds with replacement and, once,
  prompts with replacement, and takes the mean of the selected block. Its standard error is the
  larger of the replicates' sd and the t standard error of the seed means (with three to five seeds
  the bootstrap's seed stage alone under-covers), and the interval is ``mean ± t(S-1) · se``,
  never narrower than the bootstrap percentile interval. With one seed only prompts are resampled,
  the normal quantile is used and training randomness is not covered (``df`` is None).
- *seeds x prompts variance components* (:func:`crossed_components`), for the same crossed
  matrix: the two-way random-effects mean squares of seeds, prompts and their residual give the
  variance of the grand mean, ``s2_seed / S + s2_prompt / P + s2_resid / (S P)`` (a negative
  prompt component set to 0; the seed term always kept, so with no prompt component this is the
  t interval of the seed means), and the interval is a t interval on Satterthwaite's degrees of
  freedom. For a paired difference the prompt component is near 0 and the degrees of freedom
  near ``S - 1``: the honest price of few seeds. The frontier bench uses it (see below why).

**p-value** of "the mean is 0": two-sided, from ``mean / se`` on the same t (or normal)
distribution as the interval, so a 95% interval excludes 0 exactly when ``p < 0.05`` (except
rarely for the crossed bootstrap, whose interval is widened to its percentile bounds).

**MDE** (minimum detectable effect) at 80% power: ``(t(1 - alpha/2, df) + t(power, df)) · se``, the
true difference that a two-sided test at ``alpha`` detects four times in five. (The CI half-width,
``1.96 · se``, is the effect detected only half the time; it is not called an MDE here.)

**Verdict** (:func:`judge`), the only rule in the project: the claims tested together form a
family; their p-values are Holm-adjusted; a claim *holds* when its adjusted p is below ``alpha``
and the difference points the way the paper says, *fails* when it is significant the other way,
and is *unresolved* otherwise (the MDE then says what the bench could have seen). Each judged
claim also carries ``mde_family``, the MDE at ``alpha / k`` for a family of ``k`` claims: Holm's
first step, so what the family's strongest claim must clear (with t on 2 degrees of freedom and
3 claims, about twice the plain MDE).

**How conservative the crossed bootstrap is.** Resampling seeds and resampling prompts both count
the per-sample noise of a seed x prompt cell, so the bootstrap's sd is above the estimate's true sd
when that noise dominates (a GRA outcome is 0, 1/2 or 1 per prompt), and the t quantile on
``S - 1`` degrees of freedom is then applied to a standard error that is mostly prompt-level noise.
Simulated on the frontier bench's layout (``python -m benchmarks.quality.bootstrap_calibration``:
paired 0/1 outcomes, 3 or 5 seeds x 300 prompts, seed sd 0 to 0.06, 300 data sets per setting),
the bootstrap's standard error was 1.02-1.52 times the true sd, at most 0.7% of null claims had
p < 0.05 (nominal 5%) and a true difference of 1.9 true sds was never significant with 3 seeds.
The variance components (with the seed term always kept) gave 0.93-0.98 times, 2.0-6.3% of null
claims significant, 94-98% coverage, a median of ``S - 1`` degrees of freedom, and found that
difference 19% of the time: what 3 seeds can see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _sp

ALPHA = 0.05
POWER = 0.8
LEVEL = 0.95
T_METHOD = "t over seeds"
BOOT_METHOD = "crossed bootstrap over seeds x prompts"
COMPONENTS_METHOD = "seeds x prompts variance components, t on Satterthwaite df"
STATS_META = {
    "interval": f"{T_METHOD} (per-seed values), or for per-prompt values {BOOT_METHOD} or "
    f"{COMPONENTS_METHOD} (each result names its own), 95%",
    "p_value": "two-sided, on the interval's t (df = seeds - 1, or Satterthwaite's) or normal distribution",
    "mde_power": POWER,
    "mde": "(t(1 - alpha/2, df) + t(power, df)) * se",
    "mde_family": "the same at alpha / family size: what a claim must clear at Holm's strictest step",
    "alpha": ALPHA,
    "multiplicity": "holm",
    "verdict": "holds: Holm-adjusted p < alpha in the claimed direction; fails: the other direction; "
    "else unresolved",
}


@dataclass(frozen=True)
class Estimate:
    """A mean (or mean paired difference) with its uncertainty; see the module docstring."""

    mean: float
    lo: float
    hi: float
    se: float
    df: float | None
    p: float
    mde: float
    n_seeds: int
    n_prompts: int | None
    method: str
    level: float = LEVEL

    def to_dict(self) -> dict:
        return asdict(self)


def _quantile(q: float, df: float | None) -> float:
    return float(_sp.norm.ppf(q) if df is None else _sp.t.ppf(q, df))


def _p_value(mean: float, se: float, df: float | None) -> float:
    if se == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    z = abs(mean) / se
    return float(2 * (_sp.norm.sf(z) if df is None else _sp.t.sf(z, df)))


def mde(se: float, df: float | None, alpha: float = ALPHA, power: float = POWER) -> float:
    """The true difference detected with probability ``power`` by a two-sided test at ``alpha``."""
    return (_quantile(1 - alpha / 2, df) + _quantile(power, df)) * se


def planned_mde(
    sd_prompt: float,
    n_prompts: int,
    n_seeds: int,
    sd_seed: float = 0.0,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float:
    """MDE of a bench not yet run, from a pilot's spreads.

    ``sd_prompt``: per-prompt sd of the paired difference within a seed; ``sd_seed``: sd of a
    seed's mean difference caused by training randomness alone. With ``n_seeds`` seeds the t
    quantiles have ``n_seeds - 1`` degrees of freedom (normal for one seed).
    """
    if n_prompts < 1 or n_seeds < 1:
        raise ValueError("n_prompts and n_seeds must be >= 1")
    se = math.sqrt(sd_prompt**2 / (n_prompts * n_seeds) + sd_seed**2 / n_seeds)
    return mde(se, n_seeds - 1 if n_seeds > 1 else None, alpha, power)


def _finite(values, ndim: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim not in ndim or arr.size == 0:
        raise ValueError(
            f"expected a non-empty array of {' or '.join(map(str, ndim))} dimensions, got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("non-finite value in a statistics input")
    return arr


def _estimate(mean, se, df, lo, hi, n_seeds, n_prompts, method, level, alpha) -> Estimate:
    return Estimate(
        mean=float(mean),
        lo=float(lo),
        hi=float(hi),
        se=float(se),
        df=df,
        p=_p_value(float(mean), float(se), df),
        mde=mde(float(se), df, alpha=alpha),
        n_seeds=n_seeds,
        n_prompts=n_prompts,
        method=method,
        level=level,
    )


def t_estimate(values: Sequence[float], level: float = LEVEL, alpha: float = ALPHA) -> Estimate:
    """Student t estimate of the mean of per-seed values (at least two seeds)."""
    v = _finite(values, (1,))
    if len(v) < 2:
        raise ValueError("a t interval needs at least two seeds")
    df = len(v) - 1
    mean, se = float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v)))
    half = _quantile(0.5 + level / 2, df) * se
    return _estimate(mean, se, df, mean - half, mean + half, len(v), None, T_METHOD, level, alpha)


def crossed_bootstrap(
    matrix, level: float = LEVEL, n_boot: int = 4000, seed: int = 0, alpha: float = ALPHA
) -> Estimate:
    """Estimate of the grand mean of a ``[seeds, prompts]`` matrix whose prompts are shared by the
    seeds (see the module docstring). A 1-D input is one seed's per-prompt values."""
    m = _finite(matrix, (1, 2))
    if m.ndim == 1:
        m = m[None, :]
    return crossed_bootstrap_of(
        lambda s, p: m[np.ix_(s, p)].mean(),
        m.mean(axis=1),
        m.shape[1],
        level=level,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
    )


def crossed_replicates(
    statistic, n_seeds: int, n_prompts: int, n_boot: int = 4000, seed: int = 0
) -> np.ndarray:
    """``statistic(seeds, prompts)`` on ``n_boot`` crossed resamples (seeds, then prompts, with
    replacement; one seed: prompts only). The same ``seed`` draws the same resamples, so two
    statistics of one layout can be compared replicate by replicate."""
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        s = rng.integers(0, n_seeds, n_seeds) if n_seeds > 1 else np.zeros(1, dtype=int)
        p = rng.integers(0, n_prompts, n_prompts)
        reps[b] = statistic(s, p)
    if not np.isfinite(reps).all():
        raise ValueError("the statistic was not finite on a bootstrap replicate")
    return reps


def crossed_components(
    matrix, extra_var: float = 0.0, level: float = LEVEL, alpha: float = ALPHA
) -> Estimate:
    """Estimate of the grand mean of a ``[seeds, prompts]`` matrix (prompts shared by the seeds)
    from the variance components of the two-way layout (see the module docstring): seed, prompt and
    residual mean squares (a negative prompt component set to 0, the seed term always kept), the
    variance of the mean ``s2_seed / S + s2_prompt / P + s2_resid / (S P)``, and a t interval on
    Satterthwaite's degrees of freedom. ``extra_var``: a further variance added to the mean's (e.g.
    of an estimated x axis), treated as known. One seed: prompts only, normal quantile (``df``
    None)."""
    m = _finite(matrix, (1, 2))
    if m.ndim == 1:
        m = m[None, :]
    n_s, n_p = m.shape
    if n_p < 2:
        raise ValueError("the components need at least two prompts")
    grand = float(m.mean())
    if n_s == 1:
        var, df = float(m.var(ddof=1)) / n_p + extra_var, None
    else:
        seed_means, prompt_means = m.mean(axis=1), m.mean(axis=0)
        ms = {
            "seed": (n_p * float(((seed_means - grand) ** 2).sum()) / (n_s - 1), n_s - 1),
            "prompt": (n_s * float(((prompt_means - grand) ** 2).sum()) / (n_p - 1), n_p - 1),
            "resid": (
                float(((m - seed_means[:, None] - prompt_means[None, :] + grand) ** 2).sum())
                / ((n_s - 1) * (n_p - 1)),
                (n_s - 1) * (n_p - 1),
            ),
        }
        # var = (c_seed MS_seed + c_prompt MS_prompt + c_resid MS_resid) / (S P). The seed term is
        # always kept: dropping it when MS_seed falls below MS_resid (a pre-test, then pooling)
        # switched df between about S - 1 and S P and rejected a null 8% of the time at a modest
        # seed spread. A prompt component below the residual is set to 0.
        coef = {"seed": 1.0, "prompt": float(ms["prompt"][0] > ms["resid"][0])}
        coef["resid"] = -coef["prompt"]
        terms = {k: coef[k] * ms[k][0] / (n_s * n_p) for k in ms}
        var = sum(terms.values())
        denom = sum(t**2 / ms[k][1] for k, t in terms.items())
        df = float(var**2 / denom) if var > 0 else float(n_s - 1)
        if var <= 0:  # equal seed means (0/1 outcomes can tie) and no prompt component: the residual
            var = ms["resid"][0] / (n_s * n_p)  # is the least the mean's variance can be
        var += extra_var
    se = math.sqrt(max(var, 0.0))
    half = _quantile(0.5 + level / 2, df) * se
    return _estimate(grand, se, df, grand - half, grand + half, n_s, n_p, COMPONENTS_METHOD, level, alpha)


def crossed_bootstrap_of(
    statistic,
    seed_values: Sequence[float],
    n_prompts: int,
    level: float = LEVEL,
    n_boot: int = 4000,
    seed: int = 0,
    alpha: float = ALPHA,
) -> Estimate:
    """The crossed bootstrap of any statistic of seeds × shared prompts.

    ``statistic(seeds, prompts)`` is recomputed on each replicate's resampled seed and prompt
    indices (so everything that depends on the prompts is resampled with them, e.g. the KL axis a
    curve is interpolated on); ``seed_values`` are the statistic of each seed on all prompts: their
    mean is the estimate, and their Student-t interval is the floor of the bootstrap's width.
    """
    seed_values = _finite(seed_values, (1,))
    n_seeds = len(seed_values)
    reps = crossed_replicates(statistic, n_seeds, n_prompts, n_boot, seed)
    mean = float(seed_values.mean())
    se_boot = float(reps.std(ddof=1))
    df = n_seeds - 1 if n_seeds > 1 else None
    se_seeds = float(seed_values.std(ddof=1) / math.sqrt(n_seeds)) if n_seeds > 1 else 0.0
    se = max(se_boot, se_seeds)
    half = _quantile(0.5 + level / 2, df) * se
    tail = (1 - level) / 2
    lo = min(mean - half, float(np.quantile(reps, tail)))
    hi = max(mean + half, float(np.quantile(reps, 1 - tail)))
    return _estimate(mean, se, df, lo, hi, n_seeds, n_prompts, BOOT_METHOD, level, alpha)


def paired_estimate(a, b, method: str = "t", **kwargs) -> Estimate:
    """Estimate of ``a - b`` for paired outcomes: per-seed values (``method="t"``) or
    ``[seeds, prompts]`` matrices (``method="crossed"`` or ``"components"``), in the same layout."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired outcomes need the same layout, got {a_arr.shape} and {b_arr.shape}")
    if method == "t":
        return t_estimate(a_arr - b_arr, **kwargs)
    if method == "crossed":
        return crossed_bootstrap(a_arr - b_arr, **kwargs)
    if method == "components":
        return crossed_components(a_arr - b_arr, **kwargs)
    raise ValueError(f"unknown method {method!r}: 't', 'crossed' or 'components'")


def holm(pvalues: Sequence[float], family_size: int | None = None) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given; each at most 1).

    ``family_size``: the planned number of claims when some have no p-value yet (they count as
    p = 1, so a missing member never makes the family less strict)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p, kind="stable")
    k = max(len(p), family_size or 0)
    adjusted = np.empty(len(p))
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p[idx]))
        adjusted[idx] = running
    return [float(x) for x in adjusted]


@dataclass(frozen=True)
class Claim:
    """One claim of a family: ``estimate`` of (method − baseline), and the sign the paper claims."""

    name: str
    estimate: Estimate
    direction: int = 1
    paper: str | None = None


def verdict(p_adjusted: float, mean: float, direction: int = 1, alpha: float = ALPHA) -> str:
    """The verdict rule (see the module docstring) for one claim, given its adjusted p-value."""
    if p_adjusted >= alpha or mean == 0:
        return "unresolved"
    return "holds" if (mean > 0) == (direction > 0) else "fails"


def judge(claims: Sequence[Claim], alpha: float = ALPHA, family_size: int | None = None) -> list[dict]:
    """Verdicts of a family of claims, Holm-adjusted together (one dict per claim, in order);
    ``family_size``: the planned size of the family, if some of its claims are not here."""
    if not claims:
        return []
    adjusted = holm([c.estimate.p for c in claims], family_size)
    k = max(len(claims), family_size or 0)
    return [
        {
            "name": c.name,
            "verdict": verdict(p_adj, c.estimate.mean, c.direction, alpha),
            "p": c.estimate.p,
            "p_holm": p_adj,
            "family_size": k,
            "mde_family": mde(c.estimate.se, c.estimate.df, alpha / k),
            "direction": c.direction,
            "estimate": c.estimate.to_dict(),
            "paper": c.paper,
        }
        for c, p_adj in zip(claims, adjusted, strict=True)
    ]
