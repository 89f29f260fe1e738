"""The one statistics module on hand-computed values and on properties of the crossed design."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cwpo.stats import (
    BOOT_METHOD,
    T_METHOD,
    Claim,
    crossed_bootstrap,
    holm,
    judge,
    mde,
    paired_estimate,
    planned_mde,
    t_estimate,
    verdict,
)


def test_t_estimate_by_hand():
    # mean 2, sd 1, se 1/sqrt(3); t(0.975, 2) = 4.302653; t = 2 sqrt(3) = 3.4641 on 2 df:
    # for 2 df, P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2, so p = 1 - sqrt(12 / 14) = 0.074180
    est = t_estimate([1.0, 2.0, 3.0])
    assert est.mean == 2.0 and est.se == pytest.approx(1 / math.sqrt(3))
    assert est.lo == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-6)
    assert est.hi == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-6)
    assert est.p == pytest.approx(1 - math.sqrt(12 / 14), abs=1e-9)
    assert est.df == 2 and est.n_seeds == 3 and est.method == T_METHOD
    # MDE at 80% power on 2 df: (t(0.975, 2) + t(0.8, 2)) * se = (4.302653 + 1.060660) / sqrt(3)
    assert est.mde == pytest.approx((4.302653 + 1.060660) / math.sqrt(3), abs=1e-6)
    with pytest.raises(ValueError):
        t_estimate([1.0])
    with pytest.raises(ValueError):
        t_estimate([1.0, float("nan")])


def test_mde_is_the_80_percent_power_effect_not_the_ci_half_width():
    assert mde(1.0, None) == pytest.approx(1.959964 + 0.841621, abs=1e-6)  # 2.80 se, not 1.96 se
    assert mde(0.5, 4) == pytest.approx(0.5 * (2.776445 + 0.940965), abs=1e-6)
    assert mde(1.0, None, power=0.5) == pytest.approx(1.959964, abs=1e-6)


def test_planned_mde_by_hand():
    # sd 0.65 over 1000 prompts x 5 seeds, no seed spread; t on 4 df
    se = 0.65 / math.sqrt(5000)
    assert planned_mde(0.65, 1000, 5) == pytest.approx(se * (2.776445 + 0.940965), abs=1e-7)
    assert planned_mde(0.65, 1000, 5, sd_seed=0.02) > planned_mde(0.65, 1000, 5)
    assert planned_mde(0.65, 1000, 1) == pytest.approx(0.65 / math.sqrt(1000) * 2.801585, abs=1e-6)
    with pytest.raises(ValueError):
        planned_mde(0.5, 0, 1)


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, max(0.06, 1 * 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([0.02]) == pytest.approx([0.02])
    # a planned family of 3 with one claim not in yet: it counts as p = 1, never less strict
    assert holm([0.01, 0.04], family_size=3) == pytest.approx([0.03, 0.08])


def test_verdict_rule():
    assert verdict(0.01, 0.3) == "holds"
    assert verdict(0.01, -0.3) == "fails"
    assert verdict(0.01, -0.3, direction=-1) == "holds"
    assert verdict(0.05, 0.3) == "unresolved"  # not below alpha
    assert verdict(0.2, -0.3) == "unresolved"


def test_judge_adjusts_the_family():
    strong = t_estimate([0.10, 0.11, 0.11])  # p = 0.000975
    weak = t_estimate([0.10, 0.13, 0.07])  # p = 0.0287
    null = t_estimate([0.0, -0.01, 0.01])  # p = 1
    (alone,) = judge([Claim("weak", weak)])
    assert alone["verdict"] == "holds" and alone["p_holm"] == pytest.approx(weak.p)
    out = judge([Claim("strong", strong), Claim("weak", weak), Claim("null", null)])
    assert [o["verdict"] for o in out] == ["holds", "unresolved", "unresolved"]
    assert out[1]["p_holm"] == pytest.approx(2 * weak.p) and out[0]["p_holm"] == pytest.approx(3 * strong.p)
    assert all(o["family_size"] == 3 for o in out)
    reversed_ = judge([Claim("r", t_estimate([-0.10, -0.11, -0.11]))])
    assert reversed_[0]["verdict"] == "fails"


def test_crossed_bootstrap_sees_the_prompt_effect_shared_by_seeds():
    # every seed sees the same prompts, whose effects dominate: the mean's uncertainty is the
    # prompts' (sd / sqrt(P)), not sd / sqrt(S * P) as if each seed had its own prompts
    rng = np.random.default_rng(0)
    n_seeds, n_prompts = 5, 400
    prompt = rng.normal(0, 1, n_prompts)
    mat = prompt[None, :] + rng.normal(0, 0.05, (n_seeds, n_prompts))
    est = crossed_bootstrap(mat, n_boot=2000)
    prompt_se = prompt.std(ddof=1) / math.sqrt(n_prompts)
    assert est.se == pytest.approx(prompt_se, rel=0.15)
    assert est.se > 1.8 * prompt.std(ddof=1) / math.sqrt(n_seeds * n_prompts)
    assert est.method == BOOT_METHOD and est.df == 4 and est.lo < est.mean < est.hi


def test_crossed_bootstrap_is_never_narrower_than_t_over_seed_means():
    # two seeds, no spread within a seed: the bootstrap sees only 3 seed sets; t over the two seed
    # means: se = |0.055 - 0.0125| / 2 = 0.02125, t(0.975, 1) = 12.706: the interval covers 0
    d = np.array([[0.055] * 400, [0.0125] * 400])
    est = crossed_bootstrap(d, n_boot=400)
    assert est.se == pytest.approx(0.02125)
    assert est.lo == pytest.approx(0.03375 - 12.706205 * 0.02125, abs=1e-5) and est.lo < 0 < est.hi
    assert est.p > 0.05


def test_one_seed_bootstraps_prompts_with_the_normal_quantile():
    est = crossed_bootstrap([1.0, 0.0] * 50, n_boot=2000)
    assert est.df is None and est.n_seeds == 1 and est.n_prompts == 100
    assert est.se == pytest.approx(0.05, rel=0.1)  # sd 0.5025 / sqrt(100)
    assert est.lo < 0.5 < est.hi


def test_paired_estimate_keeps_pairs():
    rng = np.random.default_rng(1)
    base = rng.random((3, 200))
    est = paired_estimate(base + 0.05, base, method="crossed", n_boot=200)
    assert est.mean == pytest.approx(0.05) and est.se == pytest.approx(0.0, abs=1e-12)
    assert est.p < 1e-12 and est.lo == pytest.approx(0.05)
    t = paired_estimate([0.6, 0.62, 0.61], [0.5, 0.51, 0.5])
    assert t.method == T_METHOD and t.mean == pytest.approx(0.10667, abs=1e-5)
    with pytest.raises(ValueError):
        paired_estimate([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        paired_estimate([1.0, 2.0], [1.0, 2.0], method="z")


def test_a_claim_carries_the_mde_at_holms_strictest_step():
    from cwpo.stats import Claim, judge, mde, t_estimate

    e = t_estimate([0.02, 0.05, 0.03])
    (alone,) = judge([Claim("a", e)])
    (in_three,) = judge([Claim("a", e)], family_size=3)
    assert alone["mde_family"] == pytest.approx(e.mde)  # a family of one: the plain MDE
    assert in_three["mde_family"] == pytest.approx(mde(e.se, 2, 0.05 / 3))
    assert in_three["mde_family"] > 1.5 * e.mde  # 3 seeds, 3 claims: t(0.9917, 2) = 7.65 against 4.30


def test_crossed_components_by_hand():
    from cwpo.stats import crossed_components

    # seed means 2, 5; prompt means 1.5, 3, 6; grand 3.5: MS seed 13.5, MS prompt 10.5, MS resid 3.5
    e = crossed_components([[1, 2, 3], [2, 4, 9]])
    var = (13.5 + 10.5 - 3.5) / 6
    assert e.mean == pytest.approx(3.5) and e.se == pytest.approx(math.sqrt(var))
    df = var**2 / ((13.5 / 6) ** 2 / 1 + (10.5 / 6) ** 2 / 2 + (3.5 / 6) ** 2 / 2)
    assert e.df == pytest.approx(df)  # Satterthwaite: 1.73
    # a prompt component below the residual is set to 0: the seed means' own t interval remains
    # (MS seed 1, MS prompt 0, MS resid 4); the seed term is kept even when below the residual
    paired = crossed_components([[1, 3], [4, 2]])
    assert (paired.se, paired.df) == (pytest.approx(0.5), pytest.approx(1.0))
    assert paired.hi - paired.lo == pytest.approx(t_estimate([2, 3]).hi - t_estimate([2, 3]).lo)
    flat = crossed_components([[1, 2, 3], [1.2, 1.8, 3.0]])  # MS seed 0, prompt 1.82, resid 0.02
    assert flat.se == pytest.approx(math.sqrt((0 + 1.82 - 0.02) / 6))
    one = crossed_components([0.0, 1.0, 1.0, 0.0])  # one seed: prompts only, normal quantile
    assert one.df is None and one.se == pytest.approx(np.std([0, 1, 1, 0], ddof=1) / 2)


@pytest.mark.parametrize("sd_seed", [0.0, 0.04])
def test_crossed_components_are_calibrated_on_the_frontier_layout(sd_seed):
    """Simulated paired 0/1 outcomes, 3 seeds x 200 prompts: the reported se is near the estimate's
    true sd, a null claim is significant about 5% of the time (the crossed bootstrap: never), and
    the degrees of freedom are the seeds'."""
    from cwpo.stats import crossed_components

    rng = np.random.default_rng(1)
    means, est = [], []
    for _ in range(400):
        q = rng.uniform(0.3, 0.9, 200)
        a, b = (
            (rng.random((3, 200)) < np.clip(q + rng.normal(0, sd_seed, (3, 1)), 0, 1)).astype(float)
            for _ in range(2)
        )
        means.append((a - b).mean())
        est.append(crossed_components(a - b))
    ratio = np.mean([e.se for e in est]) / np.std(means, ddof=1)
    assert 0.85 < ratio < 1.3
    assert 0.01 <= np.mean([e.p < 0.05 for e in est]) <= 0.10
    assert np.mean([e.lo <= 0 <= e.hi for e in est]) >= 0.9
    # no prompt effect in a paired difference: the seeds carry the df (no pre-test that drops them)
    assert np.percentile([e.df for e in est], 90) < 5


def test_tied_seed_means_do_not_make_a_zero_interval():
    from cwpo.stats import crossed_components

    tied = crossed_components([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]])  # seed means all 0.5
    assert tied.se == pytest.approx(math.sqrt(tied_resid_ms() / 12)) and tied.df == 2  # not se 0, p 0


def tied_resid_ms() -> float:
    m = np.array([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]], dtype=float)
    r = m - m.mean(axis=1, keepdims=True) - m.mean(axis=0, keepdims=True) + m.mean()
    return float((r**2).sum() / (2 * 3))
