"""The weighted path of WeightedDPOTrainer on hand-made log-probs (milliseconds, no model).

``_compute_loss`` is run on a bare trainer whose policy and reference log-probs are fixed
tensors, so the loss and every logged metric can be checked against numbers derived by hand:

    β = 0.1; policy chosen/rejected [-4, -6, -5] / [-7, -5, -5]; reference [-5, -5, -5] / [-5, -5, -5]
    chosen log-ratios [1, -1, 0], rejected [-2, 0, 0]  ->  h = [3, -1, 0]
    DPO per pair −log σ(βh): log(1 + e^−0.3) = 0.554355, log(1 + e^0.1) = 0.744397, log 2 = 0.693147
    weights [0.2, 0.7, 0.4]: E[w·ℓ] = (0.110871 + 0.521078 + 0.277259) / 3 = 0.303069
    rewards β·log-ratio: chosen [0.1, -0.1, 0], rejected [-0.2, 0, 0]; accuracy 1/3 (0 > 0 is no win)
    IPO (τ = 0.1) on log-ratios averaged over 2 / 4 / 1 chosen and 1 / 2 / 5 rejected tokens:
    h = [0.5 + 2, -0.25 - 0, 0 - 0] = [2.5, -0.25, 0]; (h − 5)² = [6.25, 27.5625, 25]
"""

from __future__ import annotations

import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from trl import DPOTrainer

from cwpo.align.trainer import WeightedDPOTrainer, WeightedPreferenceCollator, check_weight_column
from cwpo.errors import ConfigError, DataError
from cwpo.losses import LossType

PC = torch.tensor([-4.0, -6.0, -5.0], dtype=torch.float64)
PR = torch.tensor([-7.0, -5.0, -5.0], dtype=torch.float64)
RC = torch.full((3,), -5.0, dtype=torch.float64)
RR = torch.full((3,), -5.0, dtype=torch.float64)
W = torch.tensor([0.2, 0.7, 0.4])
DPO = [0.554355, 0.744397, 0.693147]
# completion masks: chosen rows have 2, 4, 1 tokens; rejected 1, 2, 5 (one row is all padding: >= 1)
CHOSEN_TOKENS, REJECTED_TOKENS = [2, 4, 1], [1, 2, 5]


def _mask(counts, width=6):
    return torch.tensor([[1] * n + [0] * (width - n) for n in counts], dtype=torch.long)


class _Accelerator:
    def __init__(self):
        self.gathered = []

    def gather_for_metrics(self, t):
        self.gathered.append(t)
        return t


def _bare(loss="dpo", training=True, precompute=True, ref_model=None, tau=None):
    """A WeightedDPOTrainer without __init__: the attributes _compute_loss reads, log-probs fixed."""
    t = object.__new__(WeightedDPOTrainer)
    t.model = SimpleNamespace(training=training, name="policy")
    t.ref_model = ref_model
    t.precompute_ref_logps = precompute
    t.accelerator = _Accelerator()
    t._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    t._total_train_tokens = 0
    t.cw_loss = LossType.parse(loss)
    t.beta, t.label_smoothing = 0.1, 0.2
    t.cw_tau = 0.1 if tau is None else tau
    t.seen = {}

    def policy_logps(model, inputs):
        t.seen["policy"] = (model, inputs)
        return torch.cat([PC, PR])

    t._policy_logps = policy_logps
    return t


def _inputs(weight=W, precompute=True):
    inputs = {
        "input_ids": torch.zeros(6, 6, dtype=torch.long),
        "attention_mask": torch.cat([_mask([3, 5, 2]), _mask([2, 4, 6])]),
        "completion_mask": torch.cat([_mask(CHOSEN_TOKENS), _mask(REJECTED_TOKENS)]),
    }
    if precompute:
        inputs |= {"ref_chosen_logps": RC, "ref_rejected_logps": RR}
    if weight is not None:
        inputs["weight"] = weight
    return inputs


