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
"""

from __future__ import annotations

import enum

import torch
import torch.nn.functional as F

from cwpo.errors import ConfigError


class LossType(str, enum.Enum):
    """The loss families of the paper, with what each needs and its TRL name."""

    DPO = "dpo"
    IPO = "ipo"
    RDPO = "rdpo"

    @property
    def trl_name(self) -> str:
        return {"dpo": "sigmoid", "ipo": "ipo", "rdpo": "robust"}[self.value]

    @property
    def uses_epsilon(self) -> bool:
        return self is LossType.RDPO

    @property
    def uses_tau(self) -> bool:
        return self is LossType.IPO

    @property
    def length_normalized(self) -> bool:
        """IPO uses log-probs averaged over completion tokens (TRL's choice, confirmed by the IPO authors)."""
        return self is LossType.IPO

    @classmethod
    def from_trl(cls, loss_type: str | list[str]) -> LossType:
        """The loss of a TRL ``DPOConfig.loss_type`` (``sigmoid``, ``ipo`` or ``robust``, alone)."""
        names = [loss_type] if isinstance(loss_type, str) else list(loss_type)
        by_trl = {t.trl_name: t for t in cls}
        if len(names) != 1 or names[0] not in by_trl:
            raise ConfigError(
                f"loss_type {names} has no weighted form: use exactly one of {sorted(by_trl)} "
                "(dpo, ipo, rdpo)"
            )
        return by_trl[names[0]]

    @classmethod
    def parse(cls, name: str | LossType) -> LossType:
        if isinstance(name, LossType):
            return name
        try:
            return cls(str(name).lower())
        except ValueError:
            raise ConfigError(f"unknown loss {name!r}; valid: {[t.value for t in cls]}") from None


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
    """Dispatch on the loss type; τ defaults to β (TRL's IPO reads β as τ)."""
    loss_type = LossType.parse(loss_type)
    args = (policy_chosen, policy_rejected, ref_chosen, ref_rejected)
    if loss_type is LossType.DPO:
        return dpo_loss(*args, beta=beta)
    if loss_type is LossType.IPO:
        return ipo_loss(*args, tau=beta if tau is None else tau)
    return rdpo_loss(*args, beta=beta, epsilon=epsilon)


def implicit_rewards(policy, ref, beta: float) -> torch.Tensor:
    """DPO's implicit reward β (log πθ(y|x) − log πref(y|x)), detached (for logging)."""
    return (beta * (policy - ref)).detach()


def weighted_mean(per_example: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """E[w · ℓ] over the batch (the CW-PO objective); ``weights=None`` is the plain mean."""
    if weights is None:
        return per_example.mean()
    return (weights.to(per_example.dtype) * per_example).mean()
