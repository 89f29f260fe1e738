"""Loss values by hand, the confidence formula, calibration metrics and temperature fitting."""

from __future__ import annotations

import math

import pytest
import torch

from cwpo.annotator.calibration import agreement, calibration_report, fit_temperature, top_fraction_accuracy
from cwpo.annotator.reward_model_losses import bt_loss, pairrm_loss
from cwpo.weighting import confidence


def test_bt_loss_hand_values():
    # Δ = r_w − r_l = [0, 1, 2]; −log σ(Δ) = log(1 + e^{−Δ}) = [log 2, 0.313262, 0.126928]
    loss = bt_loss(torch.tensor([0.5, 1.0, -1.0]), torch.tensor([0.5, 0.0, -3.0]))
    assert loss.shape == (3,)
    torch.testing.assert_close(loss, torch.tensor([0.693147, 0.313262, 0.126928]), atol=1e-6, rtol=0)


def test_bt_loss_prefers_correct_order_and_is_stable():
    assert bt_loss(torch.tensor(2.0), torch.tensor(0.0)) < bt_loss(torch.tensor(0.0), torch.tensor(2.0))
    big = bt_loss(torch.tensor([1e4, -1e4]), torch.tensor([0.0, 0.0]))
    assert torch.isfinite(big).all() and big[0] == 0 and big[1] == pytest.approx(1e4)


def test_pairrm_loss_hand_values():
    # f(x, y_w, y_l) = 1, f(x, y_l, y_w) = −1: 2·log(1 + e^{−1}) = 0.626523; zeros: 2 log 2
    loss = pairrm_loss(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0]))
    torch.testing.assert_close(loss, torch.tensor([0.626523, 1.386294]), atol=1e-6, rtol=0)


def test_confidence_formula_and_range():
    m = torch.linspace(-12, 12, 241, dtype=torch.float64)
    c = confidence(m)
    torch.testing.assert_close(c, 2 * torch.sigmoid(m.abs()) - 1)
    assert (c >= 0).all() and (c < 1).all()
    assert confidence(1.0) == pytest.approx(0.462117, abs=1e-6)
    assert confidence(-2.0) == pytest.approx(0.761594, abs=1e-6)
    assert confidence(0.0) == 0.0


def test_agreement_and_top_fraction():
    m = [3.0, -2.0, 0.0, 1.0, -0.5, 0.2, 4.0, -5.0, 0.1, 2.5]
    assert agreement(m).tolist() == [1, 0, 0.5, 1, 0, 1, 1, 0, 1, 1]
    # 30% most confident of 10: |Δ| = 5 (wrong), 4, 3 (right) → 2/3
    assert top_fraction_accuracy(m, 0.3) == pytest.approx(2 / 3)


def test_calibration_report_bins_and_ece():
    # All margins 2.0 and all right: p = σ(2) = 0.880797 → ECE = 1 − 0.880797
    rep = calibration_report([2.0] * 4)
    assert rep["accuracy"] == 1.0 and rep["n"] == 4
    assert rep["ece"] == pytest.approx(1 - 1 / (1 + math.exp(-2)), abs=1e-9)
    assert sum(rep["confidence_histogram"]) == 4
    assert rep["confidence_histogram"][7] == 4  # c = 0.7616 falls in [0.7, 0.8)
    with pytest.raises(ValueError, match="NaN"):
        calibration_report([1.0, float("nan")])


def test_fit_temperature_recovers_known_scale():
    g = torch.Generator().manual_seed(0)
    true = torch.randn(20000, generator=g, dtype=torch.float64) * 2
    agree = torch.rand(20000, generator=g, dtype=torch.float64) < torch.sigmoid(true.abs())
    signed = torch.where(agree, true.abs(), -true.abs())  # calibrated margins
    t = fit_temperature(signed * 3)  # an over-confident annotator
    assert t == pytest.approx(3.0, rel=0.08)
    before, after = calibration_report(signed * 3), calibration_report(signed * 3, t)
    assert after["ece"] < before["ece"] and after["nll"] < before["nll"]
    assert after["accuracy"] == before["accuracy"]  # temperature never flips a label