def test_weighted_dpo_loss_and_metrics_by_hand():
    t = _bare()
    inputs = _inputs()
    loss = t._compute_loss(t.model, inputs, return_outputs=False)
    assert t.seen["policy"][0] is t.model and t.seen["policy"][1] is inputs
    assert loss.item() == pytest.approx(
        sum(w * v for w, v in zip(W.tolist(), DPO, strict=True)) / 3, abs=1e-6
    )
    assert loss.item() == pytest.approx(0.303069, abs=1e-6)
    m = t._metrics["train"]
    assert not t._metrics["eval"]
    expected = {
        "rewards/chosen": 0.0,  # mean of [0.1, -0.1, 0]
        "rewards/rejected": -0.2 / 3,
        "rewards/accuracies": 1 / 3,
        "rewards/margins": 0.2 / 3,  # mean of βh = [0.3, -0.1, 0]
        "logps/chosen": -5.0,
        "logps/rejected": -17 / 3,
        "loss/unweighted": sum(DPO) / 3,
        "weight/mean": 1.3 / 3,
    }
    for key, value in expected.items():
        assert m[key] == [pytest.approx(value, abs=1e-6)], key
    assert m["num_tokens"] == [10 + 12]  # every attention-mask 1 of the batch
    assert set(m) == {*expected, "num_tokens"}
    # every logged value went through the gather over ranks (8 metrics and the token count)
    assert len(t.accelerator.gathered) == 9
    loss2 = t._compute_loss(t.model, _inputs(), return_outputs=False)
    assert loss2.item() == pytest.approx(loss.item())
    assert m["num_tokens"] == [44] and len(m["weight/mean"]) == 2  # tokens add up, metrics append


def test_weight_is_paired_with_its_own_row():
    t = _bare()
    ours = t._compute_loss(t.model, _inputs(weight=W.flip(0)), return_outputs=False).item()
    assert ours == pytest.approx((0.4 * DPO[0] + 0.7 * DPO[1] + 0.2 * DPO[2]) / 3, abs=1e-6)
    assert abs(ours - 0.303069) > 1e-3


def test_no_weight_column_is_the_plain_mean_and_eval_mode():
    t = _bare(training=False)
    loss = t._compute_loss(t.model, _inputs(weight=None), return_outputs=False)
    assert loss.item() == pytest.approx(sum(DPO) / 3, abs=1e-6)
    m = t._metrics["eval"]
    assert "weight/mean" not in m and not t._metrics["train"]
    assert m["num_tokens"] == [0]  # evaluation batches are not training tokens
    assert t._total_train_tokens == 0


def test_ipo_averages_log_ratios_over_response_tokens():
    t = _bare("ipo")
    loss = t._compute_loss(t.model, _inputs(weight=torch.ones(3)), return_outputs=False)
    per = [6.25, 27.5625, 25.0]
    assert t._metrics["train"]["loss/unweighted"] == [pytest.approx(sum(per) / 3, abs=1e-6)]
    assert loss.item() == pytest.approx(sum(per) / 3, abs=1e-6)
    # the rewards stay β·(summed log-ratio), not the averaged ones
    assert t._metrics["train"]["rewards/chosen"] == [pytest.approx(0.0, abs=1e-9)]
    assert t._metrics["train"]["logps/chosen"] == [pytest.approx(-5.0)]
    # τ is the trainer's cw_tau: τ = 0.25 gives (h − 2)²
    t = _bare("ipo", tau=0.25)
    t._compute_loss(t.model, _inputs(weight=torch.ones(3)), return_outputs=False)
    assert t._metrics["train"]["loss/unweighted"] == [pytest.approx((0.25 + 5.0625 + 4) / 3, abs=1e-6)]


def test_rdpo_reads_label_smoothing_as_epsilon():
    t = _bare("rdpo")  # ε = 0.2: [(0.8)(−log σ(βh)) + 0.2 log σ(−βh)] / 0.6
    t._compute_loss(t.model, _inputs(weight=torch.ones(3)), return_outputs=False)
    h = [0.3, -0.1, 0.0]
    per = [(0.8 * math.log1p(math.exp(-x)) - 0.2 * math.log1p(math.exp(x))) / 0.6 for x in h]
    assert t._metrics["train"]["loss/unweighted"] == [pytest.approx(sum(per) / 3, abs=1e-6)]


@pytest.mark.parametrize("ref_model", [None, "reference"])
def test_reference_log_probs_computed_when_not_precomputed(ref_model):
    t = _bare(precompute=False, ref_model=SimpleNamespace(name=ref_model) if ref_model else None)
    seen = {}

    def ref_logps(model, inputs):
        seen["model"], seen["inputs"] = model.name, inputs
        return RC, RR

    t.compute_ref_log_probs = ref_logps
    inputs = _inputs(precompute=False)
    loss = t._compute_loss(t.model, inputs, return_outputs=False)
    assert seen["inputs"] is inputs
    assert loss.item() == pytest.approx(0.303069, abs=1e-6)
    assert seen["model"] == (ref_model or "policy")  # the policy (adapters off) when there is no ref


