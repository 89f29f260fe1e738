"""Simulated Bradley-Terry annotators."""

from __future__ import annotations

import math

import pytest

from cwpo.experiments.simulate import bt_preference_prob, gold_agreement, simulate_labels


def test_noise_free_annotator_follows_gold():
    assert bt_preference_prob(0.5, 0.1, 0) == 1.0
    assert bt_preference_prob(0.1, 0.5, 0) == 0.0
    assert bt_preference_prob(0.3, 0.3, 0) == 0.5
    labels = simulate_labels([0.9, 0.1, 0.5], [0.2, 0.8, 0.4], 0.0, seed=0)
    assert labels == ["a", "b", "a"]
    assert gold_agreement(labels, [0.9, 0.1, 0.5], [0.2, 0.8, 0.4]) == 1.0


def test_bt_probability_value_and_symmetry():
    assert math.isclose(bt_preference_prob(0.6, 0.4, 0.1), 1 / (1 + math.exp(-2)))
    assert math.isclose(bt_preference_prob(0.6, 0.4, 0.1) + bt_preference_prob(0.4, 0.6, 0.1), 1.0)
    assert math.isclose(bt_preference_prob(100.0, 0.0, 0.001), 1.0)  # no overflow
    with pytest.raises(ValueError):
        bt_preference_prob(0, 1, -1)


def test_noise_lowers_agreement_and_is_seeded():
    import random

    rng = random.Random(0)
    ga = [rng.uniform(-1, 1) for _ in range(4000)]
    gb = [rng.uniform(-1, 1) for _ in range(4000)]
    agree = [gold_agreement(simulate_labels(ga, gb, t, seed=1), ga, gb) for t in (0.0, 0.1, 0.5)]
    assert agree[0] == 1.0 and agree[0] > agree[1] > agree[2] > 0.5
    assert simulate_labels(ga, gb, 0.3, seed=5) == simulate_labels(ga, gb, 0.3, seed=5)
    assert simulate_labels(ga, gb, 0.3, seed=5) != simulate_labels(ga, gb, 0.3, seed=6)


def test_uniform_flips_reach_a_crowd_like_agreement():
    import random

    rng = random.Random(0)
    ga = [rng.random() for _ in range(4000)]
    gb = [rng.random() for _ in range(4000)]
    assert simulate_labels(ga, gb, 0.0, seed=2, flip=0.0) == simulate_labels(ga, gb, 0.0, seed=2)
    agree = gold_agreement(simulate_labels(ga, gb, 0.0, seed=2, flip=0.32), ga, gb)
    assert 0.66 < agree < 0.70  # 1 - 0.32, up to sampling noise
    with pytest.raises(ValueError):
        simulate_labels(ga, gb, 0.0, seed=2, flip=1.0)
