"""The LLM annotator: P(A) from log-probs and from samples, both orders, calibration, the CLI.

A small OpenAI-compatible server on 127.0.0.1 (standard library) plays the LLM: it reads the two
responses out of the paper's prompt and answers from a fixed preference, with per-token
log-probabilities in the OpenAI format or, for the sampling path, without them (as ``transformers
serve``).
The real servers are exercised in ``test_llm_annotator_real_server.py``.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cwpo.annotator.llm import (
    LLMAnnotator,
    LLMAnnotatorConfig,
    annotate_llm,
    margin,
    pair_probability,
    probability_from_logprobs,
    probability_from_samples,
)
from cwpo.atomic_files import write_jsonl
from cwpo.cli.main import main
from cwpo.weighting import confidence

SLOT = re.compile(r"Response A: (.*)\nResponse B: (.*)\nFIRST", re.S)


def _lp_answer(p_a: float) -> dict:
    """An answer 'Comparison: ... Prefered: "A"' with top log-probs at the verdict token."""
    letter = "A" if p_a >= 0.5 else "B"
    tokens = ["Comparison", ":", " fine", ".\n", "Pre", "fered", ":", ' "', letter, '"']
    content = [
        {"token": t, "logprob": -0.01, "top_logprobs": [{"token": t, "logprob": -0.01}]} for t in tokens
    ]
    content[8]["top_logprobs"] = [
        {"token": "A", "logprob": math.log(p_a)},
        {"token": "B", "logprob": math.log(1 - p_a)},
        {"token": "C", "logprob": -12.0},
    ]
    content[8]["logprob"] = math.log(max(p_a, 1 - p_a))
    return {"answer": "".join(tokens), "logprobs": content}


class FakeLLM:
    """Prefers the longer response with probability ``strength``, and adds ``bias`` to slot A."""

    def __init__(
        self, logprobs: bool, strength: float = 0.8, bias: float = 0.0, refuse_logprobs: bool = False
    ):
        self.logprobs, self.strength, self.bias = logprobs, strength, bias
        self.refuse_logprobs = refuse_logprobs  # HTTP 400 on a request for log-probs
        self.requests: list[dict] = []

    def p_slot_a(self, a: str, b: str) -> float:
        p = self.strength if len(a) > len(b) else 1 - self.strength
        return min(0.99, max(0.01, p + self.bias))

    def answer(self, body: dict) -> dict:
        self.requests.append(body)
        a, b = SLOT.search(body["messages"][0]["content"]).groups()
        p = self.p_slot_a(a.strip(), b.strip())
        if self.logprobs and body.get("logprobs"):
            out = _lp_answer(p)
            return {
                "message": {"role": "assistant", "content": out["answer"]},
                "logprobs": {"content": out["logprobs"]},
            }
        rng = random.Random(f"{a}\x00{b}\x00{body.get('seed')}")  # deterministic, unlike hash()
        letter = "A" if rng.random() < p else "B"
        return {"message": {"role": "assistant", "content": f'Comparison: ok.\nPrefered: "{letter}"'}}


@pytest.fixture
def fake_server():
    servers = []

    def start(llm: FakeLLM) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if llm.refuse_logprobs and "logprobs" in body:
                    llm.requests.append(body)
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps({"choices": [{"index": 0, **llm.answer(body)}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for s in servers:
        s.shutdown()


def _pairs(n: int, seed: int = 0, name: str = "question") -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        short, long_ = "ok" * rng.randint(1, 3), "a longer answer " * rng.randint(2, 4)
        a, b = (long_, short) if rng.random() < 0.5 else (short, long_)
        rows.append({"prompt": f"{name} {i}", "response_a": a, "response_b": b})
    return rows


def test_probability_from_a_recorded_llama_cpp_answer():
    # recorded from llama-cpp-python's server on SmolLM2 (logprob_shape.json): the answer is the
    # bare letter "A"; among its top-5 alternatives A has log-prob -2.193 and B -3.492, so
    # P(A) = 1 / (1 + exp(-3.492 + 2.193)) = 0.7857; an answer that only lists "A: ... B: ..." has none
    shape = json.loads((Path(__file__).parent / "logprob_shape.json").read_text())
    content = shape["verdict_a"]["response"]["choices"][0]["logprobs"]["content"]
    assert probability_from_logprobs(content) == pytest.approx(1 / (1 + math.exp(-3.492 + 2.193)), abs=2e-3)
    listing = shape["no_verdict"]["response"]["choices"][0]["logprobs"]["content"]
    assert probability_from_logprobs(listing) is None


def test_probability_from_logprobs_reads_the_verdict_token():
    content = _lp_answer(0.3)["logprobs"]
    assert probability_from_logprobs(content) == pytest.approx(0.3 / (0.3 + 0.7))
    # an "A" earlier in the text is not the verdict: the token after "Prefered" is
    early = [{"token": "A", "logprob": 0.0, "top_logprobs": [{"token": "A", "logprob": 0.0}]}] + content
    assert probability_from_logprobs(early) == pytest.approx(0.3)
    assert probability_from_logprobs([{"token": "hello", "logprob": -1.0, "top_logprobs": []}]) is None


def test_probability_from_samples_and_both_orders():
    assert probability_from_samples(['Prefered: "A"'] * 3 + ["Prefered: B", "no idea"]) == (3.5 / 5, 4)
    assert probability_from_samples(["nothing"]) == (None, 0)
    # an LLM that always says "A": P(a first) = 1, P(b first) = 1 -> P(a > b) = 1/2, confidence 0
    assert pair_probability(1.0, 1.0) == pytest.approx(0.5) and confidence(margin(0.5)) == 0.0
    assert pair_probability(0.9, 0.2) == pytest.approx((0.9 + 0.8) / 2)
    assert pair_probability(None, 0.2) == pytest.approx(0.8) and pair_probability(None, None) is None
    assert margin(1.0) == pytest.approx(math.log((1 - 1e-4) / 1e-4))


@pytest.mark.parametrize("logprobs", [True, False])
def test_annotate_with_a_server_both_orders_and_calibration(tmp_path, fake_server, logprobs):
    llm = FakeLLM(logprobs=logprobs, strength=0.8, bias=0.15)  # a position bias towards slot A
    url = fake_server(llm)
    write_jsonl(tmp_path / "u.jsonl", _pairs(12))
    labeled = [
        {"prompt": r["prompt"], "chosen": max(r["response_a"], r["response_b"], key=len),
         "rejected": min(r["response_a"], r["response_b"], key=len)}
        for r in _pairs(10, seed=1, name="labelled question")
    ]  # fmt: skip
    write_jsonl(tmp_path / "l.jsonl", labeled)
    cfg = LLMAnnotatorConfig(url=url, model="fake", samples=6, rate_limit=1000.0)
    stats = annotate_llm(
        cfg, tmp_path / "u.jsonl", tmp_path / "w.jsonl", calibration=tmp_path / "l.jsonl",
        cache_dir=tmp_path / "cache", progress=False,
    )  # fmt: skip
    assert stats["probability_source"] == ("logprobs" if logprobs else "samples")
    assert stats["n_output"] == 12 and stats["n_unparsed"] == 0
    rows = [json.loads(x) for x in (tmp_path / "w.jsonl").read_text().splitlines()]
    # every pair asked in both orders (x 6 samples), for the 10 + 12 pairs; without log-probs the
    # first request (which asked for them) is the probe that chose sampling
    expected = 2 * 22 if logprobs else 1 + 2 * 22 * 6
    assert len(llm.requests) == stats["requests"] == expected
    assert all(len(r["chosen"]) > len(r["rejected"]) for r in rows)  # the longer one wins
    if not logprobs:  # each sample its own request, at the sampling temperature, seeds 0..k-1
        sampled = [b for b in llm.requests if "logprobs" not in b]
        assert {b["temperature"] for b in sampled} == {cfg.sample_temperature}
        assert sorted({b["seed"] for b in sampled}) == list(range(6))
    if logprobs:
        # both orders cancel the +0.15 slot-A bias: longer response first P(A) = 0.95, second
        # P(A) = 0.35, so P(longer wins) = (0.95 + 1 - 0.35) / 2 = 0.8, the LLM's true strength
        assert all(r["llm_probability_a"] in (pytest.approx(0.8), pytest.approx(0.2)) for r in rows)
        t = stats["temperature"]
        assert t < 1.0  # every labelled pair agrees with the human: sharpen
        assert rows[0]["confidence"] == pytest.approx(confidence(margin(0.8) / t))
        assert stats["calibration"]["after"]["nll"] < stats["calibration"]["before"]["nll"]
    # the same run again asks nothing (cached answers, cached output)
    n = len(llm.requests)
    again = annotate_llm(cfg, tmp_path / "u.jsonl", tmp_path / "w.jsonl", calibration=tmp_path / "l.jsonl",
                         cache_dir=tmp_path / "cache", progress=False)  # fmt: skip
    assert again.get("cached") and len(llm.requests) == n


def test_a_resumed_run_asks_only_what_it_had_not_asked(tmp_path, fake_server):
    llm = FakeLLM(logprobs=True)
    url = fake_server(llm)
    write_jsonl(tmp_path / "u.jsonl", _pairs(6))
    cfg = LLMAnnotatorConfig(url=url, model="fake", rate_limit=1000.0)
    annotate_llm(cfg, tmp_path / "u.jsonl", tmp_path / "w1.jsonl", cache_dir=tmp_path / "c", progress=False)
    first = len(llm.requests)
    write_jsonl(
        tmp_path / "u2.jsonl", _pairs(6) + _pairs(2, seed=5, name="new question")
    )  # a run that has more pairs
    stats = annotate_llm(
        cfg, tmp_path / "u2.jsonl", tmp_path / "w2.jsonl", cache_dir=tmp_path / "c", progress=False
    )
    assert len(llm.requests) - first == 2 * 2
    assert stats["requests"] == 2 * 8 and stats["fresh_requests"] == 2 * 2
    # the rate counts the 2 pairs the server answered, not the 6 read from the cache
    assert stats["labels_per_second"] == pytest.approx(2 / stats["seconds"])
    assert (tmp_path / "w1.jsonl").read_text().splitlines() == (
        tmp_path / "w2.jsonl"
    ).read_text().splitlines()[:6]


def test_logprobs_demanded_from_a_server_without_them_is_one_line(tmp_path, fake_server, capsys, monkeypatch):
    url = fake_server(FakeLLM(logprobs=False))
    write_jsonl(tmp_path / "u.jsonl", _pairs(2))
    monkeypatch.setenv("CWPO_CACHE", str(tmp_path / "c"))
    args = ["annotate", "--llm-url", url, "--llm-model", "fake", "--llm-probability", "logprobs"]
    assert main([*args, "--input", str(tmp_path / "u.jsonl"), "--output", str(tmp_path / "w.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "returned no token log-probabilities" in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not (tmp_path / "w.jsonl").exists()


def test_cli_flags_are_checked_before_any_request(tmp_path, capsys):
    write_jsonl(tmp_path / "u.jsonl", _pairs(2))
    base = ["annotate", "--input", str(tmp_path / "u.jsonl"), "--output", str(tmp_path / "w.jsonl")]
    for extra, message in (
        (["--llm-url", "http://127.0.0.1:9/v1"], "needs both --llm-url and --llm-model"),
        (["--llm-url", "http://x/v1", "--llm-model", "m", "--annotator", "ann"], "not both"),
        (["--annotator", "ann", "--calibration", "l.jsonl"], "--calibration fits the LLM"),
    ):
        assert main(base + extra) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


def test_the_verdict_token_is_the_letter_after_preferred():
    content = _lp_answer(0.3)["logprobs"]
    # a letter named after the verdict ("... since B rambles") is not the verdict
    tail = [
        {"token": t, "logprob": -0.1, "top_logprobs": [{"token": t, "logprob": -0.1}]}
        for t in (" since", " B")
    ]
    assert probability_from_logprobs(content + tail) == pytest.approx(0.3)
    # no "Prefered" line: the last letter; garbage entries are ignored, never a crash
    bare = [{"token": "B", "logprob": -0.2, "top_logprobs": [{"token": "A", "logprob": math.log(0.25)},
                                                              {"token": "B", "logprob": math.log(0.75)}]}]  # fmt: skip
    assert probability_from_logprobs(bare) == pytest.approx(0.25)
    assert (
        probability_from_logprobs([{"token": None, "top_logprobs": "x"}, {"token": "A", "logprob": "?"}])
        is None
    )


def test_a_server_refusing_logprobs_is_sampled(tmp_path, fake_server):
    llm = FakeLLM(logprobs=True, refuse_logprobs=True)
    write_jsonl(tmp_path / "u.jsonl", _pairs(3))
    cfg = LLMAnnotatorConfig(url=fake_server(llm), model="fake", samples=4, rate_limit=1000.0)
    stats = annotate_llm(cfg, tmp_path / "u.jsonl", tmp_path / "w.jsonl", progress=False)
    assert stats["probability_source"] == "samples" and stats["n_output"] == 3
    assert len(llm.requests) == 1 + 2 * 3 * 4  # one refused probe, then samples only


def test_calibration_signs_margins_by_the_human_label(tmp_path, fake_server):
    """Calibration pairs in the unlabelled view carry human_label "a" or "b"."""
    url = fake_server(FakeLLM(logprobs=True, strength=0.8))
    write_jsonl(tmp_path / "u.jsonl", _pairs(4))
    cal = [{**r, "human_label": "a" if len(r["response_a"]) > len(r["response_b"]) else "b"}
           for r in _pairs(12, seed=3, name="labelled")]  # fmt: skip
    assert {r["human_label"] for r in cal} == {"a", "b"}
    write_jsonl(tmp_path / "l.jsonl", cal)
    cfg = LLMAnnotatorConfig(url=url, model="fake", rate_limit=1000.0)
    kw = {"cache_dir": tmp_path / "c", "progress": False}
    stats = annotate_llm(
        cfg, tmp_path / "u.jsonl", tmp_path / "w.jsonl", calibration=tmp_path / "l.jsonl", **kw
    )
    assert stats["calibration"]["before"]["accuracy"] == 1.0 and stats["temperature"] < 1.0
    # another calibration set is another run (not the cached output of the first)
    write_jsonl(
        tmp_path / "l2.jsonl", [{**r, "human_label": "b" if r["human_label"] == "a" else "a"} for r in cal]
    )
    other = annotate_llm(
        cfg,
        tmp_path / "u.jsonl",
        tmp_path / "w.jsonl",
        calibration=tmp_path / "l2.jsonl",
        overwrite=True,
        **kw,
    )
    assert not other.get("cached") and other["calibration"]["before"]["accuracy"] == 0.0


def _cli(tmp_path, url, *extra):
    base = ["annotate", "--llm-url", url, "--llm-model", "fake", "--llm-retries", "0", "--progress", "false"]
    return main([*base, "--input", str(tmp_path / "u.jsonl"), "--output", str(tmp_path / "w.jsonl"), *extra])


def _one_line(capsys, *needles):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert all(n in err for n in needles), err


def test_llm_cli_refuses_a_foreign_output_and_bad_input(tmp_path, fake_server, capsys, monkeypatch):
    monkeypatch.setenv("CWPO_CACHE", str(tmp_path / "cache"))
    url = fake_server(FakeLLM(logprobs=True))
    write_jsonl(tmp_path / "u.jsonl", _pairs(2))
    (tmp_path / "w.jsonl").write_text("mine\n")
    assert _cli(tmp_path, url) == 2
    _one_line(capsys, "w.jsonl")
    assert (tmp_path / "w.jsonl").read_text() == "mine\n"
    (tmp_path / "w.jsonl").unlink()
    (tmp_path / "w.jsonl.stats.json").write_text("{}")  # someone else's file beside the output
    assert _cli(tmp_path, url) == 2
    _one_line(capsys, "w.jsonl.stats.json")
    assert (tmp_path / "w.jsonl.stats.json").read_text() == "{}" and not (tmp_path / "w.jsonl").exists()
    (tmp_path / "w.jsonl.stats.json").unlink()
    for content, needle in (("", "no pairs"), ('{"prompt": "p", "text": "x"}\n', "columns")):
        (tmp_path / "u.jsonl").write_text(content)
        assert _cli(tmp_path, url) == 2
        _one_line(capsys, "u.jsonl", needle)
    (tmp_path / "u.jsonl").unlink()
    assert _cli(tmp_path, url) == 2
    _one_line(capsys, "u.jsonl")


@pytest.mark.parametrize(
    "status,body,needle",
    [(200, b"not json", "malformed response"), (500, b"boom", "HTTP 500"), (401, b"bad key", "HTTP 401"),
     (200, json.dumps({"choices": [{"message": {"content": "I cannot say"}}]}).encode(), "no verdict")],
)  # fmt: skip
def test_llm_cli_on_a_broken_server_is_one_line(tmp_path, capsys, monkeypatch, status, body, needle):
    monkeypatch.setenv("CWPO_CACHE", str(tmp_path / "cache"))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        write_jsonl(tmp_path / "u.jsonl", _pairs(2))
        assert _cli(tmp_path, f"http://127.0.0.1:{server.server_address[1]}/v1", "--llm-samples", "2") == 2
    finally:
        server.shutdown()
    _one_line(capsys, needle, *(["--llm-retries"] if status == 500 else []))
    assert not (tmp_path / "w.jsonl").exists()


def test_answers_are_cached_per_server(tmp_path, fake_server):
    """Two servers under the same model name answer differently: neither reuses the other's answers."""
    write_jsonl(tmp_path / "u.jsonl", _pairs(3))
    kw = {"cache_dir": tmp_path / "c", "progress": False}
    for name, strength in (("long.jsonl", 0.8), ("short.jsonl", 0.2)):
        cfg = LLMAnnotatorConfig(url=fake_server(FakeLLM(logprobs=True, strength=strength)), model="same")
        annotate_llm(cfg, tmp_path / "u.jsonl", tmp_path / name, **kw)
    rows = {
        n: [json.loads(x) for x in (tmp_path / n).read_text().splitlines()]
        for n in ("long.jsonl", "short.jsonl")
    }
    assert all(len(r["chosen"]) > len(r["rejected"]) for r in rows["long.jsonl"])
    assert all(len(r["chosen"]) < len(r["rejected"]) for r in rows["short.jsonl"])


