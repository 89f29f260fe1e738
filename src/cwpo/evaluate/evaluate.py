"""The evaluation stage: GRA of a policy against a reference, preference accuracy, judge win-rate.

``evaluate(cfg)`` generates a response per test prompt from the policy and from the reference
(same sampling settings and seeds, cached), scores both with the gold reward, and writes into
``cfg.output``: ``summary.json``, ``summary.md`` (a markdown table), ``rows.jsonl`` (one row per
prompt: prompt, both responses, both gold scores, the outcome and the judge's verdict) and
``manifest.json``. Under ``accelerate launch`` the ranks share the generation
(:mod:`cwpo.evaluate.generation`) and rank 0 alone scores and writes. With ``pairs`` (held-out human-labeled pairs) it adds preference accuracy,
with a judge URL or model (the other taken from the environment) the LLM-judge win-rate of the policy against the reference
responses (or against the prompts file's ``chosen`` column with ``judge_against=chosen``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cwpo.atomic_files import write_json, write_jsonl, write_text
from cwpo.config import check, to_dict
from cwpo.data.chat import PROMPT_MESSAGES, message_problem, row_prompt
from cwpo.data.readers import iter_records
from cwpo.data.schema import read_pairs
from cwpo.distributed import ranks
from cwpo.errors import DataError, warn
from cwpo.evaluate import generation
from cwpo.evaluate.generation import model_content_id
from cwpo.evaluate.gold import get_gold
from cwpo.evaluate.judge import JudgeClient, judge_pairs
from cwpo.evaluate.metric_registry import METRICS
from cwpo.evaluate.metrics import gra, win_rate
from cwpo.evaluate.preference import evaluate_preference
from cwpo.hashing import hash_config, sha256_path
from cwpo.models import cache_dir as default_cache
from cwpo.models.adapter_base import base_mismatch, check_model
from cwpo.outputs import atomic_dir, guard_output, write_manifest


@dataclass
class EvalConfig:
    policy: str = field(
        metadata={"help": "the aligned model: short name, folder (or LoRA adapter folder), hub id"}
    )
    reference: str = field(metadata={"help": "the model to compare against (the SFT model in the paper)"})
    prompts: str = field(metadata={"help": "JSONL/Parquet with a 'prompt' column (any pair file works)"})
    output: str = field(metadata={"help": "folder for summary.json, summary.md, rows.jsonl, manifest.json"})
    gold: str | None = field(
        default=None,
        metadata={"help": "gold reward: vader, a reward-model folder or hub id, or module:function"},
    )
    gold_format: Literal["auto", "chat", "pair", "concat"] = field(
        default="auto", metadata={"help": "how a reward model sees (prompt, response)"}
    )
    pairs: str | None = field(
        default=None, metadata={"help": "held-out human-labeled pairs for preference accuracy"}
    )
    beta: float = field(
        default=0.1, metadata={"help": "β of the implicit reward β·log(π/πref) (ranking is β-free)"}
    )
    judge_url: str | None = field(
        default=None, metadata={"help": "OpenAI-compatible endpoint (env CWPO_JUDGE_URL)"}
    )
    judge_model: str | None = field(
        default=None, metadata={"help": "judge model name (env CWPO_JUDGE_MODEL)"}
    )
    judge_key: str | None = field(
        default=None, metadata={"help": "API key (env OPENAI_API_KEY); never saved"}
    )
    judge_template: Literal["chatbot", "summary"] = field(
        default="chatbot",
        metadata={"help": "the paper's judging prompt: chatbot (HH, UFB) or summary (TL;DR)"},
    )
    judge_against: Literal["reference", "chosen"] = field(
        default="reference",
        metadata={"help": "judge the policy against the reference's or the dataset's chosen response"},
    )
    judge_rate_limit: float = field(default=2.0, metadata={"help": "judge requests per second"})
    judge_max_tokens: int = field(
        default=64, metadata={"help": "cap on the judge's answer (one sentence and a verdict)"}
    )
    judge_timeout: float = field(
        default=60.0, metadata={"help": "seconds to wait for each judge answer before a retry"}
    )
    judge_retries: int = field(
        default=5, metadata={"help": "retries per judge request (backoff 1, 2, 4, ... s) before failing"}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "tokens generated per response"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (0 = greedy)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass"})
    seed: int = field(default=0, metadata={"help": "sampling, bootstrap and judge-order seed"})
    num_prompts: int | None = field(default=None, metadata={"help": "use only the first N prompts"})
    batch_size: int = field(default=8, metadata={"help": "generation / scoring batch size"})
    max_length: int = field(default=512, metadata={"help": "max tokens of prompt+response when scoring"})
    dtype: Literal["bfloat16", "float32"] = field(
        default="bfloat16", metadata={"help": "generation weights dtype"}
    )
    chat_template: bool = field(
        default=False, metadata={"help": "wrap prompts in the tokenizer's chat template"}
    )
    n_boot: int = field(default=1000, metadata={"help": "bootstrap resamples for the 95 percent intervals"})
    cache_dir: str | None = field(
        default=None, metadata={"help": "generation/judge cache (default $CWPO_CACHE)"}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "replace an earlier cwpo output of this stage at --output (never other files)"},
    )

    def __post_init__(self):
        errors = []
        for name in ("policy", "reference", "prompts", "output"):
            if not getattr(self, name):
                errors.append(f"{name} is required")
        if self.prompts and not Path(self.prompts).exists():
            errors.append(f"prompts file not found: {self.prompts}")
        if self.pairs and not Path(self.pairs).exists():
            errors.append(f"pairs file not found: {self.pairs}")
        if not self.gold and not self.pairs and not (self.judge_url or self.judge_model):
            errors.append("nothing to measure: give --gold, --pairs or --judge-url/--judge-model")
        if self.beta <= 0:
            errors.append(f"beta must be > 0, got {self.beta}")
        if self.max_new_tokens < 1:
            errors.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            errors.append(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            errors.append(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_prompts is not None and self.num_prompts < 1:
            errors.append(f"num_prompts must be >= 1, got {self.num_prompts}")
        if self.batch_size < 1:
            errors.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.n_boot < 1:
            errors.append(f"n_boot must be >= 1, got {self.n_boot}")
        if self.judge_rate_limit <= 0:
            errors.append(f"judge_rate_limit must be > 0, got {self.judge_rate_limit}")
        if self.judge_max_tokens < 1:
            errors.append(f"judge_max_tokens must be >= 1, got {self.judge_max_tokens}")
        if self.judge_timeout <= 0:
            errors.append(f"judge_timeout must be > 0 seconds, got {self.judge_timeout}")
        if self.judge_retries < 0:
            errors.append(f"judge_retries must be >= 0, got {self.judge_retries}")
        check(errors, "evaluate config")


def read_prompt_rows(path: str | Path, n: int | None = None) -> list[dict]:
    """Rows with a non-empty text ``prompt`` from any file ``cwpo.data`` reads; the first ``n``."""
    from itertools import islice

    rows = []
    for i, row in islice(iter_records(path), n):
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise DataError(f"needs a non-empty text column 'prompt' (found {sorted(row)})", str(path), i)
        problem = row.get(PROMPT_MESSAGES) is not None and message_problem(row[PROMPT_MESSAGES])
        if problem:
            raise DataError(f"column {PROMPT_MESSAGES!r} {problem}", str(path), i)
        rows.append(row)
    return rows


def _fmt(x, pct: bool = True) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}" if pct else f"{x:.4g}"


def summary_markdown(summary: dict) -> str:
    """A markdown table of the metrics (percentages; std over three subsets; bootstrap 95% CI)."""
    lines = [
        f"# Evaluation: {summary['policy']} vs {summary['reference']}",
        "",
        "| metric | value (%) | std over 3 subsets | 95% CI | wins / ties / losses | n |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    fields = defaultdict(lambda: None, summary)
    for metric in METRICS.values():
        m = summary.get(metric.summary_key)
        if not m or m.get(metric.value_key) is None:
            continue
        lines.append(
            f"| {metric.eval_label.format_map(fields)} | {_fmt(m[metric.value_key])} | {_fmt(m['std'])} "
            f"| [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}] | {m['wins']} / {m['ties']} / {m['losses']} | {m['n']} |"
        )
    g = summary.get("gra")
    if g:
        lines += [
            "",
            f"Mean gold score: policy {_fmt(g['mean_policy'], False)}, reference {_fmt(g['mean_reference'], False)}.",
        ]
    j = summary.get("judge")
    if j and j.get("unparsed"):
        lines.append(f"Judge answers that could not be parsed (excluded): {j['unparsed']}.")
    return "\n".join(lines) + "\n"


def evaluate(cfg: EvalConfig, progress: bool = True) -> dict:
    """Run the evaluation described by ``cfg`` and write its outputs; return the summary dict."""

    # checked before any work; an earlier output is replaced atomically at the end, so a failed
    # run leaves it intact
    guard_output(cfg.output, "evaluate", overwrite=cfg.overwrite)
    for ref in (cfg.policy, cfg.reference):  # each loadable (an adapter: on the base it was trained on)
        check_model(ref)
    pairs = read_pairs(cfg.pairs, kind="labeled") if cfg.pairs else None  # a bad row stops us here
    if cfg.pairs:  # the implicit reward β·log π/πref means something only with the training reference
        mismatch = base_mismatch(cfg.policy, cfg.reference)
        if mismatch:
            warn(f"{mismatch}: preference accuracy is measured against the reference given")
    outputs: dict[str, list[dict]] = {}
    t0 = time.perf_counter()
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache()
    gold_fn = (
        get_gold(cfg.gold, batch_size=cfg.batch_size, max_length=cfg.max_length, text_format=cfg.gold_format)
        if cfg.gold
        else None
    )
    rows_in = read_prompt_rows(cfg.prompts, cfg.num_prompts)
    prompts = [r["prompt"] for r in rows_in]
    if (
        cfg.judge_url
        and cfg.judge_against == "chosen"
        and any(not isinstance(r.get("chosen"), str) for r in rows_in)
    ):
        raise DataError("judge_against=chosen needs a text 'chosen' column in every row", cfg.prompts)
    gen_kw = {
        "max_new_tokens": cfg.max_new_tokens,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "seed": cfg.seed,
        "batch_size": cfg.batch_size,
        "cache_dir": cache / "generations",
        "dtype": cfg.dtype,
        "chat_template": cfg.chat_template,
        "progress": progress,
    }
    timings, gen_stats = {}, {"policy": {}, "reference": {}}
    judged = bool(cfg.judge_url or cfg.judge_model)
    if judged:  # a missing judge URL or model fails here, before any generation
        client = JudgeClient(
            cfg.judge_url,
            cfg.judge_model,
            cfg.judge_key,
            rate_limit=cfg.judge_rate_limit,
            max_tokens=cfg.judge_max_tokens,
            timeout=cfg.judge_timeout,
            max_retries=cfg.judge_retries,
            cache_dir=cache / "judge",
        )
        client.check_reachable()  # seconds, not the full retry budget after the generation
    if gold_fn is not None or judged:  # preference accuracy alone needs no generated text
        t = time.perf_counter()
        # a chat model is given a conversation's turns; a plain-text model its transcript
        given = [row_prompt(r) for r in rows_in] if cfg.chat_template else prompts
        policy_out = generation.generate_responses(cfg.policy, given, stats=gen_stats["policy"], **gen_kw)
        reference_out = generation.generate_responses(
            cfg.reference, given, stats=gen_stats["reference"], **gen_kw
        )
        timings["generation_s"] = time.perf_counter() - t
    else:
        policy_out = reference_out = [None] * len(prompts)
    dist = ranks()
    if not dist.is_main:  # generation is sharded over the ranks; scoring and writing are rank 0's
        return {"rank": dist.rank, "n_prompts": len(prompts), "generation": gen_stats}

    summary: dict = {
        "policy": cfg.policy,
        "reference": cfg.reference,
        "gold": cfg.gold,
        "beta": cfg.beta,
        "judge_model": cfg.judge_model,
        "n_prompts": len(prompts),
        "generation": gen_stats,
    }
    out_rows = [
        {"prompt": p, "policy_response": a, "reference_response": b}
        for p, a, b in zip(prompts, policy_out, reference_out, strict=True)
    ]
    if gold_fn is not None:
        t = time.perf_counter()
        pol_scores = gold_fn(prompts, policy_out)
        ref_scores = gold_fn(prompts, reference_out)
        timings["gold_s"] = time.perf_counter() - t
        summary["gra"] = gra(pol_scores, ref_scores, n_boot=cfg.n_boot, seed=cfg.seed)
        summary["gold_info"] = gold_fn.describe()
        for row, a, b in zip(out_rows, pol_scores, ref_scores, strict=True):
            row.update(
                gold_policy=a, gold_reference=b, outcome="win" if a > b else ("tie" if a == b else "loss")
            )
    if cfg.pairs:
        t = time.perf_counter()
        summary["preference_accuracy"], pref_rows = evaluate_preference(
            cfg.policy, cfg.reference, pairs, beta=cfg.beta, batch_size=cfg.batch_size, max_length=cfg.max_length,
            n_boot=cfg.n_boot, seed=cfg.seed, cache_dir=cache / "logprobs",
            chat_template=cfg.chat_template,
        )  # fmt: skip
        timings["preference_s"] = time.perf_counter() - t
        outputs["preference_rows.jsonl"] = pref_rows
    if judged:
        t = time.perf_counter()
        baseline = reference_out if cfg.judge_against == "reference" else [r["chosen"] for r in rows_in]
        verdicts = judge_pairs(
            client,
            prompts,
            policy_out,
            baseline,
            template=cfg.judge_template,
            seed=cfg.seed,
            progress=progress,
        )
        summary["judge"] = win_rate([v["winner"] for v in verdicts], n_boot=cfg.n_boot, seed=cfg.seed)
        summary["judge"].update(against=cfg.judge_against, template=cfg.judge_template, client=client.stats)
        for row, v in zip(out_rows, verdicts, strict=True):
            row["judge"] = v
        timings["judge_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    summary["timings"] = timings

    config = to_dict(cfg)
    config["judge_key"] = "***" if cfg.judge_key else None  # never write a secret

    inputs = {
        "prompts": sha256_path(cfg.prompts),
        "pairs": sha256_path(cfg.pairs) if cfg.pairs else None,
        "policy": model_content_id(cfg.policy),
        "reference": model_content_id(cfg.reference),
    }
    metrics = {m.summary_key: summary[m.summary_key] for m in METRICS.values() if m.summary_key in summary}
    with atomic_dir(cfg.output) as out:
        for name, rows in outputs.items():
            write_jsonl(out / name, rows)
        write_jsonl(out / "rows.jsonl", out_rows)
        write_json(out / "summary.json", summary)
        write_text(out / "summary.md", summary_markdown(summary))
        write_manifest(out, "evaluate", config, hash_config(inputs), metrics)
    return summary
