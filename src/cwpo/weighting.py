"""Per-pair weights of the alignment loss, as functions of the weak annotator's margin.

The paper's confidence (Eq. in Step 2 of CW-PO): c = 2·σ(|Δ|) − 1 = tanh(|Δ|/2) ∈ [0, 1),
where Δ = r(x, y_w) − r(x, y_l) is the weak annotator's score margin. This is the one place
the formula is defined.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from cwpo.errors import ConfigError, DataError


def confidence(margin: torch.Tensor | float) -> torch.Tensor | float:
    """c = 2σ(|Δ|) − 1, computed as tanh(|Δ|/2) (identical, and exact for large |Δ|).

    Mathematically c < 1; in floating point it rounds to exactly 1.0 once |Δ| exceeds about 38
    (float64) or 18 (float32), which is harmless as a weight.
    """
    if isinstance(margin, torch.Tensor):
        return torch.tanh(margin.abs() / 2)
    return math.tanh(abs(float(margin)) / 2)


def margin_from_confidence(c: torch.Tensor) -> torch.Tensor:
    """|Δ| = 2·atanh(c), the inverse of :func:`confidence` (c is clipped below 1 to stay finite)."""
    return 2 * torch.atanh(c.clamp(0, 1 - 1e-7))


def check_weights(
    weights: Sequence, where: str, column: str = "weight", learning: bool = True
) -> list[float]:
    """The weights as floats, or a :class:`DataError` naming ``where``, the row (1-based) and ``column``.

    A weight must be a finite number >= 0 (NaN makes every parameter NaN, a negative weight trains
    toward the rejected response); with ``learning``, at least one must be > 0 (all zero: the loss
    is 0 and nothing is learned).
    """
    out = []
    for i, w in enumerate(weights, 1):
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise DataError(f"column {column!r} must be a finite number >= 0, got {w!r}", where, i)
        out.append(float(w))
    if learning and out and not any(out):
        raise DataError(f"every {column!r} is 0: the weighted loss would be 0 and nothing learned", where)
    return out


# ---------------------------------------------------------------------------------------------
# Named weight functions of the margin (the paper's Table 5 comparison).
#
# Every weighting maps the dataset's margins Δ (shape [N]) to weights w (shape [N]); the loss of
# pair i is multiplied by w_i. Each is registered under a short name and under its formula, so
# ``get_weighting("tanh(|d|/2)")`` and ``get_weighting("confidence")`` are the same thing.
# ``top-N`` is a filter: weight 1 on the N% most confident pairs, 0 (dropped) on the others.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Weighting:
    name: str
    formula: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    needs_margin: bool = True  # False: weight 1 everywhere, works on data without margins
    is_filter: bool = False  # True: weights are 0/1 and zero-weight pairs are dropped before training
    bounded: bool = True

    def __call__(self, margins: torch.Tensor | Sequence[float]) -> torch.Tensor:
        m = torch.as_tensor(margins, dtype=torch.float64).abs()
        if m.ndim != 1:
            raise ValueError(f"margins must be a 1-D sequence, got shape {tuple(m.shape)}")
        if not torch.isfinite(m).all():
            raise ValueError("margins contain NaN or inf")
        return self.fn(m).to(torch.float64)


def _top_fraction(percent: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(m: torch.Tensor) -> torch.Tensor:
        n = len(m)
        keep = max(1, round(n * percent / 100)) if n else 0
        order = torch.argsort(m, descending=True, stable=True)  # ties: earlier rows first
        w = torch.zeros(n, dtype=torch.float64)
        w[order[:keep]] = 1.0
        return w

    return fn


def _normalized(m: torch.Tensor) -> torch.Tensor:
    top = m.max() if len(m) else torch.tensor(0.0)
    return m / top if top > 0 else torch.ones_like(m)


_WEIGHTINGS = [
    Weighting("none", "1", lambda m: torch.ones_like(m), needs_margin=False),
    Weighting("confidence", "tanh(|d|/2)", lambda m: torch.as_tensor(confidence(m))),
    Weighting("sigmoid-abs-margin", "sigmoid(|d|)", torch.sigmoid),
    Weighting("one-minus-exp", "1-exp(-|d|)", lambda m: -torch.expm1(-m)),
    Weighting("tanh-abs-margin", "tanh(|d|)", torch.tanh),
    Weighting("clipped-abs-margin", "min(|d|,1)", lambda m: m.clamp(max=1.0)),
    Weighting("normalized-abs-margin", "|d|/max|d|", _normalized),
    Weighting("abs-margin", "|d|", lambda m: m, bounded=False),
]
WEIGHTINGS: dict[str, Weighting] = {w.name: w for w in _WEIGHTINGS}
_BY_FORMULA: dict[str, Weighting] = {w.formula: w for w in _WEIGHTINGS}
_TOP = re.compile(r"^top-(\d+(?:\.\d+)?)%?$")


def weighting_names() -> list[str]:
    """Every valid name (the formulas are accepted too, and ``top-N`` for 0 < N <= 100)."""
    return [*WEIGHTINGS, "top-N"]


def get_weighting(name: str) -> Weighting:
    """The weighting called ``name`` (a short name, its formula, or ``top-N``); unknown names raise."""
    key = str(name).strip()
    if key in WEIGHTINGS:
        return WEIGHTINGS[key]
    if key.replace(" ", "") in _BY_FORMULA:
        return _BY_FORMULA[key.replace(" ", "")]
    match = _TOP.match(key)
    if match:
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise ConfigError(f"weighting {name!r}: N in top-N must be in (0, 100], got {percent:g}")
        return Weighting(
            f"top-{percent:g}", f"1[|d| in top {percent:g}%]", _top_fraction(percent), is_filter=True
        )
    valid = ", ".join(f"{w.name} = {w.formula}" for w in _WEIGHTINGS)
    raise ConfigError(f"unknown weighting {name!r}; valid: {valid}, top-N (N% most confident, weight 1)")