def test_the_llm_key_never_reaches_the_log(tmp_path, fake_server, capsys, monkeypatch):
    monkeypatch.setenv("CWPO_CACHE", str(tmp_path / "cache"))
    write_jsonl(tmp_path / "u.jsonl", _pairs(1))
    assert _cli(tmp_path, fake_server(FakeLLM(logprobs=True)), "--llm-key", "sk-secret-4321") == 0
    assert (tmp_path / "w.jsonl.log").exists()
    for f in tmp_path.rglob("*"):
        assert not f.is_file() or b"sk-secret-4321" not in f.read_bytes(), f


def test_pairs_with_a_verdict_in_one_order_only_are_counted():
    annotator = LLMAnnotator(LLMAnnotatorConfig(url="http://127.0.0.1:9/v1", model="m"), client=None)
    answers = {("q1", "x", "y"): 0.8, ("q1", "y", "x"): 0.3, ("q2", "x", "y"): 0.9, ("q2", "y", "x"): None}
    annotator.order_probability = lambda prompt, first, second: answers[prompt, first, second]
    rows = [{"prompt": q, "response_a": "x", "response_b": "y"} for q in ("q1", "q2")]
    assert annotator.pair_probabilities(rows) == pytest.approx([0.75, 0.9])  # q2: its one order, biased
    assert annotator.one_order == 1
