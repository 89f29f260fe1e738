"""The smallest DPOTrainer subclass that carries a per-example ``weight`` column (TRL 1.16 pinned).

TRL 1.16's ``DPOTrainer._compute_loss`` averages the per-sequence loss inside one 330-line method
(``per_sequence_loss.mean()``) and has no per-example weight (its ``use_weighting`` is WPO,
computed from the policy). The weight has to survive four places, and this module touches exactly
those:

1. the dataset: TRL's ``_prepare_dataset`` keeps extra columns, and
   :meth:`WeightedDPOTrainer._set_signature_columns_if_needed` adds ``weight`` so the Trainer's
   ``remove_unused_columns`` keeps it;
2. the collator: :class:`WeightedPreferenceCollator` adds a ``weight`` tensor to the batch;
3. the reference forward: :meth:`compute_ref_log_probs` strips ``weight`` before TRL's own code
   (so ``precompute_ref_log_probs`` works unchanged);
4. the loss: :meth:`_compute_loss` runs the same policy forward as TRL (fused LM head, same
   labels), takes the reference log-probs from TRL's own ``compute_ref_log_probs`` (or the
   precomputed columns), and replaces TRL's if/elif chain by the pure functions of
   :mod:`cwpo.losses`, reduced as E[w·ℓ].

``tests/align/test_trainer.py`` proves that with every weight 1 the loss equals TRL's own for
``sigmoid``, ``ipo`` and ``robust`` on the same batch to 1e-6, so a TRL upgrade that drifts fails.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import TrainerCallback
from trl import DPOConfig, DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from cwpo.errors import ConfigError
from cwpo.losses import LossType, logged_implicit_reward, weighted_preference_loss
from cwpo.models import fast_head
from cwpo.weighting import check_weights

TESTED_TRL = (1, 16)  # the minor release this subclass is tested against


def check_trl_version() -> str:
    """Refuse a TRL outside the tested minor release (``CWPO_ALLOW_UNTESTED_TRL=1`` only warns)."""
    import trl

    version = trl.__version__
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        major, minor = (-1, -1)
    if (major, minor) != TESTED_TRL:
        msg = (
            f"cwpo's WeightedDPOTrainer overrides DPOTrainer internals tested with trl "
            f"{TESTED_TRL[0]}.{TESTED_TRL[1]}.x, but trl {version} is installed: pip install 'trl>=1.16,<1.17'"
        )
        if os.environ.get("CWPO_ALLOW_UNTESTED_TRL") == "1":
            warnings.warn(msg + " (continuing because CWPO_ALLOW_UNTESTED_TRL=1)", stacklevel=2)
        else:
            raise ConfigError(msg + " (or set CWPO_ALLOW_UNTESTED_TRL=1 to try anyway)")
    return version


@dataclass
class WeightedDPOConfig(DPOConfig):
    """TRL's ``DPOConfig`` plus what the weighted loss needs beyond it.

    The loss follows ``loss_type`` as in TRL: ``sigmoid`` is DPO, ``ipo`` IPO and ``robust``
    robust DPO (ε is ``label_smoothing``), each weighted by the dataset's ``weight`` column.
    """

    tau: float | None = field(
        default=None, metadata={"help": "IPO τ (default: beta, which is what TRL uses as τ)"}
    )


@dataclass
class WeightedPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator plus a float ``weight`` tensor [B]; a row without a finite weight
    >= 0 is refused (never silently weight 1)."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        out = super().torch_call(examples)
        if any("weight" not in ex for ex in examples):
            raise ConfigError(
                f"a batch row has no {WEIGHT!r} column (it has {sorted(examples[0])}): {_ADD_WEIGHT}"
            )
        weights = check_weights([ex["weight"] for ex in examples], "batch", learning=False)
        out["weight"] = torch.tensor(weights, dtype=torch.float32)
        return out


WEIGHT = "weight"
_ADD_WEIGHT = "WeightedDPOTrainer weighs each pair's loss by it; add one (1.0 everywhere is plain DPO)"


def check_weight_column(dataset, name: str, learning: bool) -> None:
    """Refuse a dataset (or dict of datasets) without a valid ``weight`` column, naming the row.

    A dataset that does not list its columns (an ``IterableDataset``) is checked batch by batch
    by :class:`WeightedPreferenceCollator` instead.
    """
    if isinstance(dataset, dict):
        for key, part in dataset.items():
            check_weight_column(part, f"{name}[{key!r}]", learning)
        return
    columns = getattr(dataset, "column_names", None)
    if not isinstance(columns, list):
        return
    if WEIGHT not in columns:
        raise ConfigError(f"{name} has no {WEIGHT!r} column (it has {columns}): {_ADD_WEIGHT}")
    check_weights(dataset[WEIGHT], name, learning=learning)


def length_groups(attention_mask: torch.Tensor, slack: float = 0.8, min_rows: int = 4):
    """Rows of a right-padded batch grouped by length: ``[(row indices, width), ...]``, or None.

    Rows sorted longest first; a new group starts when a row is shorter than ``slack`` x the
    group's longest and the group has ``min_rows`` rows (tiny groups run matmuls too thin to be
    fast). None when one group would hold every row (no padding to save).
    """
    lengths = attention_mask.sum(dim=1)
    if attention_mask.size(0) < 2 * min_rows or bool((attention_mask[:, :-1] < attention_mask[:, 1:]).any()):
        return None  # too small to split, or not right-padded
    order = torch.argsort(lengths, descending=True, stable=True).tolist()
    lens = lengths.tolist()
    groups: list[list[int]] = [[order[0]]]
    for i in order[1:]:
        head = lens[groups[-1][0]]
        if len(groups[-1]) >= min_rows and lens[i] < slack * head:
            groups.append([i])
        else:
            groups[-1].append(i)
    if len(groups) > 1 and len(groups[-1]) < min_rows:  # fold a thin tail into the group before it
        groups[-2].extend(groups.pop())
    if len(groups) == 1:
        return None
    device = attention_mask.device
    return [(torch.tensor(g, device=device), max(2, int(lens[g[0]]))) for g in groups]


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step, logged as ``step_time_s`` with the step's other metrics."""

    def __init__(self, trainer: WeightedDPOTrainer):
        self.trainer = trainer
        self._start: float | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._start is not None:
            self.trainer._metrics["train"]["step_time_s"].append(time.perf_counter() - self._start)


