"""How trustworthy the annotator's confidence is: accuracy, ECE, histograms, temperature scaling.

Inputs are *signed* margins on human-labeled pairs: Δ = score(human chosen) − score(human
rejected), so Δ > 0 means the annotator agrees with the human (Δ = 0 counts as half right).
The annotator's confidence is c = tanh(|Δ|/2) (:func:`cwpo.weighting.confidence`); the
probability it implicitly assigns to its own label is p = σ(|Δ|) = (1 + c)/2, and the expected
calibration error compares p with the observed agreement, bin by bin over c ∈ [0, 1).

Temperature scaling (beyond the paper, off by default): Δ → Δ/T with T > 0 minimizing the
held-out negative log-likelihood mean(softplus(−Δ/T)). It never changes which response is
chosen, only the confidence.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cwpo.weighting import confidence


def _as_tensor(margins) -> torch.Tensor:
    t = torch.as_tensor(margins, dtype=torch.float64).flatten()
    if t.numel() == 0:
        raise ValueError("no margins to evaluate")
    if not torch.isfinite(t).all():
        raise ValueError("margins contain NaN or inf")
    return t


def agreement(margins) -> torch.Tensor:
    """1 where the annotator agrees with the human label, 0.5 on a tie, 0 otherwise."""
    t = _as_tensor(margins)
    return (t > 0).double() + 0.5 * (t == 0).double()


def nll(margins, temperature: float = 1.0) -> float:
    t = _as_tensor(margins)
    return float(F.softplus(-t / temperature).mean())


# the largest temperature fit_temperature returns: a fit at this bound means the margins carry no
# signal about the labels (every confidence is flattened towards 0)
TEMPERATURE_BOUND = 20.0


def fit_temperature(margins, low: float = 0.05, high: float = TEMPERATURE_BOUND, iters: int = 80) -> float:
    """T in [low, high] minimizing mean softplus(−Δ/T) (convex in 1/T): golden-section on log T."""
    t = _as_tensor(margins)
    a, b = math.log(low), math.log(high)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(t, math.exp(c)), nll(t, math.exp(d))
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(t, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(t, math.exp(d))
    return float(math.exp((a + b) / 2))


def top_fraction_accuracy(margins, fraction: float) -> float:
    """Agreement on the ``fraction`` most confident pairs (the paper's core observation)."""
    t = _as_tensor(margins)
    k = max(1, int(round(fraction * t.numel())))
    order = torch.argsort(t.abs(), descending=True, stable=True)[:k]
    return float(agreement(t[order]).mean())


def calibration_report(margins, temperature: float = 1.0, n_bins: int = 10) -> dict:
    """Accuracy, ECE, confidence histogram and accuracy per confidence bin of ``Δ/T``."""
    t = _as_tensor(margins) / temperature
    conf = confidence(t)
    prob = (1 + conf) / 2
    agree = agreement(t)
    bins = torch.clamp((conf * n_bins).long(), max=n_bins - 1)
    counts, acc_by_bin, conf_by_bin = [], [], []
    ece = 0.0
    for i in range(n_bins):
        sel = bins == i
        n = int(sel.sum())
        counts.append(n)
        if n == 0:
            acc_by_bin.append(None)
            conf_by_bin.append(None)
            continue
        acc, p = float(agree[sel].mean()), float(prob[sel].mean())
        acc_by_bin.append(round(acc, 6))
        conf_by_bin.append(round(float(conf[sel].mean()), 6))
        ece += n / t.numel() * abs(acc - p)
    return {
        "n": int(t.numel()),
        "temperature": float(temperature),
        "accuracy": float(agree.mean()),
        "ece": float(ece),
        "nll": nll(t),
        "mean_confidence": float(conf.mean()),
        "accuracy_top30": top_fraction_accuracy(t, 0.3),
        "accuracy_top50": top_fraction_accuracy(t, 0.5),
        "bin_edges": [i / n_bins for i in range(n_bins + 1)],
        "confidence_histogram": counts,
        "accuracy_by_confidence_bin": acc_by_bin,
        "mean_confidence_by_bin": conf_by_bin,
    }
