"""Preference-optimization losses as pure functions of per-sequence log-probabilities.

Every function takes the summed (or, for TRL-style IPO, length-averaged) log-probabilities of
the chosen and rejected responses under the policy πθ and the reference πref, and returns the
*unreduced* per-example loss, shape [B]. The caller applies the per-pair weight (the confidence
c of CW-PO) and the reduction, so weighting never touches the loss math.

With h = [log πθ(y_w|x) − log πref(y_w|x)] − [log πθ(y_l|x) − log πref(y_l|x)]:

* DPO (Rafailov et al. 2023):   ℓ = −log σ(β h)
* IPO (Azar et al. 2023):       ℓ = (h − 1/(2τ))²   (TRL averages the log-probs over completion
  tokens before forming h; :class:`cwpo.align.trainer.WeightedDPOTrainer` does the same, this
  function is agnostic: it squares whatever h it is given)
* rDPO (Chowdhury et al. 2024): ℓ = [(1 − ε)(−log σ(β h)) + ε log σ(−β h)] / (1 − 2ε)
  for a label-flip rate ε ∈ [0, 1/2). TRL calls this loss ``robust`` and ε ``label_smoothing``.

:data:`LOSS_REGISTRY` is the one list of losses: each entry names its function, the
hyper-parameters it reads, whether it wants length-averaged log-probs and TRL's ``loss_type``.
The CLI choices, the methods of :mod:`cwpo.experiments.methods`, the offline trainer, the online
loop and the TRL names are all read from it, and :func:`weighted_preference_loss` is the one
weighted step both trainers take. A new loss is its function plus one entry here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cwpo.errors import ConfigError


def logratio_margin(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
) -> torch.Tensor:
    """h = (log πθ(y_w) − log πref(y_w)) − (log πθ(y_l) − log πref(y_l)), per example."""
    return (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)


def _check_beta(beta: float) -> None:
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float = 0.1) -> torch.Tensor:
    """ℓ_DPO = −log σ(β h), per example."""
    _check_beta(beta)
    h = logratio_margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    return -F.logsigmoid(beta * h)


def ipo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, tau: float = 0.1) -> torch.Tensor:
    """ℓ_IPO = (h − 1/(2τ))², per example (h from whatever log-probs are passed: summed or averaged)."""
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    h = logratio_margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    return (h - 1 / (2 * tau)) ** 2


def rdpo_loss(
    policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float = 0.1, epsilon: float = 0.1
) -> torch.Tensor:
    """ℓ_rDPO = [(1−ε)(−log σ(βh)) + ε log σ(−βh)] / (1−2ε), per example; ε = 0 gives DPO."""
    _check_beta(beta)
    if not 0 <= epsilon < 0.5:
        raise ValueError(f"epsilon must be in [0, 0.5), got {epsilon}")
    h = logratio_margin(policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    return ((1 - epsilon) * -F.logsigmoid(beta * h) + epsilon * F.logsigmoid(-beta * h)) / (1 - 2 * epsilon)


@dataclass(frozen=True)
class RegisteredLoss:
    """A preference loss: its name, its per-example function and what the function reads.

    ``params`` are the hyper-parameters passed to ``function`` by keyword (from ``beta``,
    ``epsilon``, ``tau``); ``length_normalized`` asks for log-probs averaged over the completion
    tokens instead of summed; ``trl_name`` is TRL's ``DPOConfig.loss_type`` for the same loss.
    """

    name: str
    function: Callable[..., torch.Tensor]
    params: tuple[str, ...]
    length_normalized: bool
    trl_name: str


LOSS_REGISTRY: dict[str, RegisteredLoss] = {
    loss.name: loss
    for loss in (
        RegisteredLoss("dpo", dpo_loss, ("beta",), length_normalized=False, trl_name="sigmoid"),
        # IPO on log-probs averaged over completion tokens: TRL's choice, confirmed by the IPO authors
        RegisteredLoss("ipo", ipo_loss, ("tau",), length_normalized=True, trl_name="ipo"),
        RegisteredLoss("rdpo", rdpo_loss, ("beta", "epsilon"), length_normalized=False, trl_name="robust"),
    )
}
LOSS_NAMES: tuple[str, ...] = tuple(LOSS_REGISTRY)


class _LossName(str, enum.Enum):
    """A registered loss by name; its properties read :data:`LOSS_REGISTRY`."""

    @property
    def registered(self) -> RegisteredLoss:
        return LOSS_REGISTRY[self.value]

    @property
    def trl_name(self) -> str:
        return self.registered.trl_name

    @property
    def uses_epsilon(self) -> bool:
        return "epsilon" in self.registered.params

    @property
    def uses_tau(self) -> bool:
        return "tau" in self.registered.params

    @property
    def length_normalized(self) -> bool:
        return self.registered.length_normalized

    @classmethod
    def from_trl(cls, loss_type: str | list[str]):
        """The loss of a TRL ``DPOConfig.loss_type`` (one registered ``trl_name``, alone)."""
        names = [loss_type] if isinstance(loss_type, str) else list(loss_type)
        by_trl = {t.trl_name: t for t in cls}
        if len(names) != 1 or names[0] not in by_trl:
            raise ConfigError(
                f"loss_type {names} has no weighted form: use exactly one of {sorted(by_trl)} "
                f"({', '.join(LOSS_NAMES)})"
            )
        return by_trl[names[0]]

    @classmethod
    def parse(cls, name):
        if isinstance(name, cls):
            return name
        try:
            return cls(str(name).lower())
        except ValueError:
            raise ConfigError(f"unknown loss {name!r}; valid: {[t.value for t in cls]}") from None


# The registered losses as a str enum (LossType.DPO == "dpo"), built from the registry.
LossType = _LossName("LossType", {name.upper(): name for name in LOSS_NAMES})


def preference_loss(
    loss_type: LossType | str,
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    *,
    beta: float = 0.1,
    epsilon: float = 0.1,
    tau: float | None = None,
) -> torch.Tensor:
    """The registered loss's per-example values; τ defaults to β (TRL's IPO reads β as τ)."""
    loss = LossType.parse(loss_type).registered
    hyper = {"beta": beta, "epsilon": epsilon, "tau": beta if tau is None else tau}
    return loss.function(
        policy_chosen, policy_rejected, ref_chosen, ref_rejected, **{p: hyper[p] for p in loss.params}
    )


def weighted_mean(per_example: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """E[w · ℓ] over the batch (the CW-PO objective); ``weights=None`` is the plain mean."""
    if weights is None:
        return per_example.mean()
    return (weights.to(per_example.dtype) * per_example).mean()


def weighted_preference_loss(
    loss_type: LossType | str,
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    chosen_tokens: torch.Tensor,
    rejected_tokens: torch.Tensor,
    beta: float = 0.1,
    epsilon: float = 0.1,
    tau: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weighted step of both trainers: (E[w · ℓ], per-example ℓ) from summed log-probs.

    A length-normalised loss (IPO) gets each log-ratio averaged over its response's tokens
    (``chosen_tokens``/``rejected_tokens``, >= 1) with a zero reference, in TRL's order: average
    the log-ratio, then take the difference.
    """
    pc, pr, rc, rr = policy_chosen, policy_rejected, ref_chosen, ref_rejected
    if LossType.parse(loss_type).length_normalized:
        pc, pr = (pc - rc) / chosen_tokens, (pr - rr) / rejected_tokens
        rc, rr = torch.zeros_like(pc), torch.zeros_like(pr)
    per_example = preference_loss(loss_type, pc, pr, rc, rr, beta=beta, epsilon=epsilon, tau=tau)
    return weighted_mean(per_example, weights), per_example


def logged_implicit_reward(policy, ref, beta: float) -> torch.Tensor:
    """DPO's implicit reward β (log πθ(y|x) − log πref(y|x)) of a batch, detached (for logging)."""
    return (beta * (policy - ref)).detach()
