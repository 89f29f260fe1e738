"""An adapter loads on the base it was trained on, from any folder, or says why it cannot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cwpo.align import SFTConfig, sft
from cwpo.data.schema import write_pairs
from cwpo.errors import ModelNotFoundError
from cwpo.models.adapter_base import BASE_RECORD, adapter_base, base_mismatch, record_base
from cwpo.models.loading import load_causal_lm


def _other_model(src: str, out: Path, seed: int) -> str:
    """A model of the same shape as ``src`` with other weights (what a different ``sft0`` would be)."""
    model = AutoModelForCausalLM.from_pretrained(src)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return str(out)


def _logits(model, tok) -> torch.Tensor:
    ids = tok("Human: hello there\n\nAssistant:", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture(scope="module")
def trained_on_relative_base(tmp_path_factory, tiny_causal_lm_dir):
    """``cwpo sft --model base --output sft1`` run in ``a/`` (a relative base, as in the README)."""
    work = tmp_path_factory.mktemp("a")
    shutil.copytree(tiny_causal_lm_dir, work / "base")
    rows = [
        {"prompt": f"Human: question {i}?\n\nAssistant:", "chosen": f" answer {i}", "rejected": " no"}
        for i in range(4)
    ]
    train = write_pairs(work / "train.jsonl", rows)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        sft(
            SFTConfig(train=str(train), model="base", output="sft1", max_steps=1, batch_size=2, max_length=64)
        )
    return work


@pytest.fixture
def adapter_on_base(tmp_path, tiny_causal_lm_dir):
    """A LoRA adapter (random, non-zero) on a copy of the tiny model, its base recorded as training
    records it: ``(work folder, adapter folder)``."""
    from peft import LoraConfig, get_peft_model

    work = tmp_path / "work"
    shutil.copytree(tiny_causal_lm_dir, work / "base")
    model = AutoModelForCausalLM.from_pretrained(work / "base")
    lora = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(work / "sft1")
    record_base(work / "sft1", str(work / "base"))
    return work, work / "sft1"


def test_adapter_stores_an_absolute_base_and_its_fingerprint(trained_on_relative_base):
    work = trained_on_relative_base
    cfg = json.loads((work / "sft1" / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str((work / "base").resolve())
    record = json.loads((work / "sft1" / BASE_RECORD).read_text())
    assert record["given"] == "base" and record["relative_to_adapter"] == "../base"
    assert record["fingerprint"].startswith("sha256:")


def test_loaded_from_another_folder_with_a_same_named_base_uses_its_own(
    trained_on_relative_base, tmp_path, monkeypatch, tiny_causal_lm_dir
):
    work = trained_on_relative_base
    monkeypatch.chdir(work)
    expected = _logits(*load_causal_lm("sft1"))
    elsewhere = tmp_path / "b"
    elsewhere.mkdir()
    _other_model(tiny_causal_lm_dir, elsewhere / "base", seed=1)
    monkeypatch.chdir(elsewhere)
    got = _logits(*load_causal_lm(str(work / "sft1")))
    assert torch.allclose(expected, got, atol=1e-5)


def test_a_base_changed_in_place_is_refused(adapter_on_base, tiny_causal_lm_dir):
    work, adapter = adapter_on_base
    load_causal_lm(str(adapter))
    shutil.rmtree(work / "base")
    _other_model(tiny_causal_lm_dir, work / "base", seed=2)  # the base trained again under the same name
    with pytest.raises(ModelNotFoundError, match="now holds a different model"):
        load_causal_lm(str(adapter))


def test_a_pipeline_folder_moved_as_a_whole_still_loads(adapter_on_base, tmp_path):
    work, adapter = adapter_on_base
    expected = _logits(*load_causal_lm(str(adapter)))
    moved = tmp_path / "moved"
    shutil.move(str(work), moved)
    assert adapter_base(moved / "sft1") == str((moved / "base").resolve())
    assert torch.allclose(expected, _logits(*load_causal_lm(str(moved / "sft1"))), atol=1e-5)


def test_moved_base_with_other_weights_is_not_picked_up(adapter_on_base, tmp_path, tiny_causal_lm_dir):
    work, _ = adapter_on_base
    moved = tmp_path / "moved"
    shutil.move(str(work), moved)
    shutil.rmtree(moved / "base")
    _other_model(tiny_causal_lm_dir, moved / "base", seed=3)
    with pytest.raises(ModelNotFoundError, match="does not exist here"):
        load_causal_lm(str(moved / "sft1"))


def test_an_older_adapter_with_a_missing_relative_base_says_so(tmp_path, monkeypatch, tiny_causal_lm_dir):
    adapter = tmp_path / "cw0"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "sft0"}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ModelNotFoundError, match="relative path 'sft0'.*does not exist from the current folder"
    ):
        load_causal_lm(str(adapter))


def test_an_older_adapter_with_a_relative_base_warns(tmp_path, monkeypatch, tiny_causal_lm_dir, capsys):
    shutil.copytree(tiny_causal_lm_dir, tmp_path / "sft0")
    adapter = tmp_path / "cw0"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "sft0"}))
    monkeypatch.chdir(tmp_path)
    assert adapter_base(adapter) == str((tmp_path / "sft0").resolve())
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "relative path 'sft0'" in err and "warning" in err


def test_a_given_base_that_is_not_the_trained_one_is_named(
    trained_on_relative_base, tmp_path, monkeypatch, tiny_causal_lm_dir
):
    work = trained_on_relative_base
    assert base_mismatch(str(work / "sft1"), str(work / "base")) is None
    monkeypatch.chdir(work)
    assert base_mismatch("sft1", "base") is None  # relative, same folder
    assert base_mismatch(tiny_causal_lm_dir, "base") is None  # not an adapter
    other = _other_model(tiny_causal_lm_dir, tmp_path / "other", seed=4)
    line = base_mismatch(str(work / "sft1"), other)
    assert line is not None and str((work / "base").resolve()) in line and other in line


def test_evaluate_warns_when_the_reference_is_not_the_policys_base(
    trained_on_relative_base, tmp_path, tiny_causal_lm_dir, capsys
):
    from cwpo.evaluate.evaluate import EvalConfig, evaluate

    work = trained_on_relative_base
    other = _other_model(tiny_causal_lm_dir, tmp_path / "other", seed=5)
    pairs = str(work / "train.jsonl")
    common = dict(policy=str(work / "sft1"), prompts=pairs, pairs=pairs, n_boot=10)
    evaluate(
        EvalConfig(reference=str(work / "base"), output=str(tmp_path / "same"), **common), progress=False
    )
    assert "cwpo: warning" not in capsys.readouterr().err
    evaluate(EvalConfig(reference=other, output=str(tmp_path / "other-ref"), **common), progress=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cwpo: warning")]
    assert len(lines) == 1 and f"was trained on {(work / 'base').resolve()}, not on {other}" in lines[0]