class WeightedDPOTrainer(DPOTrainer):
    """DPOTrainer whose loss is E[w · ℓ] with ℓ from :mod:`cwpo.losses` and w the ``weight`` column.

    A drop-in for TRL's ``DPOTrainer`` (same arguments): the loss is ``args.loss_type``
    (``sigmoid``/``ipo``/``robust`` = DPO/IPO/rDPO) unless ``cw_loss`` (dpo/ipo/rdpo) says so,
    which must then agree with it. β and ε come from ``args.beta`` / ``args.label_smoothing`` (as
    in TRL); τ for IPO is ``cw_tau``, else ``args.tau`` of a :class:`WeightedDPOConfig`, else β.
    """

    def __init__(
        self,
        *args,
        cw_loss: str | LossType | None = None,
        cw_tau: float | None = None,
        cw_length_groups: bool = True,
        cw_response_head: bool = True,
        **kwargs,
    ):
        check_trl_version()
        self.cw_length_groups = cw_length_groups
        self.cw_response_head = cw_response_head
        train_args = kwargs.get("args")
        if cw_loss is None:
            cw_loss = LossType.from_trl(train_args.loss_type) if train_args is not None else LossType.DPO
        self.cw_loss = LossType.parse(cw_loss)
        if train_args is not None and train_args.loss_type != [self.cw_loss.trl_name]:
            raise ConfigError(
                f"DPOConfig.loss_type {train_args.loss_type} does not match cw_loss {self.cw_loss.value!r} "
                f"(expected [{self.cw_loss.trl_name!r}])"
            )
        datasets = inspect.signature(DPOTrainer.__init__).bind_partial(self, *args, **kwargs).arguments
        check_weight_column(datasets.get("train_dataset"), "train_dataset", learning=True)
        check_weight_column(datasets.get("eval_dataset"), "eval_dataset", learning=False)
        if kwargs.get("data_collator") is None and train_args is not None:
            tok = kwargs.get("processing_class")
            pad_id = (
                tok.pad_token_id if tok.pad_token_id is not None else tok.convert_tokens_to_ids(tok.eos_token)
            )
            kwargs["data_collator"] = WeightedPreferenceCollator(
                pad_token_id=pad_id,
                max_length=train_args.max_length,
                truncation_mode=train_args.truncation_mode,
                pad_to_multiple_of=train_args.pad_to_multiple_of,
            )
        super().__init__(*args, **kwargs)
        if cw_tau is None:
            cw_tau = getattr(train_args, "tau", None)
        self.cw_tau = self.beta if cw_tau is None else cw_tau
        self.add_callback(StepTimer(self))

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        if "weight" not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, "weight"]

    def compute_ref_log_probs(self, model, inputs):
        return super().compute_ref_log_probs(model, {k: v for k, v in inputs.items() if k != "weight"})

    def _policy_logps(self, model, inputs) -> torch.Tensor:
        """Σ log π(y|x) per row.

        One process, plain text batches (the default): the LM head runs at the response tokens
        only (``cw_response_head``, :mod:`cwpo.models.fast_head`) and the rows run in groups of
        similar length, each cut to its own longest row (``cw_length_groups``; rows are
        right-padded, so cutting columns changes no real token). Both match TRL's one padded
        fused-head forward to float rounding (``tests/align/test_fast_paths.py``,
        ``test_fast_head.py``). Otherwise: TRL's fused-LM-head forward as is.
        """
        non_model = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps", "weight"}
        model_kwargs = {k: v for k, v in inputs.items() if k not in non_model}
        model_kwargs["use_cache"] = False
        completion_mask = inputs["completion_mask"]
        plain = self.accelerator.num_processes == 1 and set(model_kwargs) == {
            "input_ids",
            "attention_mask",
            "use_cache",
        }
        head = plain and self.cw_response_head and fast_head.supports(fast_head.causal_lm(model))
        groups = length_groups(inputs["attention_mask"]) if plain and self.cw_length_groups else None
        if groups is None:
            groups = [(None, completion_mask.size(1))]
        parts, order = [], []
        for rows, width in groups:
            sel = slice(None) if rows is None else rows
            ids = inputs["input_ids"][sel, :width]
            attn = inputs["attention_mask"][sel, :width]
            cmask = completion_mask[sel, :width]
            if head:
                parts.append(fast_head.response_logps(model, ids, attn, cmask))
            else:
                kw = dict(model_kwargs, input_ids=ids, attention_mask=attn)
                out = model(**kw, labels=ids.masked_fill(cmask == 0, -100), fused_lm_head=True)
                parts.append(out.log_probs[:, -(width - 1) :].sum(dim=1))
            order.append(rows)
        if order[0] is None:
            return parts[0]
        rows = torch.cat(order)
        inverse = torch.empty_like(rows)
        inverse[rows] = torch.arange(rows.numel(), device=rows.device)
        return torch.cat(parts)[inverse]

    def _compute_loss(self, model, inputs, return_outputs):
        if return_outputs:
            raise NotImplementedError("WeightedDPOTrainer does not return logits (use prediction_loss_only)")
        mode = "train" if self.model.training else "eval"
        completion_mask = inputs["completion_mask"]
        logps = self._policy_logps(model, inputs)
        chosen_logps, rejected_logps = logps.chunk(2, dim=0)  # batch is [chosen, rejected]

        if self.precompute_ref_logps:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_chosen, ref_rejected = self.compute_ref_log_probs(self.ref_model or self.model, inputs)

        weight = inputs.get("weight")
        n_chosen, n_rejected = (m.sum(dim=1).clamp(min=1.0) for m in completion_mask.chunk(2, dim=0))
        loss, per_example = weighted_preference_loss(
            self.cw_loss,
            chosen_logps,
            rejected_logps,
            ref_chosen,
            ref_rejected,
            weight,
            chosen_tokens=n_chosen,
            rejected_tokens=n_rejected,
            beta=self.beta,
            epsilon=self.label_smoothing,
            tau=self.cw_tau,
        )

        gather = self.accelerator.gather_for_metrics
        chosen_rewards = logged_implicit_reward(chosen_logps, ref_chosen, self.beta)
        rejected_rewards = logged_implicit_reward(rejected_logps, ref_rejected, self.beta)
        metrics = self._metrics[mode]
        metrics["rewards/chosen"].append(gather(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(gather(rejected_rewards).mean().item())
        metrics["rewards/accuracies"].append(
            gather((chosen_rewards > rejected_rewards).float()).mean().item()
        )
        metrics["rewards/margins"].append(gather(chosen_rewards - rejected_rewards).mean().item())
        metrics["logps/chosen"].append(gather(chosen_logps.detach()).mean().item())
        metrics["logps/rejected"].append(gather(rejected_logps.detach()).mean().item())
        metrics["loss/unweighted"].append(gather(per_example.detach()).mean().item())
        if weight is not None:
            metrics["weight/mean"].append(gather(weight).mean().item())
        if mode == "train":
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item()
        metrics["num_tokens"] = [self._total_train_tokens]
        return loss
