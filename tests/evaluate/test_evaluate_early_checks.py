"""evaluate checks every input, and that its judge answers, before it generates anything."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import cwpo.evaluate.generation as generation
import cwpo.llm_client as llm_client
from cwpo.atomic_files import write_jsonl
from cwpo.cli.main import main


@pytest.fixture
def no_generation(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("generated before every input was checked")

    monkeypatch.setattr(generation, "generate_responses", forbidden)


def _argv(tmp_path, policy, reference, *extra):
    return ["evaluate", "--policy", policy, "--reference", reference, "--prompts", str(tmp_path / "p.jsonl"),
            "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), *extra]  # fmt: skip


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("cwpo")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def prompts(tmp_path, labeled_rows):
    write_jsonl(tmp_path / "p.jsonl", labeled_rows[:3])


def test_a_bad_pairs_file_stops_before_generation(
    tmp_path, prompts, tiny_causal_lm_dir, fake_judge, no_generation, capsys
):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n" + '{"prompt": "q", "chosen": 5}\n'
    )
    argv = _argv(tmp_path, tiny_causal_lm_dir, tiny_causal_lm_dir, "--pairs", str(bad))
    assert main([*argv, "--judge-url", fake_judge.url, "--judge-model", "m"]) == 2
    line = _one_error(capsys)
    assert f"{bad}, row 2" in line
    assert not fake_judge.requests and not (tmp_path / "out").exists()


def test_a_missing_reference_stops_before_the_policy_is_generated(
    tmp_path, prompts, tiny_causal_lm_dir, fake_judge, no_generation, capsys
):
    argv = _argv(tmp_path, tiny_causal_lm_dir, str(tmp_path / "no-such-model"))
    assert main([*argv, "--judge-url", fake_judge.url, "--judge-model", "m"]) == 2
    assert "no-such-model" in _one_error(capsys)


def test_a_judge_that_never_answers_fails_in_seconds_whatever_its_timeout(
    tmp_path, prompts, tiny_causal_lm_dir, silent_judge, no_generation, capsys, monkeypatch
):
    monkeypatch.setattr(llm_client, "PROBE_TIMEOUT", 0.5)
    argv = _argv(tmp_path, tiny_causal_lm_dir, tiny_causal_lm_dir, "--judge-url", silent_judge)
    start = time.monotonic()
    assert main([*argv, "--judge-model", "m", "--judge-timeout", "60", "--judge-retries", "5"]) == 2
    assert time.monotonic() - start < 10  # the full budget would be 6 attempts of 60 s
    line = _one_error(capsys)
    assert "accepts connections but sent no answer within 0.5 s" in line and silent_judge in line


def test_a_judge_that_is_down_or_refuses_the_key_fails_at_once(
    tmp_path, prompts, tiny_causal_lm_dir, fake_judge, no_generation, capsys
):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = _argv(tmp_path, tiny_causal_lm_dir, tiny_causal_lm_dir, "--judge-model", "m")
    assert main([*argv, "--judge-url", f"http://127.0.0.1:{port}/v1"]) == 2
    assert "cannot be reached" in _one_error(capsys)


def test_the_reachability_check_accepts_any_answer_and_refuses_a_bad_key(fake_judge):
    client = llm_client.JudgeClient(fake_judge.url, "m", "sk-x", rate_limit=None)
    client.check_reachable()  # the fake server has no GET /models: its HTTP 501 is an answer too

    class Refuses(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        with pytest.raises(llm_client.JudgeError, match=r"refused the key \(HTTP 401 on GET .*/v1/models"):
            llm_client.JudgeClient(url, "m", "sk-x").check_reachable()
    finally:
        server.shutdown()
        server.server_close()
