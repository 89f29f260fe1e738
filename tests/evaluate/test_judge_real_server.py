"""The LLM judge against a real OpenAI-compatible server: ``transformers serve`` on 127.0.0.1.

It serves SmolLM2-135M-Instruct from the local model folder (``requirements/serving.txt`` holds
what the server needs). Requests are counted from the server's own access log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cwpo.atomic_files import read_json, write_jsonl
from cwpo.evaluate.judge import parse_verdict
from local_server import Server

KEY = "sk-REAL-SERVER-SECRET-0123"
SERVED = '"POST /v1/chat/completions HTTP/1.1" 200'


@pytest.fixture
def judge_server(tmp_path_factory, request):
    from cwpo.models import resolve_model

    model = resolve_model("smollm2-135m-instruct", check_hub=False)
    server = Server.transformers_serve(model, tmp_path_factory.mktemp("judge-server"))
    request.addfinalizer(server.kill)  # stopped whatever happens
    server.start()
    return server


def evaluate_args(server, policy, prompts, out, cache, seed, retries=5) -> list[str]:
    return [sys.executable, "-m", "cwpo.cli.main", "evaluate",
            "--policy", policy, "--reference", policy, "--prompts", str(prompts), "--output", str(out),
            "--judge-url", server.url, "--judge-model", server.model, "--judge-key", KEY,
            "--judge-max-tokens", "32", "--judge-rate-limit", "100", "--judge-timeout", "60",
            "--judge-retries", str(retries), "--max-new-tokens", "8", "--seed", str(seed),
            "--cache-dir", str(cache)]  # fmt: skip


def run(args) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)


def check_verdicts(out: Path, n: int) -> list[dict]:
    """Every prompt has one verdict, read from the judge's words or counted unparseable."""
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == n
    for row in rows:
        j = row["judge"]
        assert j["verdict"] == parse_verdict(j["answer"])  # never guessed
        assert j["winner"] == (
            None if j["verdict"] is None else ("policy" if j["verdict"] == j["policy_slot"] else "baseline")
        )
    s = read_json(out / "summary.json")["judge"]
    assert s["n"] + s["unparsed"] == n and s["unparsed"] == sum(r["judge"]["verdict"] is None for r in rows)
    return rows


@pytest.mark.slow
def test_judge_against_transformers_serve(judge_server, tiny_causal_lm_dir, labeled_rows, tmp_path):
    n = 6
    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, labeled_rows[:n])
    cache = tmp_path / "cache"
    logs = []

    # 1. a run asks the judge once per prompt
    first = run(evaluate_args(judge_server, tiny_causal_lm_dir, prompts, tmp_path / "out1", cache, seed=0))
    logs.append(first.stdout + first.stderr)
    assert first.returncode == 0, first.stderr[-3000:]
    rows1 = check_verdicts(tmp_path / "out1", n)
    assert judge_server.served() == n

    # 2. the same run again is answered from the judge cache: not one request
    second = run(evaluate_args(judge_server, tiny_causal_lm_dir, prompts, tmp_path / "out2", cache, seed=0))
    logs.append(second.stdout + second.stderr)
    assert second.returncode == 0, second.stderr[-3000:]
    assert check_verdicts(tmp_path / "out2", n) == rows1
    assert judge_server.served() == n
    client = read_json(tmp_path / "out2" / "summary.json")["judge"]["client"]
    assert client["requests"] == 0 and client["cache_hits"] == n

    # 3. new questions (another seed); the server is killed mid-run and restarted: the run retries,
    # resumes and ends with every verdict, each asked once
    args = evaluate_args(
        judge_server, tiny_causal_lm_dir, prompts, tmp_path / "out3", cache, seed=1, retries=8
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "run3.out", "w") as out, open(tmp_path / "run3.err", "w") as err:
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, text=True)
        try:
            deadline = time.monotonic() + 300
            while judge_server.served() < n + 2 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert proc.poll() is None, "the run ended before the server could be killed"
            assert judge_server.served() >= n + 2
            judge_server.kill()
            time.sleep(2.0)  # the run sees the server gone
            judge_server.start()
            assert proc.wait(timeout=400) == 0, (tmp_path / "run3.err").read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    third_err = (tmp_path / "run3.err").read_text()
    logs.append((tmp_path / "run3.out").read_text() + third_err)
    retries = [line for line in third_err.splitlines() if line.startswith("cwpo: judge:")]
    assert retries and all("retry" in line for line in retries), third_err[-3000:]
    rows3 = check_verdicts(tmp_path / "out3", n)
    assert [r["prompt"] for r in rows3] == [r["prompt"] for r in rows1]
    assert len(list((cache / "judge").glob("*.json"))) == 2 * n  # one answer per question
    # a request the kill cut off may have been counted by the first life just before it died
    assert 2 * n <= judge_server.served() <= 2 * n + 1

    # 4. the key is in no output, cache file, server log or terminal output
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    for log in judge_server.logs:
        assert KEY not in log.read_text(errors="replace")
    assert all(KEY not in text for text in logs)
