"""Metrics on hand-made inputs: known GRA, known ties, the three-subset std, seeded bootstrap."""

import math

import numpy as np
import pytest

from cwpo.evaluate.metrics import bootstrap_ci, gra, outcomes, preference_accuracy, win_rate


def test_gra_known_value_with_ties():
    # wins: 3>1, 5>0; tie: 2==2; loss: 1<3  ->  (2 + 0.5) / 4
    m = gra([3, 2, 1, 5], [1, 2, 3, 0], n_boot=200)
    assert m["gra"] == pytest.approx(0.625)
    assert (m["wins"], m["ties"], m["losses"], m["n"]) == (2, 1, 1, 4)
    assert m["tie_rate"] == pytest.approx(0.25)
    assert m["mean_policy"] == pytest.approx(2.75) and m["mean_reference"] == pytest.approx(1.5)
    assert m["ci_low"] <= m["gra"] <= m["ci_high"]


def test_all_ties_give_exactly_half_and_a_degenerate_interval():
    m = gra([0.3] * 9, [0.3] * 9)
    assert m["gra"] == 0.5 and m["ties"] == 9 and m["wins"] == m["losses"] == 0
    assert m["ci_low"] == m["ci_high"] == 0.5
    assert m["std"] == 0.0


def test_three_disjoint_subsets_std():
    # outcomes [1,1 | 0,0 | .5,.5] -> subset GRAs [1, 0, .5] -> population std sqrt(1/6)
    m = gra([2, 2, 0, 0, 1, 1], [1, 1, 1, 1, 1, 1])
    assert m["subset_values"] == [1.0, 0.0, 0.5]
    assert m["std"] == pytest.approx(math.sqrt(1 / 6))
    assert m["gra"] == pytest.approx(0.5)


def test_uneven_subsets_and_too_few_items():
    m = gra([1, 0, 1, 0, 1, 0, 1], [0] * 7)  # outcomes 1,.5,1,.5,1,.5,1 split 3/2/2
    assert m["subset_values"] == pytest.approx([2.5 / 3, 0.75, 0.75])
    assert gra([1, 0], [0, 0])["std"] is None  # fewer items than subsets


def test_tolerance_turns_small_differences_into_ties():
    assert outcomes([1.0, 1.05, 2.0], [1.01, 1.0, 1.0], tol=0.1).tolist() == [0.5, 0.5, 1.0]
    assert outcomes([1.0, 1.05], [1.01, 1.0]).tolist() == [0.0, 1.0]


def test_bootstrap_is_seeded_and_covers_the_mean():
    rng = np.random.default_rng(1)
    values = (rng.random(200) < 0.6).astype(float)
    a, b = bootstrap_ci(values, n_boot=500, seed=3), bootstrap_ci(values, n_boot=500, seed=3)
    assert a == b
    assert a[0] < values.mean() < a[1]
    assert bootstrap_ci(values, n_boot=500, seed=4) != a
    # half-width close to the normal approximation 1.96 * sqrt(p(1-p)/n)
    half = (a[1] - a[0]) / 2
    assert half == pytest.approx(1.96 * math.sqrt(values.mean() * (1 - values.mean()) / 200), rel=0.25)


def test_preference_accuracy_counts_ties_half():
    m = preference_accuracy([1.0, 0.0, -1.0, 0.0], [0.0, 0.0, 0.0, -2.0])
    assert m["accuracy"] == pytest.approx((2 + 0.5) / 4)
    assert (m["wins"], m["ties"], m["losses"]) == (2, 1, 1)
    assert m["mean_margin"] == pytest.approx(0.5)


def test_win_rate_excludes_unparsed():
    m = win_rate(["policy", "baseline", "policy", None])
    assert m["win_rate"] == pytest.approx(2 / 3) and m["n"] == 3 and m["unparsed"] == 1
    assert win_rate([None, None]) == {"win_rate": None, "n": 0, "unparsed": 2}
    with pytest.raises(ValueError, match="unknown winner"):
        win_rate(["policy", "draw"])


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        ([1, 2], [1], "differ in length"),
        ([], [], "no items"),
        ([1, float("nan")], [0, 0], "non-finite value at index 1"),
    ],
)
def test_bad_inputs_have_clear_errors(a, b, match):
    with pytest.raises(ValueError, match=match):
        gra(a, b)
