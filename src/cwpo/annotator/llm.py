"""Any chat LLM behind an OpenAI-compatible endpoint as the weak annotator.

Each pair (x, y_a, y_b) is put to the LLM twice with the paper's pairwise prompt
(:data:`cwpo.pairwise_prompts.CHATBOT_PROMPT`): once with y_a in slot A and once with y_b in slot A.
From each answer comes P(slot A is better):

* ``logprobs``: where the server returns token log-probabilities, at the token that states the
  verdict ("A" or "B" after "Prefered:") the probability mass of the A and B tokens among the
  top alternatives, renormalised: P = p_A / (p_A + p_B).
* ``samples``: otherwise ``k`` answers sampled at ``sample_temperature``, each its own request (with
  its own ``seed``, so each is cached on its own: ``transformers serve`` rejects or ignores ``n``);
  P = (n_A + 1/2) / (n_A + n_B + 1) over the answers that name a verdict (the 1/2 keeps the margin
  finite when every sample agrees).

The two orders are averaged, which removes a position bias: P(y_a ≻ y_b) = (P_a-first(A) +
1 − P_b-first(A)) / 2 (an LLM that always answers "A" gets 1/2, a confidence of 0). The margin is
Δ = logit(P); with labelled pairs (D_l) a temperature T is fitted on their human labels
(:func:`cwpo.annotator.calibration.fit_temperature`), and the output carries y_w, |Δ|/T and
c = 2σ(|Δ|/T) − 1 = |2P' − 1| in the same ``margin``/``confidence`` columns the Bradley-Terry
annotator writes, so every weighting and method works unchanged. A pair whose answers name no
verdict in either order is left out and counted (``n_unparsed``), never guessed.

Requests go through :class:`cwpo.llm_client.JudgeClient` (retries, rate limit, answer
cache by request hash: an interrupted run resumes without asking anything twice).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from cwpo.annotator.calibration import calibration_report, fit_temperature
from cwpo.annotator.score import label_rows, normalize_rows, open_labelled_output
from cwpo.atomic_files import write_json, write_jsonl
from cwpo.config import check
from cwpo.console import progress as progress_bar
from cwpo.data.schema import HUMAN_LABEL, read_pairs
from cwpo.errors import ConfigError, CWPOError
from cwpo.hashing import hash_config, sha256_path
from cwpo.llm_client import JudgeClient, JudgeError, chat_url
from cwpo.pairwise_prompts import TEMPLATES, parse_verdict, render_prompt

FORMAT_VERSION = 1
PROBABILITY_SOURCES = ("auto", "logprobs", "samples")
_EPS = 1e-4  # P is kept in [eps, 1 - eps]: |Δ| <= 9.2, a finite margin for every pair
_DECORATION = " \t\n\"'*`.:()[]"


@dataclass
class LLMAnnotatorConfig:
    url: str = field(default="", metadata={"help": "OpenAI-compatible endpoint (base .../v1 or full URL)"})
    model: str = field(default="", metadata={"help": "model name the server expects"})
    template: str = field(default="chatbot", metadata={"help": "pairwise prompt: chatbot or summary"})
    probability: Literal["auto", "logprobs", "samples"] = field(
        default="auto",
        metadata={"help": "P(A) from answer-token log-probs, from k samples, or auto (log-probs if served)"},
    )
    samples: int = field(default=8, metadata={"help": "answers sampled per order (probability: samples)"})
    sample_temperature: float = field(default=1.0, metadata={"help": "temperature of the sampled answers"})
    top_logprobs: int = field(default=5, metadata={"help": "alternatives per token asked for"})
    max_tokens: int = field(default=64, metadata={"help": "cap on each answer's length"})
    timeout: float = field(default=60.0, metadata={"help": "seconds per request attempt"})
    retries: int = field(default=5, metadata={"help": "retries per request (backoff 1, 2, 4, ... s)"})
    rate_limit: float = field(default=2.0, metadata={"help": "requests per second"})

    def __post_init__(self):
        errors = []
        if self.template not in TEMPLATES:
            errors.append(f"template must be one of {sorted(TEMPLATES)}, got {self.template!r}")
        if self.probability not in PROBABILITY_SOURCES:
            errors.append(f"probability must be one of {PROBABILITY_SOURCES}, got {self.probability!r}")
        if int(self.samples) < 1:
            errors.append(f"samples must be >= 1, got {self.samples}")
        if not float(self.sample_temperature) > 0:
            errors.append(f"sample_temperature must be > 0, got {self.sample_temperature}")
        if not 1 <= int(self.top_logprobs) <= 20:
            errors.append(f"top_logprobs must be in 1..20, got {self.top_logprobs}")
        check(errors, "LLM annotator config")


def _letter(token) -> str | None:
    bare = token.strip(_DECORATION) if isinstance(token, str) else ""
    return bare if bare in ("A", "B") else None


def probability_from_logprobs(content: list[dict]) -> float | None:
    """P(slot A) at the verdict token of one answer's per-token log-probabilities (OpenAI format:
    ``[{"token", "logprob", "top_logprobs": [{"token", "logprob"}, ...]}, ...]``).

    The verdict token is the first generated token that is "A" or "B" (quotes and spaces aside)
    after the last "pref" in the text (the prompt's ``Prefered:`` line: a letter named later, as in
    ``Prefered: A, since B rambles``, is not the verdict); in an answer without that line, the last
    letter token only when :func:`parse_verdict` reads a verdict from the text (a bare "A" line).
    None otherwise (an answer that lists "A: ... B: ..." names no verdict), or when neither letter
    is among the verdict token's alternatives.
    """
    starts, text = [], ""
    for entry in content:
        starts.append(len(text))
        text += entry.get("token") if isinstance(entry.get("token"), str) else ""
    pref = text.lower().rfind("pref")
    letters = [i for i, entry in enumerate(content) if _letter(entry.get("token", "")) is not None]
    after = [i for i in letters if pref >= 0 and starts[i] >= pref]
    if after:
        at = after[0]
    elif pref < 0 and letters and parse_verdict(text) is not None:
        at = letters[-1]  # an answer that is only the letter (as parse_verdict reads it): its last letter
    else:
        return None  # no verdict: letters elsewhere (an answer that lists "A: ... B: ...") are not one
    mass = {"A": 0.0, "B": 0.0}
    alternatives = content[at].get("top_logprobs") or [content[at]]
    for alt in alternatives if isinstance(alternatives, list) else []:
        if not isinstance(alt, dict):
            continue
        letter = _letter(alt.get("token", ""))
        logprob = alt.get("logprob")
        if letter is not None and isinstance(logprob, int | float) and math.isfinite(logprob):
            mass[letter] += math.exp(min(float(logprob), 0.0))
    total = mass["A"] + mass["B"]
    return None if total <= 0 else mass["A"] / total


def probability_from_samples(answers: list[str]) -> tuple[float | None, int]:
    """(P(slot A), answers with a verdict) from sampled answers: (n_A + 1/2) / (n + 1)."""
    verdicts = [parse_verdict(a) for a in answers]
    n_a, n_b = verdicts.count("A"), verdicts.count("B")
    n = n_a + n_b
    return (None if n == 0 else (n_a + 0.5) / (n + 1)), n


def pair_probability(p_a_first: float | None, p_b_first: float | None) -> float | None:
    """P(y_a ≻ y_b) from P(slot A) with y_a first and with y_b first (see the module docstring);
    one order alone when the other gave no verdict, None when neither did."""
    both = [p for p in (p_a_first, None if p_b_first is None else 1.0 - p_b_first) if p is not None]
    return sum(both) / len(both) if both else None


def margin(p: float) -> float:
    """Δ = logit(P), with P kept in [eps, 1 − eps]."""
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


class LLMAnnotator:
    """Asks ``client`` about pairs in both orders; ``source`` says how P was read (per run)."""

    def __init__(self, cfg: LLMAnnotatorConfig, client: JudgeClient):
        self.cfg, self.client = cfg, client
        self.source: str | None = None if cfg.probability == "auto" else cfg.probability
        self.requests = 0
        self.one_order = 0  # pairs with a verdict in one order only: their position bias stays

    def _messages(self, prompt: str, first: str, second: str) -> list[dict]:
        return [{"role": "user", "content": render_prompt(self.cfg.template, prompt, first, second)}]

    def _ask_logprobs(self, messages: list[dict]) -> dict:
        self.requests += 1
        return self.client.complete_choice(
            messages, {"temperature": 0.0, "logprobs": True, "top_logprobs": int(self.cfg.top_logprobs)}
        )

    def _probe(self, messages: list[dict]) -> dict | None:
        """auto: does the server return log-probabilities? Decided once, on the first request."""
        try:
            choice = self._ask_logprobs(messages)
        except JudgeError as e:
            if "HTTP 4" not in str(e):
                raise
            choice = None  # the server refuses the logprobs fields (older transformers serve)
        self.source = "logprobs" if choice is not None and choice["logprobs"] else "samples"
        return choice if self.source == "logprobs" else None

    def order_probability(self, prompt: str, first: str, second: str) -> float | None:
        messages = self._messages(prompt, first, second)
        if self.source is None:
            choice = self._probe(messages)
            if choice is not None:
                return probability_from_logprobs(choice["logprobs"])
        if self.source == "logprobs":
            choice = self._ask_logprobs(messages)
            if not choice["logprobs"]:
                raise CWPOError(
                    f"{self.client.url} returned no token log-probabilities: use --llm-probability samples "
                    "(or auto) with this server"
                )
            return probability_from_logprobs(choice["logprobs"])
        answers = []
        for k in range(int(self.cfg.samples)):
            self.requests += 1
            extra = {"temperature": float(self.cfg.sample_temperature), "seed": k}
            answers.append(self.client.complete_choice(messages, extra)["answer"])
        return probability_from_samples(answers)[0]

    def pair_probabilities(self, rows: list[dict], progress=None) -> list[float | None]:
        out = []
        for row in rows:
            p_a = self.order_probability(row["prompt"], row["response_a"], row["response_b"])
            p_b = self.order_probability(row["prompt"], row["response_b"], row["response_a"])
            out.append(pair_probability(p_a, p_b))
            self.one_order += (p_a is None) != (p_b is None)
            if progress is not None:
                progress.update(1)
        return out


def _signed_human_margins(rows: list[dict], probs: list[float | None]) -> list[float]:
    """Δ signed towards the human-chosen response (rows in the unlabeled view with human_label)."""
    out = []
    for row, p in zip(rows, probs, strict=True):
        if p is not None:
            m = margin(p)
            out.append(m if row[HUMAN_LABEL] == "a" else -m)
    return out


def annotate_llm(
    cfg: LLMAnnotatorConfig,
    input_path: str | Path,
    output_path: str | Path,
    *,
    calibration: str | Path | None = None,
    key: str | None = None,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
    client: JudgeClient | None = None,
) -> dict:
    """Label every pair of ``input_path`` with the LLM into ``output_path`` (JSONL); return stats.

    ``calibration``: labelled pairs (D_l) on which the temperature is fitted (1 without). The
    statistics (``OUTPUT.stats.json``) name the probability source, T, the ECE before and after
    on D_l, the pairs left out and the labels per second.
    """

    output_path = Path(output_path)
    rows = normalize_rows(read_pairs(input_path), str(input_path))
    cal_rows = normalize_rows(read_pairs(calibration), str(calibration)) if calibration else []
    if calibration and not all(r.get(HUMAN_LABEL) for r in cal_rows):
        raise ConfigError(f"{calibration}: calibration pairs need human labels (chosen/rejected columns)")
    client = client or JudgeClient(
        cfg.url,
        cfg.model,
        key,
        timeout=cfg.timeout,
        max_retries=cfg.retries,
        rate_limit=cfg.rate_limit,
        max_tokens=cfg.max_tokens,
        # one cache per endpoint: another server under the same model name answers differently
        cache_dir=Path(cache_dir) / hash_config({"url": chat_url(cfg.url)})[:16] if cache_dir else None,
        flags="llm",
    )
    run_key = hash_config(
        {
            "llm": {k: v for k, v in vars(cfg).items() if k not in ("timeout", "retries", "rate_limit")},
            "url": client.url,
            "input": sha256_path(input_path),
            "calibration": sha256_path(calibration) if calibration else None,
            "format": FORMAT_VERSION,
        }
    )
    stats_path, cached = open_labelled_output(output_path, run_key, overwrite)
    if cached is not None:
        return cached

    annotator = LLMAnnotator(cfg, client)
    start = time.perf_counter()
    bar = progress_bar(
        total=len(cal_rows) + len(rows), desc="annotate (LLM)", unit="pair", disable=not progress
    )
    cal_probs = annotator.pair_probabilities(cal_rows, bar)
    annotator.one_order = 0  # counted over the pairs to label only
    probs = annotator.pair_probabilities(rows, bar)
    bar.close()
    elapsed = time.perf_counter() - start

    temperature, cal = 1.0, {}
    signed = _signed_human_margins(cal_rows, cal_probs)
    if calibration:
        if len(signed) < 2:
            raise CWPOError(f"{calibration}: fewer than 2 calibration pairs got a verdict from the LLM")
        temperature = fit_temperature(signed)
        cal = {
            "before": calibration_report(signed, 1.0),
            "after": calibration_report(signed, temperature),
        }
    kept = [i for i, p in enumerate(probs) if p is not None]
    margins = torch.tensor([margin(probs[i]) / temperature for i in kept], dtype=torch.float64)
    out_rows = label_rows([rows[i] for i in kept], margins) if kept else []
    for row, i in zip(out_rows, kept, strict=True):
        row["llm_probability_a"] = probs[i]
    if rows and not out_rows:
        raise CWPOError(f"{input_path}: the LLM named no verdict for any pair; nothing was written")
    write_jsonl(output_path, out_rows)
    agree = [r["human_agrees"] for r in out_rows if "human_agrees" in r]
    labels = len(cal_rows) + len(rows)
    fresh = annotator.requests - client.stats["cache_hits"]
    stats = {
        "key": run_key,
        "annotator": f"llm:{cfg.model}@{client.url}",
        "input": str(input_path),
        "output": str(output_path),
        "probability_source": annotator.source,
        "samples_per_order": int(cfg.samples) if annotator.source == "samples" else None,
        "temperature": temperature,
        "calibration": cal,
        "n_input": len(rows),
        "n_output": len(out_rows),
        "n_unparsed": len(rows) - len(out_rows),
        "n_one_order": annotator.one_order,  # a verdict in one order only: not position-debiased
        "n_calibration": len(cal_rows),
        "mean_confidence": sum(r["confidence"] for r in out_rows) / len(out_rows) if out_rows else None,
        "human_agreement": sum(agree) / len(agree) if agree else None,
        "n_human_labels": len(agree),
        "requests": annotator.requests,
        "cache_hits": client.stats["cache_hits"],
        "seconds": elapsed,
        "fresh_requests": fresh,
        # labels per second of server work: cached answers (a resumed run's) cost nothing and are
        # not counted, so a resumed run reports its server's rate, not the cache's
        "labels_per_second": labels * fresh / annotator.requests / elapsed if fresh and elapsed > 0 else None,
    }
    write_json(stats_path, stats)
    return stats
