"""The judge client against a fake OpenAI-compatible server on 127.0.0.1 (see conftest.py)."""

import json

import pytest

from cwpo.errors import ConfigError
from cwpo.evaluate.judge import JudgeClient, JudgeError, judge_pairs, parse_verdict


def client_for(server, tmp_path, **kw):
    sleeps = []
    kw.setdefault("rate_limit", None)
    c = JudgeClient(server.url, "judge-1", "sk-test", cache_dir=tmp_path / "cache", sleep=sleeps.append, **kw)
    return c, sleeps


PROMPTS = [f"\n\nHuman: question {i}?\n\nAssistant:" for i in range(8)]


def test_normal_answers_give_the_expected_winner_in_both_orders(fake_judge, tmp_path):
    client, _ = client_for(fake_judge, tmp_path)
    policy = [f" GOOD answer {i}" for i in range(8)]
    baseline = [f" weak answer {i}" for i in range(8)]
    rows = judge_pairs(client, PROMPTS, policy, baseline, seed=0, progress=False)
    assert [r["winner"] for r in rows] == ["policy"] * 8
    assert {r["policy_slot"] for r in rows} == {"A", "B"}  # the order really is randomized
    rows_b = judge_pairs(client, PROMPTS, baseline, policy, seed=0, progress=False)
    assert [r["winner"] for r in rows_b] == ["baseline"] * 8
    req = fake_judge.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "judge-1" and req["body"]["temperature"] == 0.0
    content = req["body"]["messages"][0]["content"]
    assert content.startswith(
        "For the following query to a chatbot, which response is better in terms of helpfulness"
    )
    assert "Query: Human: question 0?" in content and content.endswith('Prefered: "A" or "B"')


def test_summary_template_and_cache(fake_judge, tmp_path):
    client, _ = client_for(fake_judge, tmp_path)
    judge_pairs(client, ["post"], [" GOOD tl;dr"], [" other"], template="summary", progress=False)
    assert fake_judge.requests[0]["body"]["messages"][0]["content"].startswith(
        "For the following Reddit post"
    )
    n = len(fake_judge.requests)
    client2, _ = client_for(fake_judge, tmp_path)  # a new client, same cache folder
    rows = judge_pairs(client2, ["post"], [" GOOD tl;dr"], [" other"], template="summary", progress=False)
    assert rows[0]["winner"] == "policy"
    assert len(fake_judge.requests) == n and client2.stats["cache_hits"] == 1


def test_429_with_retry_after_then_success(fake_judge, tmp_path):
    fake_judge.script = [("status", 429, {"Retry-After": "3"})]
    client, sleeps = client_for(fake_judge, tmp_path, backoff=0.5)
    assert parse_verdict(client.complete([{"role": "user", "content": "Response A: GOOD x"}])) == "A"
    assert len(fake_judge.requests) == 2 and sleeps == [3.0]  # Retry-After wins over the 0.5 s backoff
    assert client.stats["retries"] == 1


def test_5xx_exponential_backoff_and_giving_up(fake_judge, tmp_path):
    fake_judge.script = [("status", 503, {}), ("status", 502, {})]
    client, sleeps = client_for(fake_judge, tmp_path, backoff=1.0)
    client.complete([{"role": "user", "content": "Response A: GOOD"}])
    assert sleeps == [1.0, 2.0]
    fake_judge.script = [("status", 500, {})] * 3
    client, sleeps = client_for(fake_judge, tmp_path, backoff=1.0, max_retries=2)
    with pytest.raises(JudgeError, match=r"no usable answer in 3 attempt\(s\) .*last error: HTTP 500"):
        client.complete([{"role": "user", "content": "Response A: other"}])
    assert sleeps == [1.0, 2.0]


def test_timeout_is_retried(fake_judge, tmp_path):
    fake_judge.script = [("sleep", 1.5)]
    client, sleeps = client_for(fake_judge, tmp_path, timeout=0.3)
    answer = client.complete([{"role": "user", "content": "Response A: GOOD"}])
    assert parse_verdict(answer) == "A" and len(sleeps) == 1 and client.stats["retries"] == 1


def test_malformed_bodies_are_retried_and_malformed_verdicts_reported(fake_judge, tmp_path):
    fake_judge.script = [
        ("body", b"<html>proxy error</html>"),
        ("body", json.dumps({"choices": []}).encode()),
    ]
    client, sleeps = client_for(fake_judge, tmp_path)
    assert parse_verdict(client.complete([{"role": "user", "content": "Response A: GOOD"}])) == "A"
    assert len(sleeps) == 2
    fake_judge.script = [("ok", "I cannot decide between these."), ("ok", 'Prefered: "A" or "B"')]
    rows = judge_pairs(client, ["q1", "q2"], [" a1", " a2"], [" b1", " b2"], progress=False)
    assert [r["winner"] for r in rows] == [None, None]
    assert rows[0]["answer"] == "I cannot decide between these."


def test_client_errors_are_not_retried(fake_judge, tmp_path):
    fake_judge.script = [("status", 401, {})]
    client, sleeps = client_for(fake_judge, tmp_path)
    with pytest.raises(JudgeError, match="HTTP 401"):
        client.complete([{"role": "user", "content": "x"}])
    assert sleeps == [] and len(fake_judge.requests) == 1


def test_rate_limit_spaces_requests(fake_judge, tmp_path):
    client, sleeps = client_for(fake_judge, tmp_path, rate_limit=5.0)
    for i in range(3):
        client.complete([{"role": "user", "content": f"Response A: GOOD {i}"}])
    assert len(sleeps) == 2 and all(0 < s <= 0.2 for s in sleeps)


