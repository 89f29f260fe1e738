"""The one alignment path end to end on the tiny model: methods as data, errors, resume, SFT."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from cwpo.align import AlignConfig, SFTConfig, align, sft
from cwpo.data.schema import to_unlabeled, write_pairs
from cwpo.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pairs_file(tmp_path, labeled_rows):
    rows = [dict(r, confidence=round(0.08 * i, 3), margin=0.2 * i) for i, r in enumerate(labeled_rows[:8])]
    return str(write_pairs(tmp_path / "train.jsonl", rows))


def _cfg(train, policy, out, **kw):
    base = dict(
        train=train, policy=policy, output=str(out), max_steps=2, batch_size=2, max_length=64, save_steps=1
    )
    return AlignConfig(**{**base, **kw})


def test_cw_dpo_writes_a_loadable_model(tmp_path, pairs_file, tiny_causal_lm_dir):
    res = align(_cfg(pairs_file, tiny_causal_lm_dir, tmp_path / "cw", weighting="confidence"))
    out = Path(res["output"])
    assert res["global_step"] == 2 and res["weighting_formula"] == "tanh(|d|/2)"
    metrics = json.loads((out / "metrics.json").read_text())
    assert [s["step"] for s in metrics["steps"]] == [1, 2]
    assert all("step_time_s" in s and "rewards/margins" in s for s in metrics["steps"])
    # the weights are the confidences 0.08·i of the 8 pairs: a batch of 2 has the mean of two of them
    weights = [0.08 * i for i in range(8)]
    pair_means = {round((a + b) / 2, 4) for i, a in enumerate(weights) for b in weights[i + 1 :]}
    assert res["weight_mean"] == pytest.approx(sum(weights) / 8)
    assert all(round(s["weight/mean"], 4) in pair_means for s in metrics["steps"])
    # step 1: the LoRA policy is the reference, so h = 0, every pair's loss is log 2, and the
    # weighted loss is log 2 times the batch's mean weight
    first = metrics["steps"][0]
    assert first["loss/unweighted"] == pytest.approx(math.log(2), abs=1e-5)
    assert first["loss"] == pytest.approx(math.log(2) * first["weight/mean"], abs=1e-5)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "align" and manifest["config"]["weighting"] == "confidence"
    from cwpo.models.loading import load_causal_lm

    model, _ = load_causal_lm(str(out))
    base, _ = load_causal_lm(tiny_causal_lm_dir)
    diff = sum((a - b).abs().sum().item() for a, b in zip(model.parameters(), base.parameters(), strict=True))
    assert diff > 0  # the merged adapter changed the policy


def test_top_n_filters_and_human_labels(tmp_path, labeled_rows, tiny_causal_lm_dir):
    rows = [dict(r, confidence=0.1 * (i % 10)) for i, r in enumerate(labeled_rows[:10])]
    f = str(write_pairs(tmp_path / "a.jsonl", rows))
    res = align(_cfg(f, tiny_causal_lm_dir, tmp_path / "top", weighting="top-30", max_steps=1))
    assert res["n_pairs_trained"] == 3 and res["weight_mean"] == 1.0
    human = str(write_pairs(tmp_path / "u.jsonl", to_unlabeled(labeled_rows[:4], seed=1)))
    res = align(_cfg(human, tiny_causal_lm_dir, tmp_path / "human", max_steps=1, loss="ipo"))
    assert res["label_source"] == "human"


def test_errors_are_clear(tmp_path, labeled_rows, tiny_causal_lm_dir):
    plain = str(write_pairs(tmp_path / "plain.jsonl", labeled_rows[:4]))
    with pytest.raises(DataError, match="needs a 'confidence' or 'margin' column"):
        align(_cfg(plain, tiny_causal_lm_dir, tmp_path / "x", weighting="confidence"))
    with pytest.raises(ConfigError) as e:
        AlignConfig(train=plain, policy="p", output="o", beta=0.0, epsilon=0.7, tau=-1.0)
    assert "beta" in str(e.value) and "epsilon" in str(e.value) and "tau" in str(e.value)
    with pytest.raises(ConfigError, match="unknown weighting"):
        AlignConfig(train=plain, policy="p", output="o", weighting="magic")
    unl = str(
        write_pairs(
            tmp_path / "unl.jsonl",
            [{k: v for k, v in r.items() if k != "human_label"} for r in to_unlabeled(labeled_rows[:2])],
        )
    )
    with pytest.raises(DataError, match="cwpo annotate"):
        align(_cfg(unl, tiny_causal_lm_dir, tmp_path / "y"))


class _StopAt(TrainerCallback):
    """Interrupts training (as Ctrl-C does) right after the checkpoint of ``step`` is saved."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_resume_gives_the_same_result(tmp_path, pairs_file, tiny_causal_lm_dir):
    kw = dict(max_steps=4, lr=1e-2, weighting="confidence", loss="rdpo")
    full = align(_cfg(pairs_file, tiny_causal_lm_dir, tmp_path / "full", **kw))
    with pytest.raises(KeyboardInterrupt):
        align(_cfg(pairs_file, tiny_causal_lm_dir, tmp_path / "cut", **kw), callbacks=[_StopAt(2)])
    with pytest.raises(ConfigError, match="--resume"):
        align(_cfg(pairs_file, tiny_causal_lm_dir, tmp_path / "cut", **kw))
    resumed = align(_cfg(pairs_file, tiny_causal_lm_dir, tmp_path / "cut", resume=True, **kw))
    assert resumed["resumed_from"] == "checkpoint-2" and resumed["global_step"] == 4
    a = json.loads((tmp_path / "full" / "metrics.json").read_text())["steps"]
    b = json.loads((tmp_path / "cut" / "metrics.json").read_text())["steps"]
    assert [s["loss"] for s in a] == pytest.approx([s["loss"] for s in b], abs=1e-6)
    from safetensors.torch import load_file

    wa = load_file(str(tmp_path / "full" / "adapter_model.safetensors"))
    wb = load_file(str(tmp_path / "cut" / "adapter_model.safetensors"))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert full["final_loss"] == pytest.approx(resumed["final_loss"], abs=1e-6)


def test_full_finetune_with_precomputed_reference(tmp_path, pairs_file, tiny_causal_lm_dir):
    res = align(
        _cfg(pairs_file, tiny_causal_lm_dir, tmp_path / "ft", lora=False, precompute_ref=True, max_steps=1)
    )
    assert (Path(res["output"]) / "model.safetensors").exists()
    # at step 1 the policy is the reference: h = 0 and the DPO loss is log 2 times the mean weight (1)
    assert res["final_loss"] == pytest.approx(0.693147, abs=1e-4)


def test_sft_then_align(tmp_path, pairs_file, tiny_causal_lm_dir):
    res = sft(
        SFTConfig(
            train=pairs_file,
            model=tiny_causal_lm_dir,
            output=str(tmp_path / "sft"),
            max_steps=2,
            batch_size=2,
            max_length=64,
            save_steps=10,
        )
    )
    sft_dir = Path(res["output"])
    assert (
        json.loads((sft_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
        == tiny_causal_lm_dir
    )
    assert res["final_loss"] > 0 and (sft_dir / "manifest.json").exists()
    out = align(_cfg(pairs_file, str(sft_dir), tmp_path / "al", max_steps=1))
    assert json.loads((Path(out["output"]) / "adapter_config.json").read_text())[
        "base_model_name_or_path"
    ] == str(sft_dir)
