"""Matched-KL interpolation, the weight controls and the Bradley-Terry crowd calibration."""

import math
from collections import Counter

import numpy as np
import pytest

from cwpo.experiments.frontier import (
    bt_agreement,
    bt_temperature_for,
    common_levels,
    correlation,
    dominance,
    effective_sample_size,
    ess_subset,
    interpolate,
    matched_matrix,
    oracle_weights,
    shuffled_weights,
)
from cwpo.experiments.simulate import gold_agreement, simulate_labels


def test_interpolation_is_linear_in_kl_and_never_extrapolates():
    kl = [0.0, 2.0, 1.0]  # unsorted on purpose
    reward = [0.0, 4.0, 1.0]
    out = interpolate(kl, reward, [0.5, 1.5, 2.0, 2.5, -1.0])
    assert out[:3] == pytest.approx([0.5, 2.5, 4.0])
    assert math.isnan(out[3]) and math.isnan(out[4])
    # per-prompt values: each prompt's column interpolated alike; equal KLs averaged
    per_prompt = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    assert interpolate([0.0, 1.0, 1.0], per_prompt, [0.5]).tolist() == [[1.5, 2.5]]


def test_common_levels_lie_inside_every_run():
    assert common_levels([[0, 1, 3], [0.5, 2.0]], n=3) == pytest.approx([0.5, 1.25, 2.0])
    assert common_levels([[0, 1], [2, 3]]) == []


def test_matched_matrix_stacks_seeds_per_level():
    runs = [
        ([0.0, 2.0], np.array([[0.0, 0.0], [2.0, 4.0]])),
        ([0.0, 4.0], np.array([[1.0, 1.0], [5.0, 5.0]])),
    ]
    m = matched_matrix(runs, [1.0, 2.0])
    assert m.shape == (2, 2, 2)  # levels, seeds, prompts
    assert m[0].tolist() == [[1.0, 2.0], [2.0, 2.0]]
    assert m[1].tolist() == [[2.0, 4.0], [3.0, 3.0]]


def test_dominance_summary():
    assert dominance([{"lo": 0.1, "hi": 1}, {"lo": 0.2, "hi": 1}])["summary"] == "a dominates"
    assert dominance([{"lo": -1, "hi": -0.1}])["summary"] == "b dominates"
    d = dominance([{"lo": 0.1, "hi": 1}, {"lo": -1, "hi": -0.1}, {"lo": -1, "hi": 1}])
    assert (d["a_better"], d["b_better"], d["unresolved"], d["summary"]) == (1, 1, 1, "curves cross")


def test_shuffled_weights_keep_the_distribution_and_lose_the_order():
    w = [i / 100 for i in range(100)]
    s = shuffled_weights(w, seed=1)
    assert Counter(s) == Counter(w) and s != w
    assert s == shuffled_weights(w, seed=1) and s != shuffled_weights(w, seed=2)


def test_oracle_weights_follow_the_gold_gap_with_cs_values():
    gaps = [0.3, -0.9, 0.0, 0.5]
    c = [0.9, 0.1, 0.5, 0.2]
    assert oracle_weights(gaps, c) == [0.2, 0.9, 0.1, 0.5]


def test_effective_sample_size_and_its_random_subset():
    assert effective_sample_size([1, 1, 1, 1]) == 4
    assert effective_sample_size([1.0, 1.0, 0.5]) == pytest.approx(2.5**2 / 2.25)
    idx = ess_subset(10, 3.6, seed=0)
    assert len(idx) == 4 and idx == sorted(set(idx)) and all(0 <= i < 10 for i in idx)
    with pytest.raises(ValueError):
        ess_subset(3, 7.0, seed=0)


def test_correlations():
    assert correlation([1, 2, 3], [2, 4, 7]) == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 7])[0, 1])
    assert correlation([1, 2, 3], [1, 10, 100], rank=True) == pytest.approx(1.0)
    assert correlation([1, 1, 2, 2], [1, 2, 3, 4], rank=True) == pytest.approx(
        np.corrcoef([1.5, 1.5, 3.5, 3.5], [1, 2, 3, 4])[0, 1]
    )


def test_bt_crowd_calibrated_to_a_target_agreement():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, 4000), rng.uniform(-1, 1, 4000)
    t = bt_temperature_for(a - b, 0.675)
    assert bt_agreement(a - b, t) == pytest.approx(0.675, abs=1e-5)
    assert bt_agreement(a - b, 2 * t) < 0.675 < bt_agreement(a - b, t / 2)
    labels = simulate_labels(a.tolist(), b.tolist(), t, seed=0)
    assert gold_agreement(labels, a.tolist(), b.tolist()) == pytest.approx(0.675, abs=0.02)
    # unlike uniform flips, BT errs mostly on close pairs
    gap = np.abs(a - b)
    wrong = np.array([(lab == "a") != (x > y) for lab, x, y in zip(labels, a, b, strict=True)])
    assert wrong[gap < np.median(gap)].mean() > wrong[gap >= np.median(gap)].mean() + 0.1
    with pytest.raises(ValueError):
        bt_temperature_for(a - b, 0.4)
