"""Shared fixtures: tiny models built from config (offline, seconds), real data paths.

Tiny models reuse the real tokenizers of the offline models (SmolLM2's BPE, MiniLM's
WordPiece) so tokenization is realistic while the networks have a few hundred thousand weights.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
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


def _launch_two_ranks(args: list[str], *, timeout: int, cwd=None, before_retry=None):
    """``accelerate launch`` two gloo CPU ranks running ``args``; the finished process is returned.

    accelerate 1.15 starts ONE process for ``--cpu --num_processes 2`` (its simple launcher unless
    MPI is set up); ``--multi_gpu`` on a machine without GPUs starts two ranks through
    torch.distributed.run. Each attempt takes a free port (the default 29500 may be in use by
    another run). A rank aborted once (exit -6) on a machine loaded by four other jobs, so an abort
    is retried once, after ``before_retry()`` cleans up the partial output.
    """
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for attempt in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port)]
        proc = subprocess.run(cmd + args, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)
        if proc.returncode == 0 or attempt == 1 or "exitcode: -6" not in proc.stderr:
            return proc
        if before_retry is not None:
            before_retry()
    return proc


@pytest.fixture(scope="session")
def launch_two_ranks():
    """:func:`_launch_two_ranks`, for tests that run a command on two accelerate ranks."""
    return _launch_two_ranks


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


def _tiny_bert(out, model_class: str, **config) -> str:
    """A 2-layer, hidden-32 BERT (``model_class`` from transformers) with MiniLM's WordPiece tokenizer."""
    import transformers
    from transformers import AutoTokenizer, BertConfig

    from cwpo.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))
    bert = BertConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, **config,
    )  # fmt: skip
    torch.manual_seed(0)
    getattr(transformers, model_class)(bert).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> str:
    """A tiny BERT body with MiniLM's tokenizer, saved as an HF folder."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-encoder"), "BertModel", max_position_embeddings=512)


@pytest.fixture(scope="session")
def tiny_rm_dir(tmp_path_factory) -> str:
    """A tiny BERT sequence-classification reward model (one score) with MiniLM's tokenizer."""
    return _tiny_bert(tmp_path_factory.mktemp("tiny-rm"), "BertForSequenceClassification", num_labels=1)


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


# ---- what a person should never see in the terminal -------------------------------------------
_NOISE = {
    # the HF Trainer's per-step (and end-of-training) metric dicts: {'loss': '0.69', ...}
    "metric dict": re.compile(r"^\s*\{'[\w/.-]+': "),
    # transformers' weight-loading / saving bars and datasets' map bars
    "weights bar": re.compile(
        r"Loading weights|Writing model shards|Loading checkpoint shards|Tokenizing train dataset|Map: "
    ),
    # a Python warning as printed by warnings.showwarning ("path:line: FutureWarning: ..." and its
    # source line), or a library logger's default output
    "python warning": re.compile(r"\b[A-Z]\w*Warning: |^\s*warnings\.warn\(|^\[(transformers|datasets)\] "),
}


def terminal_noise(text: str) -> list[tuple[str, str]]:
    """Every (kind, line) of terminal output (progress-bar redraws split on \\r) that is a per-step
    metric dict, a weights-loading bar or a Python warning."""
    lines = [part for line in text.splitlines() for part in line.split("\r")]
    return [(kind, line) for line in lines for kind, rx in _NOISE.items() if rx.search(line)]


@pytest.fixture(scope="session")
def tiny_recipe_yaml(tmp_path_factory, tiny_causal_lm_dir, tiny_encoder_dir) -> Path:
    """A three-method recipe on the tiny models (every stage in a few seconds) as a YAML file."""
    import json

    import yaml

    tmp = tmp_path_factory.mktemp("tiny-recipe")
    rows = [
        {
            "prompt": f"\n\nHuman: question {i}?\n\nAssistant:",
            "chosen": f" Sure, here is a kind and helpful answer number {i}.",
            "rejected": f" No. {i}",
        }
        for i in range(48)
    ]
    (tmp / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tiny = {"max_steps": 2, "batch_size": 4, "max_length": 64, "save_steps": 1000}
    recipe = {
        "name": "tiny",
        "strong_model": tiny_causal_lm_dir,
        "seeds": [0],
        "methods": ["human", "ws", "cw"],
        "data": {"source": str(tmp / "pairs.jsonl"), "labeled_frac": 0.3, "test_frac": 0.25, "max_tokens": 0},
        "annotator": {"backbone": tiny_encoder_dir, "epochs": 1, "batch_size": 8, "max_length": 64},
        "annotate": {"batch_size": 16},
        "sft": tiny,
        "align": {**tiny, "beta": 0.1},
        "evaluate": {"batch_size": 8, "max_length": 64, "n_boot": 50},
    }
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def run_cwpo(args: list[str], cwd=None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``cwpo ARGS`` in a fresh interpreter on this checkout's sources, as a user's terminal runs it."""
    import cwpo

    src = str(Path(cwpo.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "cwpo.cli.main", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="session")
def noise_in():
    """:func:`terminal_noise`: the lines of terminal output a person should never see."""
    return terminal_noise


@pytest.fixture(scope="session")
def cwpo_cli():
    """:func:`run_cwpo`: run the console script in a subprocess, output captured."""
    return run_cwpo


def toy_pairs(n: int = 30) -> list[dict]:
    """``n`` distinct labelled pairs whose chosen response is always the helpful one."""
    return [
        {"prompt": f"Question {i}?", "chosen": f" a helpful answer {i}", "rejected": f" no {i}"}
        for i in range(n)
    ]


@pytest.fixture
def cli_annotator(tmp_path, tiny_encoder_dir, capsys) -> tuple[Path, Path]:
    """A tiny annotator trained by ``cwpo train-annotator`` on 8 toy pairs, and a file of 6
    unlabelled pairs for it: ``(annotator folder, unlabelled file)``; the terminal is cleared."""
    from cwpo.cli.main import main
    from cwpo.data.schema import to_unlabeled, write_pairs

    write_pairs(tmp_path / "train.jsonl", toy_pairs(8))
    write_pairs(tmp_path / "u.jsonl", to_unlabeled(toy_pairs(6), seed=0))
    ann = tmp_path / "ann"
    base = ["--backbone", tiny_encoder_dir, "--epochs", "1", "--progress", "false"]
    assert (
        main(["train-annotator", "--train", str(tmp_path / "train.jsonl"), "--output", str(ann), *base]) == 0
    )
    capsys.readouterr()
    return ann, tmp_path / "u.jsonl"


def chat_trainer(tmp_path: Path, model_dir: str, rows: list[dict]):
    """A ``WeightedDPOTrainer`` of the tiny causal LM on ``rows`` through its chat template."""
    # TRL and transformers load only in the tests that build a trainer (collection stays fast)
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cwpo import WeightedDPOConfig, WeightedDPOTrainer
    from cwpo.align.align import training_rows

    args = WeightedDPOConfig(
        output_dir=str(tmp_path / "o"), use_cpu=True, bf16=False, report_to="none", max_length=256
    )
    return WeightedDPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=Dataset.from_list(training_rows(rows, chat_template=True)),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
    )
