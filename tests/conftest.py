"""Shared fixtures: tiny models built from config (offline, seconds), real data paths.

Tiny models reuse the real tokenizers of the offline models (SmolLM2's BPE, MiniLM's
WordPiece) so tokenization is realistic while the networks have a few hundred thousand weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CWPO_SHARED_DATA", REPO.parent / "shared" / "data"))
HH_DIR = SHARED_DATA / "hh-rlhf"
IMDB_DIR = SHARED_DATA / "imdb"


@pytest.fixture(scope="session")
def hh_dir() -> Path:
    if not HH_DIR.exists():
        pytest.skip(f"shared HH-RLHF data not found at {HH_DIR}")
    return HH_DIR


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    if not IMDB_DIR.exists():
        pytest.skip(f"shared IMDb data not found at {IMDB_DIR}")
    return IMDB_DIR


@pytest.fixture(scope="session")
def smollm_tokenizer_dir() -> str:
    """The real SmolLM2 folder (converted once from the packaged GGUF and cached)."""
    from cwpo.models import resolve_model

    return resolve_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def tiny_causal_lm_dir(tmp_path_factory, smollm_tokenizer_dir) -> str:
    """A 2-layer, hidden-16 Llama with SmolLM2's tokenizer, saved as an HF folder."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-causal-lm")
    tok = AutoTokenizer.from_pretrained(smollm_tokenizer_dir)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> str:
    """A 2-layer, hidden-32 BERT with MiniLM's WordPiece tokenizer, saved as an HF folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from cwpo.models import resolve_model

    out = tmp_path_factory.mktemp("tiny-encoder")
    tok = AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture
def labeled_rows() -> list[dict]:
    """A few hand-made labeled pairs (prompt, chosen, rejected)."""
    return [
        {
            "prompt": f"\n\nHuman: question {i}?\n\nAssistant:",
            "chosen": f" a kind helpful answer {i}",
            "rejected": f" no {i}",
        }
        for i in range(12)
    ]
