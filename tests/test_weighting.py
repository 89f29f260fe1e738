from __future__ import annotations

import math
import re

import pytest
import torch

from cwpo.errors import ConfigError, DataError
from cwpo.weighting import check_weights, confidence, get_weighting, margin_from_confidence, weighting_names


def test_confidence_values_from_environment_md():
    # 2σ(1) − 1 = (1 − e^−1)/(1 + e^−1) = tanh(1/2) = 0.462117; 2σ(2) − 1 = tanh(1) = 0.761594
    assert confidence(1.0) == pytest.approx(0.462117, abs=1e-6)
    assert confidence(-2.0) == pytest.approx(0.761594, abs=1e-6)
    w = get_weighting("confidence")(torch.tensor([1.0, -2.0, 0.0]))
    torch.testing.assert_close(
        w, torch.tensor([0.462117, 0.761594, 0.0], dtype=torch.float64), atol=1e-6, rtol=0
    )


def test_formula_names_are_aliases():
    assert get_weighting("tanh(|d|/2)") is get_weighting("confidence")
    assert get_weighting("sigmoid(|d|)").name == "sigmoid-abs-margin"
    m = torch.tensor([0.0, 0.5, 3.0])
    torch.testing.assert_close(get_weighting("1-exp(-|d|)")(m), 1 - torch.exp(-m.double()))
    torch.testing.assert_close(
        get_weighting("min(|d|,1)")(m), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    )
    torch.testing.assert_close(get_weighting("|d|/max|d|")(m), m.double() / 3)
    assert not get_weighting("|d|").bounded


def test_none_is_all_ones():
    assert get_weighting("none")(torch.tensor([5.0, -1.0])).tolist() == [1.0, 1.0]


def test_top_n_keeps_most_confident():
    w = get_weighting("top-50")
    assert w.is_filter
    assert w(torch.tensor([0.1, -3.0, 2.0, 0.5])).tolist() == [0.0, 1.0, 1.0, 0.0]
    assert get_weighting("top-30")(torch.arange(10.0)).sum().item() == 3
    assert get_weighting("top-100")(torch.arange(3.0)).tolist() == [1.0, 1.0, 1.0]


def test_inverse_of_confidence():
    m = torch.tensor([0.0, 0.3, 4.0], dtype=torch.float64)
    torch.testing.assert_close(margin_from_confidence(confidence(m)), m)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("tanh", r"unknown weighting 'tanh'; valid: none = 1, confidence = tanh\(\|d\|/2\), .*top-N"),
        ("conf", r"unknown weighting 'conf'; valid: .*abs-margin = \|d\|, top-N"),
        ("top-0", r"'top-0': N in top-N must be in \(0, 100\], got 0$"),
        ("top-150", r"'top-150': N in top-N must be in \(0, 100\], got 150$"),
    ],
)
def test_unknown_names_list_valid(bad, message):
    with pytest.raises(ConfigError, match=message):
        get_weighting(bad)


def test_rejects_nan_margins():
    with pytest.raises(ValueError, match="NaN"):
        get_weighting("confidence")(torch.tensor([math.nan]))
    assert "top-N" in weighting_names()


def test_margin_from_confidence_clips_to_a_finite_margin():
    out = margin_from_confidence(torch.tensor([-0.1, 0.0, 1.0], dtype=torch.float64))
    assert out[:2].tolist() == [0.0, 0.0]  # below 0 clipped to 0 (never a negative margin)
    assert out[2].item() == pytest.approx(2 * math.atanh(1 - 1e-7)) and math.isfinite(out[2].item())


def test_weights_are_computed_in_float64():
    m32 = torch.tensor([0.1, 0.3], dtype=torch.float32)
    w = get_weighting("confidence")(m32)
    assert w.dtype == torch.float64
    expected = [math.tanh(float(x) / 2) for x in m32.tolist()]  # the float32 inputs, in float64
    assert w.tolist() == pytest.approx(expected, rel=1e-13, abs=0)


def test_margin_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"^margins must be a 1-D sequence, got shape \(2, 1\)$"):
        get_weighting("confidence")(torch.ones(2, 1))
    with pytest.raises(ValueError, match="^margins contain NaN or inf$"):
        get_weighting("tanh(|d|)")(torch.tensor([1.0, math.inf]))


def test_top_n_rounding_and_ties():
    # 10 pairs: top-35 keeps round(3.5) = 4; top-10 of 5 keeps round(0.5) = 0, raised to 1
    assert get_weighting("top-35")(torch.arange(10.0)).tolist() == [0.0] * 6 + [1.0] * 4
    assert get_weighting("top-10")(torch.arange(5.0)).tolist() == [0.0] * 4 + [1.0]
    # ties keep the earlier rows: 8 equal margins, top-25 of 20 keeps rows 0..4
    m = torch.tensor([1.0] * 8 + [0.0] * 12)
    assert get_weighting("top-25")(m).tolist() == [1.0] * 5 + [0.0] * 15
    assert get_weighting("top-50")(torch.tensor([])).tolist() == []


def test_normalized_margin_edge_cases():
    w = get_weighting("|d|/max|d|")
    assert w(torch.tensor([0.5, -0.25])).tolist() == [1.0, 0.5]  # max below 1 still divides
    assert w(torch.tensor([0.0, 0.0])).tolist() == [1.0, 1.0]  # all-zero margins: weight 1, not NaN
    assert w(torch.tensor([])).tolist() == []


def test_check_weights_names_the_row():
    assert check_weights([1, 0.5, 0], "train.jsonl") == [1.0, 0.5, 0.0]
    assert check_weights([0, 0], "eval", learning=False) == [0.0, 0.0]
    assert check_weights([], "empty") == []
    for i, bad in enumerate([True, "1", math.nan, math.inf, -0.5, None]):
        weights = [1.0] * i + [bad]
        msg = rf"^train.jsonl, row {i + 1}: column 'w' must be a finite number >= 0, got {re.escape(repr(bad))}$"
        with pytest.raises(DataError, match=msg):
            check_weights(weights, "train.jsonl", column="w")
    with pytest.raises(DataError, match=r"^d: every 'weight' is 0: the weighted loss would be 0 and nothing"):
        check_weights([0, 0.0], "d")


def test_formulas_with_spaces_and_top_n_bounds():
    assert get_weighting(" 1 - exp(-|d|) ") is get_weighting("one-minus-exp")
    assert get_weighting("tanh( |d| / 2 )") is get_weighting("confidence")
    top = get_weighting("top-30")
    assert (top.name, top.formula) == ("top-30", "1[|d| in top 30%]")
    assert get_weighting("top-0.5").name == "top-0.5"  # any N in (0, 100]
    with pytest.raises(ConfigError, match=r"N in top-N must be in \(0, 100\], got 100.5"):
        get_weighting("top-100.5")
