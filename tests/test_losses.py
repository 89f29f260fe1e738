"""Loss vectors derived by hand, and the properties every preference loss must have.

Derivation (β = 0.1). Policy chosen/rejected log-probs [-0.5, -10, -1] / [-0.1, -30, -21],
reference [-0.5, -10.1, -0.1] / [-0.1, -20.1, -0.1]:
  chosen log-ratio   = [0, 0.1, -0.9],  rejected log-ratio = [0, -9.9, -20.9]
  h = chosen - rejected = [0, 10, 20],  βh = [0, 1, 2].
DPO  −log σ(βh): −log σ(0) = log 2 = 0.693147; −log σ(1) = log(1 + e^−1) = 0.313262;
     −log σ(2) = log(1 + e^−2) = 0.126928.
rDPO ε = 0.1: [(0.9)(−log σ(βh)) + 0.1 log σ(−βh)] / 0.8, with log σ(−x) = −x − log(1+e^−x):
     βh=0: (0.9·0.693147 − 0.1·0.693147)/0.8 = 0.693147;
     βh=1: (0.9·0.313262 − 0.1·1.313262)/0.8 = 0.188262;
     βh=2: (0.9·0.126928 − 0.1·2.126928)/0.8 = −0.123072.
IPO on summed log-probs, τ = 0.1: (h − 1/(2τ))² = (h − 5)² = [25, 25, 225].
"""

from __future__ import annotations

import pytest
import torch

from cwpo.errors import ConfigError
from cwpo.losses import (
    LossType,
    dpo_loss,
    ipo_loss,
    logratio_margin,
    preference_loss,
    rdpo_loss,
    weighted_mean,
    weighted_preference_loss,
)

PC = torch.tensor([-0.5, -10.0, -1.0], dtype=torch.float64)
PR = torch.tensor([-0.1, -30.0, -21.0], dtype=torch.float64)
RC = torch.tensor([-0.5, -10.1, -0.1], dtype=torch.float64)
RR = torch.tensor([-0.1, -20.1, -0.1], dtype=torch.float64)


def test_margin():
    torch.testing.assert_close(
        logratio_margin(PC, PR, RC, RR), torch.tensor([0.0, 10.0, 20.0], dtype=torch.float64)
    )


def test_dpo_vector():
    expected = torch.tensor([0.693147, 0.313262, 0.126928], dtype=torch.float64)
    torch.testing.assert_close(dpo_loss(PC, PR, RC, RR, beta=0.1), expected, atol=1e-6, rtol=0)


def test_rdpo_vector():
    expected = torch.tensor([0.693147, 0.188262, -0.123072], dtype=torch.float64)
    torch.testing.assert_close(rdpo_loss(PC, PR, RC, RR, beta=0.1, epsilon=0.1), expected, atol=1e-6, rtol=0)


def test_ipo_vector():
    expected = torch.tensor([25.0, 25.0, 225.0], dtype=torch.float64)
    torch.testing.assert_close(ipo_loss(PC, PR, RC, RR, tau=0.1), expected, atol=1e-9, rtol=0)


def test_rdpo_eps0_is_dpo():
    g = torch.Generator().manual_seed(0)
    x = [torch.randn(32, generator=g, dtype=torch.float64) * 20 for _ in range(4)]
    torch.testing.assert_close(rdpo_loss(*x, beta=0.3, epsilon=0.0), dpo_loss(*x, beta=0.3))


@pytest.mark.parametrize("loss", ["dpo", "ipo", "rdpo"])
def test_weight_one_is_unweighted_and_zero_removes(loss):
    g = torch.Generator().manual_seed(1)
    x = [torch.randn(8, generator=g, dtype=torch.float64) for _ in range(4)]
    per = preference_loss(loss, *x, beta=0.5, epsilon=0.2)
    assert per.shape == (8,)
    torch.testing.assert_close(weighted_mean(per, torch.ones(8)), per.mean())
    w = torch.tensor([0.0] * 4 + [1.0] * 4)
    torch.testing.assert_close(weighted_mean(per, w), per[4:].sum() / 8)