def test_return_outputs_is_refused():
    t = _bare()
    with pytest.raises(NotImplementedError, match=r"^WeightedDPOTrainer does not return logits \(use"):
        t._compute_loss(t.model, _inputs(), return_outputs=True)


def test_reference_forward_never_sees_the_weight(monkeypatch):
    seen = {}

    def trl_ref(self, model, inputs):
        seen.update(inputs, model=model)
        return "ref"

    monkeypatch.setattr(DPOTrainer, "compute_ref_log_probs", trl_ref)
    t = object.__new__(WeightedDPOTrainer)
    assert t.compute_ref_log_probs("m", {"input_ids": 1, "weight": 2, "completion_mask": 3}) == "ref"
    assert seen == {"input_ids": 1, "completion_mask": 3, "model": "m"}


def test_signature_columns_keep_the_weight_once():
    t = object.__new__(WeightedDPOTrainer)
    t._signature_columns = ["input_ids", "completion_mask"]  # TRL's, already set
    t._set_signature_columns_if_needed()
    assert t._signature_columns == ["input_ids", "completion_mask", "weight"]
    t._set_signature_columns_if_needed()
    assert t._signature_columns == ["input_ids", "completion_mask", "weight"]


def test_collator_weights_by_row():
    collate = WeightedPreferenceCollator(pad_token_id=0)
    rows = [
        {"prompt_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5], "weight": 0.25},
        {"prompt_ids": [1], "chosen_ids": [6, 7], "rejected_ids": [8], "weight": 3},
    ]
    out = collate(rows)
    assert out["weight"].dtype == torch.float32 and out["weight"].tolist() == [0.25, 3.0]
    assert collate(rows[::-1])["weight"].tolist() == [3.0, 0.25]
    with pytest.raises(ConfigError, match=r"^a batch row has no 'weight' column \(it has \['chosen_ids'"):
        collate([{k: v for k, v in rows[0].items() if k != "weight"}])
    with pytest.raises(DataError, match=r"^batch, row 2: column 'weight' must be a finite number >= 0"):
        collate([rows[0], dict(rows[0], weight=-0.5)])
    assert collate([dict(rows[0], weight=0)])["weight"].tolist() == [0.0]  # one zero-weight batch is fine
    assert out["input_ids"].shape[0] == 4  # chosen rows then rejected rows


def test_weight_column_checked_before_training():
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}]
    check_weight_column(Dataset.from_list([dict(r, weight=0.5) for r in rows]), "train_dataset", True)
    check_weight_column(None, "eval_dataset", False)  # no dataset: nothing to check
    with pytest.raises(
        ConfigError, match=r"^train_dataset has no 'weight' column \(it has \['prompt', 'chosen'"
    ):
        check_weight_column(Dataset.from_list(rows), "train_dataset", True)
    with pytest.raises(ConfigError, match=r"^eval_dataset\['b'\] has no 'weight' column"):
        check_weight_column(
            {"a": Dataset.from_list([dict(rows[0], weight=1.0)]), "b": Dataset.from_list(rows)},
            "eval_dataset",
            False,
        )
    with pytest.raises(
        DataError, match=r"^train_dataset, row 2: column 'weight' must be a finite number >= 0"
    ):
        check_weight_column(
            Dataset.from_list([dict(rows[0], weight=1.0), dict(rows[0], weight=-1.0)]), "train_dataset", True
        )
    zero = Dataset.from_list([dict(rows[0], weight=0.0)])
    check_weight_column(zero, "eval_dataset", learning=False)  # evaluation: all-zero weights are fine
    with pytest.raises(DataError, match="every 'weight' is 0"):
        check_weight_column(zero, "train_dataset", learning=True)
    with pytest.raises(DataError, match=r"^train_dataset\['a'\]: every 'weight' is 0"):
        check_weight_column({"a": zero}, "train_dataset", learning=True)


def test_beta_is_the_trainers():
    t = _bare()
    t.beta = 0.2  # h = [3, -1, 0]: −log σ(0.2h)
    t._compute_loss(t.model, _inputs(weight=torch.ones(3)), return_outputs=False)
    per = [math.log1p(math.exp(-0.2 * h)) for h in (3.0, -1.0, 0.0)]
    assert t._metrics["train"]["loss/unweighted"] == [pytest.approx(sum(per) / 3, abs=1e-6)]
    assert t._metrics["train"]["rewards/margins"] == [pytest.approx(0.2 * 2 / 3, abs=1e-6)]
