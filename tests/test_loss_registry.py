"""The loss registry: every place that names a loss reads it, and the one weighted step.

Hand-computed vectors for :func:`weighted_preference_loss` (weights w = [0.5, 1]):
policy chosen/rejected log-probs [-1, -4] / [-6, -3], reference [-2, -2] / [-2, -1],
response lengths chosen [1, 2], rejected [2, 1].
  summed: h = (pc − rc) − (pr − rr) = [1 − (−4), −2 − (−2)] = [5, 0], β = 0.1 → βh = [0.5, 0]
  DPO  ℓ = [log(1 + e^−0.5), log 2] = [0.474077, 0.693147]; E[wℓ] = (0.237038 + 0.693147)/2 = 0.465093
  rDPO ε = 0.1: βh = 0.5 → (0.9·0.474077 − 0.1·0.974077)/0.8 = 0.411577; βh = 0 → 0.693147;
       E[wℓ] = (0.205788 + 0.693147)/2 = 0.449468
  IPO (length-averaged), τ = 0.5: chosen [1/1, −2/2] = [1, −1], rejected [−4/2, −2/1] = [−2, −2],
       h = [3, 1], ℓ = (h − 1)² = [4, 0]; E[wℓ] = (2 + 0)/2 = 1.0
       (on summed log-probs it would be (5 − 1)², (0 − 1)² = [16, 1]: the length branch matters)
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch

from cwpo.align.align import AlignConfig
from cwpo.align.online import OnlineConfig
from cwpo.errors import ConfigError
from cwpo.experiments import methods
from cwpo.losses import LOSS_NAMES, LOSS_REGISTRY, LossType, preference_loss, weighted_preference_loss

PC = torch.tensor([-1.0, -4.0], dtype=torch.float64)
PR = torch.tensor([-6.0, -3.0], dtype=torch.float64)
RC = torch.tensor([-2.0, -2.0], dtype=torch.float64)
RR = torch.tensor([-2.0, -1.0], dtype=torch.float64)
N_C = torch.tensor([1.0, 2.0], dtype=torch.float64)
N_R = torch.tensor([2.0, 1.0], dtype=torch.float64)
W = torch.tensor([0.5, 1.0])


@pytest.mark.parametrize(
    ("loss", "per_example", "weighted", "hyper"),
    [
        ("dpo", [0.474077, 0.693147], 0.465093, {"beta": 0.1}),
        ("rdpo", [0.411577, 0.693147], 0.449468, {"beta": 0.1, "epsilon": 0.1}),
        ("ipo", [4.0, 0.0], 1.0, {"beta": 0.1, "tau": 0.5}),
    ],
)
def test_weighted_step_vectors(loss, per_example, weighted, hyper):
    total, per = weighted_preference_loss(
        loss, PC, PR, RC, RR, W, chosen_tokens=N_C, rejected_tokens=N_R, **hyper
    )
    torch.testing.assert_close(per, torch.tensor(per_example, dtype=torch.float64), atol=1e-6, rtol=0)
    assert total.item() == pytest.approx(weighted, abs=1e-6)


def test_unweighted_step_is_the_plain_mean():
    total, per = weighted_preference_loss("dpo", PC, PR, RC, RR, None, chosen_tokens=N_C, rejected_tokens=N_R)
    assert total.item() == pytest.approx(per.mean().item())


def test_registry_entries():
    assert LOSS_NAMES == ("dpo", "ipo", "rdpo")
    assert {n: (r.trl_name, r.params, r.length_normalized) for n, r in LOSS_REGISTRY.items()} == {
        "dpo": ("sigmoid", ("beta",), False),
        "ipo": ("ipo", ("tau",), True),
        "rdpo": ("robust", ("beta", "epsilon"), False),
    }
    for name, registered in LOSS_REGISTRY.items():
        assert LossType.from_trl(registered.trl_name) == LossType.parse(name)
        assert LossType.parse(name).uses_epsilon == ("epsilon" in registered.params)
        assert LossType.parse(name).uses_tau == ("tau" in registered.params)
    with pytest.raises(ConfigError, match="no weighted form"):
        LossType.from_trl(["sigmoid", "ipo"])


def test_tau_defaults_to_beta():
    torch.testing.assert_close(
        preference_loss("ipo", PC, PR, RC, RR, beta=0.25), preference_loss("ipo", PC, PR, RC, RR, tau=0.25)
    )


def _choices(cls, name):
    return typing.get_args(typing.get_type_hints(cls)[name])


def test_every_loss_name_comes_from_the_registry():
    assert _choices(AlignConfig, "loss") == LOSS_NAMES
    assert _choices(OnlineConfig, "loss") == LOSS_NAMES
    assert methods.LOSSES == LOSS_NAMES
    assert tuple(t.value for t in LossType) == LOSS_NAMES
    for name in LOSS_NAMES:  # every registered loss is a valid method loss and align config loss
        methods.Method("weak", "confidence", name).validate(name)
        assert dataclasses.replace(AlignConfig(train="t", output="o", policy="p"), loss=name).loss == name