@pytest.mark.parametrize("loss", ["dpo", "rdpo", "ipo"])
def test_preferred_ordering_has_lower_loss(loss):
    # h = 2 (policy prefers the chosen more than the reference does) vs h = -2 (the reverse)
    good = preference_loss(
        loss, torch.tensor([-1.0]), torch.tensor([-3.0]), torch.zeros(1), torch.zeros(1), beta=0.5
    )
    bad = preference_loss(
        loss, torch.tensor([-3.0]), torch.tensor([-1.0]), torch.zeros(1), torch.zeros(1), beta=0.5
    )
    assert good.item() < bad.item()


@pytest.mark.parametrize("loss", ["dpo", "ipo", "rdpo"])
def test_no_nan_on_extreme_values(loss):
    big = torch.tensor([-1e4, 0.0, -1e-8], requires_grad=True)
    out = preference_loss(loss, big, -big.detach() * 3, torch.zeros(3), torch.full((3,), -5e3), beta=1.0)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(big.grad).all()


def test_bad_hyperparameters_and_names():
    x = [torch.zeros(2)] * 4
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(*x, beta=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        rdpo_loss(*x, epsilon=0.5)
    with pytest.raises(ValueError, match="tau"):
        ipo_loss(*x, tau=-1)
    with pytest.raises(ConfigError, match=r"valid: \['dpo', 'ipo', 'rdpo'\]"):
        LossType.parse("kto")
    assert LossType.parse("rDPO").trl_name == "robust" and LossType.IPO.length_normalized


def test_default_hyperparameters():
    x = [PC, PR, RC, RR]
    torch.testing.assert_close(dpo_loss(*x), dpo_loss(*x, beta=0.1))
    torch.testing.assert_close(ipo_loss(*x), ipo_loss(*x, tau=0.1))
    torch.testing.assert_close(rdpo_loss(*x), rdpo_loss(*x, beta=0.1, epsilon=0.1))
    n = torch.ones(3, dtype=torch.float64)
    for loss in ("dpo", "rdpo"):
        default, _ = weighted_preference_loss(loss, *x, None, chosen_tokens=n, rejected_tokens=n)
        explicit, _ = weighted_preference_loss(
            loss, *x, None, chosen_tokens=n, rejected_tokens=n, beta=0.1, epsilon=0.1
        )
        assert default.item() == pytest.approx(explicit.item(), abs=1e-12)
    with pytest.raises(ValueError, match="tau must be > 0, got 0"):
        ipo_loss(*x, tau=0.0)


def test_weighted_step_passes_beta_through():
    # β = 0.5 on h = [0, 10, 20]: −log σ([0, 5, 10]) = [log 2, log(1 + e^−5), log(1 + e^−10)]
    n = torch.ones(3, dtype=torch.float64)
    _, per = weighted_preference_loss(
        "dpo", PC, PR, RC, RR, None, chosen_tokens=n, rejected_tokens=n, beta=0.5
    )
    expected = torch.tensor([0.693147, 0.006715, 0.0000454], dtype=torch.float64)
    torch.testing.assert_close(per, expected, atol=1e-6, rtol=0)


def test_loss_from_trl_name():
    assert LossType.from_trl("ipo") is LossType.IPO
    assert LossType.from_trl(["robust"]) is LossType.RDPO
    assert LossType.from_trl(["sigmoid"]) is LossType.DPO
    msg = r"^loss_type \['sigmoid', 'ipo'\] has no weighted form: use exactly one of \['ipo', 'robust', 'sigmoid'\] \(dpo, ipo, rdpo\)$"
    with pytest.raises(ConfigError, match=msg):
        LossType.from_trl(["sigmoid", "ipo"])
    for bad in (["hinge"], [], "hinge"):
        with pytest.raises(ConfigError, match="has no weighted form"):
            LossType.from_trl(bad)


def test_preference_loss_default_beta():
    torch.testing.assert_close(preference_loss("dpo", PC, PR, RC, RR), dpo_loss(PC, PR, RC, RR, beta=0.1))