def test_url_model_and_key_from_environment(fake_judge, tmp_path, monkeypatch):
    monkeypatch.setenv("CWPO_JUDGE_URL", fake_judge.url + "/chat/completions")
    monkeypatch.setenv("CWPO_JUDGE_MODEL", "env-model")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    client = JudgeClient(rate_limit=None)
    client.complete([{"role": "user", "content": "Response A: GOOD"}])
    req = fake_judge.requests[-1]
    assert (
        req["path"] == "/v1/chat/completions"
        and req["body"]["model"] == "env-model"
        and req["auth"] == "Bearer sk-env"
    )


def test_missing_url_or_model_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CWPO_JUDGE_URL", raising=False)
    monkeypatch.delenv("CWPO_JUDGE_MODEL", raising=False)
    with pytest.raises(ConfigError, match="CWPO_JUDGE_URL.*CWPO_JUDGE_MODEL"):
        JudgeClient()


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('Comparison: A is kinder.\nPrefered: "A"', "A"),
        ("Comparison: B wins.\nPreferred: B", "B"),
        ("Comparison: x\n**Preferred:** **Response B**", "B"),
        ("Comparison: Response A is rude but B is polite.\nPrefered: 'B'.", "B"),
        ("preferred response: a", "A"),
        ("Comparison: both fine.\n\nB", "B"),
        ('Comparison: both fine.\nAnswer: "A"', "A"),
        ('Prefered: "A" or "B"', None),
        ("Comparison: neither.\nPreferred: neither", None),
        ("A Bunch of text with no verdict", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


def test_a_connection_cut_mid_answer_is_retried(fake_judge, tmp_path):
    fake_judge.script = [("cut",)]
    client, sleeps = client_for(fake_judge, tmp_path)
    notes = []
    client.notify = notes.append
    assert parse_verdict(client.complete([{"role": "user", "content": "Response A: GOOD"}])) == "A"
    assert len(fake_judge.requests) == 2 and sleeps == [1.0] and client.stats["retries"] == 1
    assert len(notes) == 1 and "IncompleteRead" in notes[0] and "retry 1 of 5 in 1 s" in notes[0]


def test_the_key_never_appears_in_an_error(fake_judge, tmp_path):
    fake_judge.script = [("status", 401, {})]
    client, _ = client_for(fake_judge, tmp_path)
    client.key = "sk-LEAKME"
    with pytest.raises(JudgeError) as e:
        client.complete([{"role": "user", "content": "x"}])
    assert "sk-LEAKME" not in str(e.value)
    assert client._redact("echo sk-LEAKME") == "echo ***"


def test_silent_judge_fails_in_one_line_after_announced_retries(silent_judge, tmp_path):
    notes = []
    client = JudgeClient(silent_judge, "m", "sk-SILENT", timeout=0.3, max_retries=2, rate_limit=None,
                         sleep=lambda s: None, notify=notes.append)  # fmt: skip
    with pytest.raises(JudgeError) as e:
        client.complete([{"role": "user", "content": "x"}])
    assert len(notes) == 2 and "no answer within 0.3 s" in notes[0]
    assert "retry 1 of 2 in 1 s" in notes[0] and "retry 2 of 2 in 2 s" in notes[1]
    assert "no usable answer in 3 attempt(s) of up to 0.3 s each" in str(e.value)
    assert "--judge-timeout / --judge-retries" in str(e.value) and "sk-SILENT" not in str(e.value)


def test_silent_judge_stops_evaluate_before_any_generation(
    tiny_causal_lm_dir, labeled_rows, silent_judge, tmp_path, capsys, monkeypatch
):
    import time

    import cwpo.evaluate.generation as generation
    from cwpo.atomic_files import write_jsonl
    from cwpo.cli.main import main

    def forbidden(*args, **kwargs):
        raise AssertionError("nothing is generated for a judge that cannot answer")

    monkeypatch.setattr(generation, "generate_responses", forbidden)
    write_jsonl(tmp_path / "p.jsonl", labeled_rows[:2])
    argv = ["evaluate", "--policy", tiny_causal_lm_dir, "--reference", tiny_causal_lm_dir,
            "--prompts", str(tmp_path / "p.jsonl"), "--output", str(tmp_path / "out"),
            "--judge-url", silent_judge, "--judge-model", "m", "--judge-key", "sk-SILENT",
            "--judge-timeout", "0.3", "--judge-retries", "2", "--max-new-tokens", "3",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    start = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("cwpo")]
    assert len(lines) == 1 and lines[0].startswith("cwpo evaluate: error:")
    assert "accepts connections but sent no answer within 0.3 s" in lines[0]
    assert "Traceback" not in err and "sk-SILENT" not in err
    assert not (tmp_path / "out").exists()  # nothing half-written
    # a log, if one was written (its header holds the command line), never holds the key
    assert all(b"sk-SILENT" not in p.read_bytes() for p in tmp_path.glob("*.log"))


def test_secret_flags_are_redacted_in_the_logged_command():
    from cwpo.cli.main import redacted

    argv = ["evaluate", "--judge-key", "sk-A", "--judge-key=sk-B", "--judge-model", "m"]
    assert redacted(argv, ["sk-A", "sk-B", None]) == [
        "evaluate", "--judge-key", "***", "--judge-key=***", "--judge-model", "m"
    ]  # fmt: skip
    # argparse accepts abbreviated flags: redaction goes by the value, not the flag's spelling
    assert redacted(["evaluate", "--judge-k", "sk-C"], ["sk-C"]) == ["evaluate", "--judge-k", "***"]
