"""The power module on hand-computed vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cwpo.experiments.power import Z95, bootstrap_ci, ci95, compare, mde, paired_se, planned_mde, verdict


def test_paired_se_by_hand():
    # seed means 0.5 and 0.0: Var_s = 0.125 (ddof 1), seed term 0.125 / 2 = 0.0625
    # within-seed variances (ddof 1): [1, 1, 0, 0] -> 1/3; [0, 0, 0, 0] -> 0; mean 1/6; prompt term 1/6 / 8
    d = [[1, 1, 0, 0], [0, 0, 0, 0]]
    out = paired_se(d)
    assert out["mean"] == pytest.approx(0.25)
    assert out["se_seeds"] == pytest.approx(math.sqrt(0.0625))
    assert out["se_prompts"] == pytest.approx(math.sqrt(1 / 48))
    assert out["se"] == pytest.approx(0.25)  # the larger of the two terms
    assert mde(d) == pytest.approx(Z95 * 0.25)


def test_one_seed_uses_the_prompt_term_only():
    d = [[1.0, 0.0, 1.0, 0.0]]  # var (ddof 1) = 1/3, se = sqrt(1/3 / 4)
    out = paired_se(d)
    assert out["se_seeds"] is None and out["se"] == pytest.approx(math.sqrt(1 / 12))


def test_planned_mde_by_hand():
    # sd 0.65 over 1000 prompts x 5 seeds, no seed spread: 1.96 * 0.65 / sqrt(5000)
    assert planned_mde(0.65, 1000, 5) == pytest.approx(Z95 * 0.65 / math.sqrt(5000))
    assert planned_mde(0.65, 1000, 5, sd_seed=0.02) > planned_mde(0.65, 1000, 5)
    with pytest.raises(ValueError):
        planned_mde(0.5, 0, 1)


def test_bootstrap_ci_covers_the_mean_and_is_paired():
    rng = np.random.default_rng(0)
    base = rng.random((3, 400))
    a, b = base + 0.05, base  # a constant paired difference: a zero-width interval
    out = compare(a, b, n_boot=200)
    assert out["ci_low"] == pytest.approx(0.05) and out["ci_high"] == pytest.approx(0.05)
    assert out["verdict"] == "holds" and out["mde"] == pytest.approx(0.0, abs=1e-12)
    noisy = compare(rng.random((3, 400)), rng.random((3, 400)), n_boot=300)
    assert noisy["ci_low"] < noisy["mean"] < noisy["ci_high"]
    low, high = bootstrap_ci([[1.0, 0.0] * 50], n_boot=300)
    assert low < 0.5 < high


def test_two_seeds_cannot_declare_less_than_the_mde():
    # seed means 0.055 and 0.0125, no spread within a seed: se = |0.055 - 0.0125| / 2 = 0.02125
    # (seed term), MDE = 1.96 * 0.02125 = 0.04165 > mean 0.03375. The seed bootstrap alone only
    # sees the means {0.0125, 0.03375, 0.055} and would exclude 0 ("holds"); ci95 may not.
    d = np.array([[0.055] * 400, [0.0125] * 400])
    low, high = bootstrap_ci(d, n_boot=400)
    assert low == pytest.approx(0.0125) and high == pytest.approx(0.055)
    out = compare(d, np.zeros_like(d), n_boot=400)
    assert out["se"] == pytest.approx(0.02125) and out["mde"] == pytest.approx(Z95 * 0.02125)
    assert out["ci_low"] == pytest.approx(0.03375 - Z95 * 0.02125)
    assert out["ci_high"] == pytest.approx(0.03375 + Z95 * 0.02125)
    assert out["verdict"] == "unresolved"
    # with many prompts and one seed the bootstrap and the normal interval agree closely
    rng = np.random.default_rng(3)
    one = rng.random((1, 2000))
    (bl, bh), (cl, ch) = bootstrap_ci(one, n_boot=1000), ci95(one, n_boot=1000)
    assert cl <= bl and ch >= bh and (bl - cl) < 0.003 and (ch - bh) < 0.003


def test_verdicts():
    assert verdict(0.03, (0.01, 0.05)) == "holds"
    assert verdict(-0.03, (-0.05, -0.01)) == "fails"
    assert verdict(0.01, (-0.01, 0.03)) == "unresolved"
    assert verdict(-0.03, (-0.05, -0.01), direction=-1) == "holds"


def test_bad_layouts_are_refused():
    with pytest.raises(ValueError, match="same layout"):
        compare([[1, 0]], [[1, 0, 1]])
    with pytest.raises(ValueError, match="non-finite"):
        paired_se([[1.0, float("nan")]])


def test_a_rate_ci_is_cut_to_its_range():
    # three seeds at GRA 0.97, 0.98, 0.76: mean 0.9033, seed-term se = std/sqrt(3) ~ 0.072, so the
    # widened interval would reach 0.9033 + 1.96 * 0.072 > 1; a rate's CI stops at 1
    d = np.array([[1.0] * 97 + [0.0] * 3, [1.0] * 98 + [0.0] * 2, [1.0] * 76 + [0.0] * 24])
    low, high = ci95(d, n_boot=400)
    assert high > 1.0  # the unbounded interval (what the reports printed before)
    cut_low, cut_high = ci95(d, n_boot=400, bounds=(0.0, 1.0))
    assert cut_high == 1.0 and cut_low == pytest.approx(low)
    out = compare(d, np.zeros_like(d), n_boot=400, bounds=(-1.0, 1.0))
    assert out["ci_high"] == 1.0 and out["verdict"] == "holds"
