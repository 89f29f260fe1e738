"""``cwpo run --processes 2``: each training and generation stage under accelerate launch on two gloo
CPU ranks, with the recipe's global batch, computes what one process does.

The launched run takes minutes (five stages, each starting two fresh interpreters), hence ``slow``;
the refusals are fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertModel

from cwpo.cli.main import main
from cwpo.models import resolve_model


def _recipe(tmp: Path, llama: str) -> Path:
    tok = AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))
    bert = BertConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(bert).save_pretrained(tmp / "bert")
    tok.save_pretrained(tmp / "bert")
    rows = [
        {"prompt": f"\n\nHuman: question {i}?\n\nAssistant:", "chosen": f" A kind answer number {i}.", "rejected": f" No. {i}"}
        for i in range(48)
    ]  # fmt: skip
    (tmp / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    train = {"max_steps": 2, "batch_size": 4, "max_length": 64, "save_steps": 1000, "lora_dropout": 0.0}
    train |= {"bf16": False, "warmup_ratio": 0.0, "lr": 1e-2}
    recipe = {
        "name": "tiny-launched", "strong_model": llama, "seeds": [0], "methods": ["cw"],
        "data": {"source": str(tmp / "pairs.jsonl"), "labeled_frac": 0.3, "test_frac": 0.25, "max_tokens": 0},
        "annotator": {"backbone": str(tmp / "bert"), "epochs": 1, "batch_size": 8, "max_length": 64, "bf16": False},
        "annotate": {"batch_size": 16}, "sft": train, "align": {**train, "beta": 0.1},
        "evaluate": {"batch_size": 4, "max_length": 64, "n_boot": 50, "gold": "vader", "max_new_tokens": 5,
                     "dtype": "float32"},
    }  # fmt: skip
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    return tmp / "tiny.yaml"


def _stage(run: Path, name: str) -> Path:
    [folder] = (run / "stages").glob(f"{name}-*")
    return folder


def test_processes_must_divide_the_global_batch(tmp_path, tiny_causal_lm_dir, capsys):
    recipe = _recipe(tmp_path, tiny_causal_lm_dir)
    assert main(["run", str(recipe), "--output", str(tmp_path / "r"), "--processes", "3"]) == 2
    assert "sft.batch_size 4 is the global batch: --processes 3 must divide it" in capsys.readouterr().err
    assert main(["run", str(recipe), "--output", str(tmp_path / "r"), "--accelerate-config", "nope"]) == 2
    assert "not a shipped config name nor a file" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_run_on_two_processes_equals_one(tmp_path, tiny_causal_lm_dir, cwpo_cli):
    recipe = _recipe(tmp_path, tiny_causal_lm_dir)
    one, two = tmp_path / "one", tmp_path / "two"
    for out, extra in ((one, []), (two, ["--processes", "2"])):
        proc = cwpo_cli(["run", str(recipe), "--output", str(out), "--no-progress", *extra], timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]

    manifest = json.loads((_stage(two, "align") / "manifest.json").read_text())
    assert manifest["metrics"]["world_size"] == 2  # really launched
    assert _stage(one, "align").name == _stage(two, "align").name  # the same cache key
    for stage in ("sft", "align"):
        a, b = (json.loads((_stage(r, stage) / "model" / "metrics.json").read_text()) for r in (one, two))
        assert [s["loss"] for s in b["steps"]] == pytest.approx([s["loss"] for s in a["steps"]], rel=1e-4)
        wa, wb = (
            load_file(str(_stage(r, stage) / "model" / "adapter_model.safetensors")) for r in (one, two)
        )
        assert all(torch.allclose(wa[k], wb[k], atol=1e-4) for k in wa), stage
    ra, rb = (json.loads((r / "results.jsonl").read_text().splitlines()[0]) for r in (one, two))
    assert rb["gra"] == ra["gra"]
