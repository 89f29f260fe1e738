"""Training, annotation and generation speed on this CPU: cwpo's fast paths vs today's path vs TRL.

One run, one process for the timed comparisons (variants interleaved A B C ..., then reversed,
after warm-up; the CPU is shared, so ratios are medians of per-repeat ratios), fresh subprocesses
for peak memory and for the levers that need a process of their own (allocator, thread layout,
torch.compile). Nothing is typed by hand: every figure below comes from this script.

    PYTHONPATH=src .venv/bin/python benchmarks/speed.py    # -> benchmarks/results/speed.json

Paths (same model, same pairs, same collated batch within a shape):
  base      today's path (commit 0cd68b4 behaviour, by switch): fp32 weights + bf16 autocast as the
            recipes set it, one padded forward (``cw_length_groups=False``)
  fast      cwpo's default now: ``bf16: auto`` (probe) -> bf16 frozen base + fp32 LoRA, or fp32;
            rows in length groups
  trl_docs  TRL 1.16 DPOTrainer as its docs show it (``DPOConfig`` defaults on CPU: bf16 autocast,
            activation checkpointing on, reference forward in every step) + the same LoRA
  cw_same / trl_same  WeightedDPOTrainer (no length groups) and DPOTrainer with identical settings
            (fast precision, reference precomputed): ``cw_step_time_ratio_vs_trl``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SHARED = Path(os.environ.get("CWPO_SHARED_DATA", HERE.parents[1] / "shared" / "data"))
MODEL = "smollm2-135m-instruct"
SHAPES = {"short": {"pairs": 16, "max_length": 64}, "long": {"pairs": 8, "max_length": 256}}
TMP = Path("/tmp/cwpo-bench-speed")


# ---------------------------------------------------------------- data
def short_rows(tok, n: int, seed: int = 0) -> list[dict]:
    """Sentiment-track pairs: an 8-word IMDb prefix (~12 tokens), two 24-32-token continuations."""
    from cwpo.data.imdb import clean_review

    rng = random.Random(seed)
    texts = []
    with gzip.open(SHARED / "imdb" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            words = clean_review(json.loads(line)["text"]).split()
            if len(words) > 60:
                texts.append(words)
            if len(texts) == 4 * n:
                break
    rows = []
    for i in range(n):
        a, b = texts[2 * i], texts[2 * i + 1]

        def cont(words, k):
            ids = tok(" " + " ".join(words[8:60]), add_special_tokens=False)["input_ids"][:k]
            return tok.decode(ids)

        rows.append(
            {
                "prompt": " ".join(a[:8]),
                "chosen": cont(a, rng.randint(24, 32)),
                "rejected": cont(b, rng.randint(24, 32)),
            }
        )
    return rows


def hh_rows(tok, n: int, max_tokens: int = 256) -> list[dict]:
    """HH-RLHF helpful-base test pairs whose prompt + longer response fit in ``max_tokens``."""
    from cwpo.data.formats import from_hh_rlhf

    rows = []
    with gzip.open(SHARED / "hh-rlhf" / "helpful-base" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = from_hh_rlhf(json.loads(line))
            n_p = len(tok(row["prompt"], add_special_tokens=False)["input_ids"])
            n_r = max(len(tok(row[k], add_special_tokens=False)["input_ids"]) for k in ("chosen", "rejected"))
            if n_p + n_r + 2 <= max_tokens:
                rows.append(row)
            if len(rows) == n:
                break
    return rows


# ---------------------------------------------------------------- model FLOPs
def model_flops(config, lengths: list[int]) -> float:
    """Forward + backward FLOPs (3 x forward) of sequences of these real lengths, LM head included.

    Forward per token: 2 x (all linear weights of the layers + the LM head) + attention scores and
    mixing 4 x layers x hidden x (context length) summed over the causal positions.
    """
    d, L = config.hidden_size, config.num_hidden_layers
    kv = config.num_key_value_heads * (d // config.num_attention_heads)
    inter, vocab = config.intermediate_size, config.vocab_size
    per_layer = d * d * 2 + 2 * d * kv + 3 * d * inter
    linear = L * per_layer + d * vocab
    fwd = sum(2 * linear * n + 4 * L * d * n * (n + 1) / 2 for n in lengths)
    return 3 * fwd


# ---------------------------------------------------------------- DPO paths
def build_dpo(path: str, rows: list[dict], shape: dict, out: Path):
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from cwpo.align.common import lora_config, training_attention, training_precision
    from cwpo.align.trainer import WeightedDPOTrainer
    from cwpo.models.loading import load_causal_lm

    torch.manual_seed(0)
    model, tok = load_causal_lm(MODEL)
    model.train()
    common = {
        "output_dir": str(out / path),
        "per_device_train_batch_size": shape["pairs"],
        "max_length": shape["max_length"],
        "use_cpu": True,
        "report_to": "none",
        "disable_tqdm": True,
        "seed": 0,
        "learning_rate": 1e-5,
    }
    lora = lora_config(8, 16, 0.05)
    if path == "trl_docs":  # TRL's documented defaults (bf16, activation checkpointing, live reference)
        args = DPOConfig(**common)
    else:
        if path == "base":
            weights, autocast = "float32", True  # the recipes' `bf16: true` before this change
        else:
            weights, autocast = training_precision("auto", lora=True)
        if weights != "float32":
            model.to(getattr(torch, weights))
        if path.startswith("fast") and path != "fast_sdpa":  # fast_sdpa: the attention lever off
            attention = training_attention(shape["max_length"])
            if attention:
                model.set_attn_implementation(attention)
        args = DPOConfig(
            **common,
            bf16=autocast,
            activation_checkpointing=False,
            loss_type=["sigmoid"],
            beta=0.1,
            disable_dropout=True,
        )
    data = Dataset.from_list([dict(r, weight=0.2 + 0.6 * (i % 5) / 4) for i, r in enumerate(rows)])
    kw = {"model": model, "args": args, "processing_class": tok, "peft_config": lora}
    if path in ("trl_docs", "trl_same"):
        trainer = DPOTrainer(train_dataset=data.remove_columns("weight"), **kw)
    else:
        fast = path.startswith("fast")  # fast_no_head / fast_no_groups: one lever off
        trainer = WeightedDPOTrainer(
            train_dataset=data,
            cw_loss="dpo",
            cw_length_groups=fast and path != "fast_no_groups",
            cw_response_head=fast and path != "fast_no_head",
            **kw,
        )
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    trainer.current_gradient_accumulation_steps = 1
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(shape["pairs"])])
    if path != "trl_docs":  # reference log-probs precomputed (values irrelevant to speed)
        trainer.precompute_ref_logps = True
        batch["ref_chosen_logps"] = torch.full((shape["pairs"],), -40.0)
        batch["ref_rejected_logps"] = torch.full((shape["pairs"],), -42.0)
    return trainer, batch


def one_step(trainer, batch) -> float:
    start = time.perf_counter()
    trainer.training_step(trainer.model, dict(batch))
    trainer.optimizer.step()
    trainer.optimizer.zero_grad()
    return time.perf_counter() - start


def interleave(fns: dict, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times, order rotated every repeat, after ``warmup`` calls."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            times[n].append(fns[n]())
        print(f"  repeat {r}: " + " ".join(f"{n} {times[n][-1]:.2f}s" for n in names), flush=True)
    return times


def ratio(times: dict, a: str, b: str) -> float:
    """Median over repeats of time(b)/time(a): how many times faster a is than b."""
    return statistics.median(tb / ta for ta, tb in zip(times[a], times[b], strict=True))


def bench_dpo(shape_name: str, args, levers: bool = False) -> dict:
    import torch

    from cwpo.models.loading import load_tokenizer

    shape = SHAPES[shape_name]
    tok = load_tokenizer(MODEL)
    rows = (short_rows if shape_name == "short" else hh_rows)(tok, shape["pairs"])
    paths = ["base", "fast", "trl_docs"] + (["cw_same", "trl_same"] if shape_name == "short" else [])
    if levers:  # the fast path against itself with one lever off (a part of its own: memory)
        paths = ["fast", "fast_no_head", "fast_sdpa", "fast_no_groups"]
    built = {p: build_dpo(p, rows, shape, TMP) for p in paths}
    ids = built[paths[0]][1]["input_ids"]
    for p in paths:
        assert torch.equal(built[p][1]["input_ids"], ids), p
    lengths = built[paths[0]][1]["attention_mask"].sum(dim=1).tolist()
    real_tokens = int(sum(lengths))
    flops = model_flops(built[paths[0]][0].model.get_base_model().config, lengths)
    print(
        f"dpo {shape_name}: {shape['pairs']} pairs, {real_tokens} real tokens, width {ids.shape[1]}",
        flush=True,
    )
    repeats = args.repeats if shape_name == "short" else max(2, args.repeats - 1)
    times = interleave({p: (lambda p=p: one_step(*built[p])) for p in paths}, repeats, args.warmup)
    med = {p: statistics.median(t) for p, t in times.items()}
    out = {
        "pairs": shape["pairs"],
        "rows": len(lengths),
        "real_tokens": real_tokens,
        "padded_tokens": int(ids.numel()),
        "model_flops_per_step": flops,
        "step_time_median_s": med,
        "step_times_s": times,
        "tokens_per_s": {p: real_tokens / m for p, m in med.items()},
        "model_flops_per_s": {p: flops / m for p, m in med.items()},
    }
    if levers:
        out["lever_speedup"] = {  # fast over fast-with-this-lever-off
            p.removeprefix("fast_"): ratio(times, "fast", p) for p in paths if p.startswith("fast_")
        }
        built.clear()
        return out
    out["speedup_fast_vs_base"] = ratio(times, "fast", "base")
    out["speedup_fast_vs_trl_docs"] = ratio(times, "fast", "trl_docs")
    if "cw_same" in times:
        out["cw_step_time_ratio_vs_trl"] = 1 / ratio(times, "cw_same", "trl_same")
    built.clear()
    return out


# ---------------------------------------------------------------- SFT
def bench_sft(args) -> dict:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from cwpo.align.common import lora_config, training_attention, training_precision
    from cwpo.models.loading import load_causal_lm, load_tokenizer

    tok = load_tokenizer(MODEL)
    rows = [{"prompt": r["prompt"], "completion": r["chosen"]} for r in short_rows(tok, 16)]
    built = {}
    for path in ("base", "fast"):
        model, tok = load_causal_lm(MODEL)
        weights, autocast = ("float32", True) if path == "base" else training_precision("auto", lora=True)
        model.to(getattr(torch, weights))
        if path == "fast" and training_attention(64):
            model.set_attn_implementation(training_attention(64))
        cfg = SFTConfig(
            output_dir=str(TMP / f"sft-{path}"),
            per_device_train_batch_size=16,
            max_length=64,
            bf16=autocast,
            activation_checkpointing=False,
            use_cpu=True,
            report_to="none",
            disable_tqdm=True,
            completion_only_loss=True,
        )
        tr = SFTTrainer(
            model=model,
            args=cfg,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            peft_config=lora_config(8, 16, 0.05),
        )
        tr.create_optimizer_and_scheduler(num_training_steps=1000)
        tr.current_gradient_accumulation_steps = 1
        batch = tr.data_collator([tr.train_dataset[i] for i in range(16)])
        built[path] = (tr, batch)
    real = int(built["base"][1]["attention_mask"].sum())
    times = interleave({p: (lambda p=p: one_step(*built[p])) for p in built}, args.repeats, args.warmup)
    return {
        "real_tokens": real,
        "tokens_per_s": {p: real / statistics.median(t) for p, t in times.items()},
        "step_times_s": times,
        "speedup_fast_vs_base": ratio(times, "fast", "base"),
    }


# ---------------------------------------------------------------- annotator
def bench_annotator(args) -> dict:
    """BT training pairs/s (MiniLM-L6, HH lengths, max_length 256, batch 32) and scoring pairs/s."""
    import copy

    import torch
    from transformers import AutoModelForSequenceClassification

    from cwpo.annotator import train as T
    from cwpo.annotator.losses import bt_loss
    from cwpo.annotator.model import Annotator, collate, encode_pairs, scalar_scores
    from cwpo.models.loading import load_tokenizer
    from cwpo.models.registry import resolve_model
    from cwpo.runtime import resolve_bf16

    tok = load_tokenizer("minilm-l6")
    rows = []
    with gzip.open(SHARED / "hh-rlhf" / "helpful-base" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        from cwpo.data.formats import RowProblem, from_hh_rlhf

        for line in fh:
            try:
                rows.append(from_hh_rlhf(json.loads(line)))
            except RowProblem:  # an HH pair with an empty response (cwpo data skips it too)
                continue
            if len(rows) == args.annotator_pairs:
                break

    def encode(max_length):
        return encode_pairs(
            tok,
            "bt",
            [r["prompt"] for r in rows],
            [r["chosen"] for r in rows],
            [r["rejected"] for r in rows],
            max_length,
        )

    # 256: the max_length of the baseline (the same-computation comparison); beside it the library's
    # default at run time when that differs (128 for a while, 256 again since the HH defaults study)
    encodings = {
        256: encode(256),
        T.TrainAnnotatorConfig.max_length: encode(T.TrainAnnotatorConfig.max_length),
    }
    enc = encodings[256]
    lengths = {
        k: [max(len(a), len(b)) for a, b in zip(e.seq_a, e.seq_b, strict=True)] for k, e in encodings.items()
    }
    torch.manual_seed(0)
    base_model = AutoModelForSequenceClassification.from_pretrained(resolve_model("minilm-l6"), num_labels=1)
    base_model.config.pad_token_id = tok.pad_token_id
    fast_bf16 = resolve_bf16("auto")
    short = T.TrainAnnotatorConfig.max_length
    variants = {  # name: (length buckets, autocast dtype, max_length)
        "base": (False, torch.bfloat16, 256),  # the old path: random batches, bf16 autocast, 256 tokens
        "fast": (True, torch.bfloat16 if fast_bf16 else torch.float32, 256),  # same computation
        "buckets_other_precision": (True, torch.float32 if fast_bf16 else torch.bfloat16, 256),
    }
    # the attention's dropout off (TrainAnnotatorConfig.attention_dropout, the default since the HH runs):
    # the CPU's fused attention kernel instead of the math path; not the same computation either
    variants["fast_attn_dropout0"] = (True, torch.bfloat16 if fast_bf16 else torch.float32, 256)
    if short != 256:  # the default max_length (chosen on accuracy in benchmarks/annotator_defaults.py):
        # not the same computation (pairs are cut elsewhere), reported beside, never as the bar
        variants["fast_default_length"] = (True, torch.bfloat16 if fast_bf16 else torch.float32, short)
    state = {}
    for name, (buckets, dtype, max_len) in variants.items():
        model = copy.deepcopy(base_model).train()
        if name == "fast_attn_dropout0":
            model.config.attention_probs_dropout_prob = 0.0
            for n, m in model.named_modules():
                if n.endswith("attention.self"):
                    m.dropout.p = 0.0
        opt = torch.optim.Adam(model.parameters(), lr=2e-5)
        plan = T._batches(len(rows), 32, random.Random(0), lengths[max_len] if buckets else None)
        state[name] = {
            "model": model,
            "opt": opt,
            "plan": plan,
            "dtype": dtype,
            "enc": encodings[max_len],
            "i": 0,
        }

    def step(name):
        s = state[name]
        batch = s["plan"][s["i"] % len(s["plan"])]
        s["i"] += 1
        e = s["enc"]
        seqs = [e.seq_a[i] for i in batch] + [e.seq_b[i] for i in batch]
        starts = [e.start_a[i] for i in batch] + [e.start_b[i] for i in batch]
        ids, attn, _ = collate(seqs, starts, tok.pad_token_id)
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=s["dtype"], enabled=s["dtype"] != torch.float32):
            sc = scalar_scores(s["model"], ids, attn)
        loss = bt_loss(sc[: len(batch)], sc[len(batch) :]).float().mean()
        s["opt"].zero_grad(set_to_none=True)
        loss.backward()
        s["opt"].step()
        return time.perf_counter() - t

    n_batches = len(state["base"]["plan"])
    for name in variants:  # one warm-up step each (its batch is then timed again in the epoch)
        step(name)
        state[name]["i"] = 0
    totals = {n: 0.0 for n in variants}
    per_batch = {n: [] for n in variants}
    for b in range(n_batches):
        order = list(variants) if b % 2 == 0 else list(variants)[::-1]
        for n in order:
            t = step(n)
            totals[n] += t
            per_batch[n].append(t)
        print(
            f"  annotator batch {b}: " + " ".join(f"{n} {per_batch[n][-1]:.2f}s" for n in variants),
            flush=True,
        )
    train = {
        "pairs": len(rows),
        "batches": n_batches,
        "fast_precision": "bf16 autocast" if fast_bf16 else "fp32",
        "pairs_per_s": {n: len(rows) / totals[n] for n in variants},
        "epoch_time_s": totals,
        "speedup_fast_vs_base": totals["base"] / totals["fast"],
        "default_max_length": short,
        "speedup_attn_dropout0_vs_base": totals["base"] / totals["fast_attn_dropout0"],
        "speedup_default_length_vs_base": (
            totals["base"] / totals["fast_default_length"] if "fast_default_length" in totals else None
        ),
        "real_tokens": sum(len(a) + len(b) for a, b in zip(enc.seq_a, enc.seq_b, strict=True)),
    }
    # annotation (scoring): the annotate default (fp32 weights) vs bf16 weights, interleaved
    scorers = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        m = copy.deepcopy(base_model).eval().to(dtype)
        scorers[name] = Annotator("bt", m, tok, 256)

    def score(name):
        t = time.perf_counter()
        scorers[name].margins_from_encoded(enc, batch_size=64)
        return time.perf_counter() - t

    st = interleave({n: (lambda n=n: score(n)) for n in scorers}, max(2, args.repeats // 2), 1)
    annotate = {n: len(rows) / statistics.median(t) for n, t in st.items()}
    return {"train": train, "annotate_pairs_per_s": annotate, "annotate_times_s": st}


# ---------------------------------------------------------------- generation
def bench_generation(args) -> dict:
    """Sampling tokens/s, batch 64, 24 new tokens, through cwpo.evaluate.generation (cache off)."""
    import shutil

    from cwpo.data.imdb import imdb_prompts
    from cwpo.evaluate.generation import generate_responses

    prompts = [r["prompt"] for r in imdb_prompts(SHARED / "imdb", n=64, seed=0)]
    variants = {
        "base": {"dtype": "bfloat16"},  # today's default (bf16 weights, dynamic KV cache)
        "fp32": {"dtype": "float32"},
        "fast": {"dtype": "auto"},
        "static_cache": {"dtype": "auto", "cache_implementation": "static"},
    }

    def run(name):
        d = TMP / f"gen-{name}"
        shutil.rmtree(d, ignore_errors=True)
        stats: dict = {}
        generate_responses(
            MODEL,
            prompts,
            max_new_tokens=24,
            batch_size=64,
            cache_dir=d,
            seed=0,
            stats=stats,
            progress=False,
            **variants[name],
        )
        run.tokens[name] = stats["new_tokens"]
        return stats["seconds"]

    run.tokens = {}
    times = interleave({n: (lambda n=n: run(n)) for n in variants}, max(2, args.repeats // 2), 1)
    return {
        "tokens_per_s": {n: run.tokens[n] / statistics.median(t) for n, t in times.items()},
        "times_s": times,
        "new_tokens": run.tokens,
        "speedup_fast_vs_base": ratio(times, "fast", "base"),
    }


# ---------------------------------------------------------------- matmul peak
def bench_peak() -> dict:
    import torch

    from cwpo.runtime import matmul_gflops

    threads = torch.get_num_threads()
    out = {}
    for t in (1, 2):
        torch.set_num_threads(t)
        for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            out[f"{name}_{t}t"] = max(matmul_gflops(dt, n, seconds=1.0) for n in (1024, 2048))
    torch.set_num_threads(threads)
    return {"gflops": out, "best_gflops": max(out.values()), "best": max(out, key=out.get)}


# ---------------------------------------------------------------- child processes
def child(args) -> None:
    """One DPO path alone (memory, allocator, threads, compile): steps and peak RSS as JSON."""
    import torch

    from cwpo.models.loading import load_tokenizer
    from cwpo.runtime import peak_rss_mb

    torch.set_num_threads(args.threads)
    shape = SHAPES[args.shape]
    tok = load_tokenizer(MODEL)
    rows = (short_rows if args.shape == "short" else hh_rows)(tok, shape["pairs"])
    trainer, batch = build_dpo(args.child, rows, shape, TMP / f"child-{os.getpid()}")
    if args.compile:
        trainer.model.get_base_model().model.compile()
    t0 = time.perf_counter()
    one_step(trainer, batch)
    warm = time.perf_counter() - t0
    times = [one_step(trainer, batch) for _ in range(args.child_steps)]
    real = int(batch["attention_mask"].sum())
    print(
        json.dumps(
            {
                "peak_rss_mb": peak_rss_mb(),
                "first_step_s": warm,
                "step_times_s": times,
                "tokens_per_s": real / statistics.median(times),
            }
        )
    )


def run_child(path, shape, *, threads=2, steps=2, env=None, compile=False, timeout=1800, wait=True):
    cmd = [
        sys.executable,
        __file__,
        "--child",
        path,
        "--shape",
        shape,
        "--threads",
        str(threads),
        "--child-steps",
        str(steps),
    ] + (["--compile"] if compile else [])
    # a child sees an allocator only when asked (this script may itself run under LD_PRELOAD, as
    # `make` runs cwpo): otherwise the allocator lever would compare tcmalloc with tcmalloc
    base_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**base_env, **(env or {})}
    )
    if not wait:
        return proc
    return finish_child(proc, timeout)


def finish_child(proc, timeout=1800):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"timed out after {timeout} s"}
    if proc.returncode != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"}
    return json.loads(out.strip().splitlines()[-1])


def allocator_lib() -> str | None:
    for cand in (
        os.environ.get("CWPO_ALLOCATOR", ""),
        str(HERE.parent / ".venv" / "lib" / "cwpo-alloc" / "libtcmalloc_minimal.so.4"),
        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
        "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
    ):
        if cand and Path(cand).exists():
            return cand
    return None


def bench_children(args) -> dict:
    th = args.threads
    out: dict = {"memory": {}}
    for shape, path in (
        ("short", "base"),
        ("short", "fast"),
        ("short", "trl_docs"),
        ("long", "base"),
        ("long", "fast"),
    ):
        r = run_child(path, shape, threads=th, steps=1)
        out["memory"][f"{shape}_{path}"] = r.get("peak_rss_mb", r)
        print(f"  memory {shape} {path}: {r}", flush=True)
    if not args.levers:
        return out
    lib = allocator_lib()
    eager = None
    if lib:
        eager = run_child("fast", "short", threads=th, steps=3)
        tc = run_child("fast", "short", threads=th, steps=3, env={"LD_PRELOAD": lib})
        out["allocator"] = {"lib": lib, "without": eager, "with": tc, "without_preload_cleared": True}
        if "tokens_per_s" in eager and "tokens_per_s" in tc:
            out["allocator"]["speedup"] = tc["tokens_per_s"] / eager["tokens_per_s"]
        print(f"  allocator: {out['allocator']}", flush=True)
    else:
        out["allocator"] = {"error": "no tcmalloc found (make setup installs it into .venv/lib/cwpo-alloc)"}
    # thread layout: one 2-thread process vs two 1-thread processes side by side (grids of runs)
    one = run_child("fast", "short", threads=2, steps=3)
    procs = [run_child("fast", "short", threads=1, steps=3, wait=False) for _ in range(2)]
    two = [finish_child(p) for p in procs]
    out["threads"] = {
        "one_proc_2_threads_tokens_per_s": one.get("tokens_per_s"),
        "two_procs_1_thread_total_tokens_per_s": sum(r.get("tokens_per_s", 0) for r in two),
        "one_proc_detail": one,
        "two_procs_detail": two,
    }
    print(f"  threads: {out['threads']}", flush=True)
    if not args.skip_compile:
        eager = eager or run_child("fast", "short", threads=th, steps=3)
        comp = run_child("fast", "short", threads=th, steps=3, compile=True, timeout=args.compile_timeout)
        out["compile"] = {"eager": eager, "compiled": comp}
        if "tokens_per_s" in comp and "tokens_per_s" in eager:
            out["compile"]["speedup"] = comp["tokens_per_s"] / eager["tokens_per_s"]
        print(f"  compile: {out['compile']}", flush=True)
    return out


def finish(res: dict, args, started: float, complete: bool) -> None:
    """Metrics and bars from the parts measured so far -> ``benchmarks/results/<out>.json``.

    Written after every part (``complete: false`` until the last), so a run cut short by the
    machine (time, memory) keeps what it measured.
    """
    from _common import write_result

    m: dict = {}
    best = res.get("peak", {}).get("best_gflops")
    for shape in ("short", "long"):
        d = res.get(f"dpo_{shape}")
        if not d:
            continue
        m[f"dpo_{shape}_tokens_per_s"] = d["tokens_per_s"]["fast"]
        m[f"dpo_{shape}_model_flops_per_s"] = d["model_flops_per_s"]["fast"]
        m[f"dpo_{shape}_speedup_vs_baseline"] = d["speedup_fast_vs_base"]
        m[f"dpo_{shape}_speedup_vs_trl"] = d["speedup_fast_vs_trl_docs"]
        if best:
            m[f"dpo_{shape}_peak_fraction"] = d["model_flops_per_s"]["fast"] / (best * 1e9)
            m[f"dpo_{shape}_peak_fraction_by_path"] = {
                k: v / (best * 1e9) for k, v in d["model_flops_per_s"].items()
            }
    if "dpo_levers" in res:
        m["dpo_short_lever_speedup"] = res["dpo_levers"]["lever_speedup"]
    if "dpo_short" in res:
        m["cw_step_time_ratio_vs_trl"] = res["dpo_short"]["cw_step_time_ratio_vs_trl"]
    if "sft" in res:
        m["sft_tokens_per_s"] = res["sft"]["tokens_per_s"]["fast"]
        m["sft_speedup_vs_baseline"] = res["sft"]["speedup_fast_vs_base"]
    if "annotator" in res:
        a = res["annotator"]
        m["annotator_train_pairs_per_s"] = a["train"]["pairs_per_s"]["fast"]
        m["annotator_train_speedup_vs_baseline"] = a["train"]["speedup_fast_vs_base"]
        m["annotator_train_speedup_defaults_vs_old_defaults"] = a["train"]["speedup_default_length_vs_base"]
        m["annotator_train_speedup_attn_dropout0_vs_baseline"] = a["train"].get(
            "speedup_attn_dropout0_vs_base"
        )
        m["annotation_pairs_per_s"] = a["annotate_pairs_per_s"]
    if "generation" in res:
        m["generation_tokens_per_s"] = res["generation"]["tokens_per_s"]["fast"]
        m["generation_speedup_vs_baseline"] = res["generation"]["speedup_fast_vs_base"]
    if "children" in res:
        m["peak_rss_mb"] = res["children"]["memory"]
    bars = {
        "dpo_short_speedup_vs_baseline": 3.0,
        "dpo_short_speedup_vs_trl": 2.5,
        "dpo_short_peak_fraction": 0.30,
        "dpo_long_speedup_vs_baseline": 2.0,
        "annotator_train_speedup_vs_baseline": 3.0,
        "generation_speedup_vs_baseline": 1.5,
    }
    m["bars"] = {
        k: {"target": v, "measured": m.get(k), "met": m.get(k) is not None and m[k] >= v}
        for k, v in bars.items()
    }
    if "cw_step_time_ratio_vs_trl" in m:
        m["bars"]["cw_step_time_ratio_vs_trl"] = {
            "target": "<= 1.03",
            "measured": m["cw_step_time_ratio_vs_trl"],
            "met": m["cw_step_time_ratio_vs_trl"] <= 1.03,
        }
    path = write_result(
        args.out,
        m,
        started,
        details=res,
        complete=complete,
        setup={
            "model": MODEL,
            "lora": "r=8, alpha=16, dropout=0.05 (disabled as in cwpo align), all linear layers",
            "shapes": SHAPES,
            "threads": args.threads,
            "allocator_preloaded": os.environ.get("LD_PRELOAD") or None,  # as `make` runs cwpo
            "repeats": args.repeats,
            "warmup": args.warmup,
            "flops": "3 x forward FLOPs of the real tokens (all linear layers + LM head + causal attention)",
        },
    )
    if complete:
        print(json.dumps(m, indent=1))
    print(f"wrote {path}", flush=True)


# ---------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parts", default="peak,dpo_short,dpo_levers,dpo_long,sft,annotator,generation,children")
    p.add_argument("--annotator-pairs", type=int, default=256)
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument(
        "--levers", type=int, default=1, help="1: also the allocator, thread-layout and compile children"
    )
    p.add_argument("--compile-timeout", type=int, default=300)
    p.add_argument("--out", default="speed")
    p.add_argument(
        "--child", choices=["base", "fast", "trl_docs", "cw_same", "trl_same"], help=argparse.SUPPRESS
    )
    p.add_argument("--shape", default="short", help=argparse.SUPPRESS)
    p.add_argument("--child-steps", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--from-partial",
        help="comma-separated partial-*.json of runs cut short: write the result from what they measured",
    )
    p.add_argument("--measured-command", help="with --from-partial: the command that measured them")
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.from_partial:
        res: dict = {}
        for f in args.from_partial.split(","):
            for k, v in json.loads(Path(f).read_text()).items():
                res.setdefault(k, v)
        res["assembled_from"] = {"partials": args.from_partial, "measured_command": args.measured_command}
        finish(res, args, time.time(), complete=False)
        return
    import torch

    from cwpo.io import write_json
    from cwpo.runtime import bf16_is_faster, probe_bf16

    torch.set_num_threads(args.threads)
    started = time.time()
    parts = args.parts.split(",")
    res: dict = {"probe": {"bf16_faster": bf16_is_faster(), "now": probe_bf16()}}
    print(f"probe: {res['probe']}", flush=True)
    if "peak" in parts:
        res["peak"] = bench_peak()
        print(f"peak: {res['peak']}", flush=True)
    steps = [(f"dpo_{sh}", lambda sh=sh: bench_dpo(sh, args)) for sh in ("short", "long")]
    steps += [("dpo_levers", lambda: bench_dpo("short", args, levers=True))]
    steps += [("sft", lambda: bench_sft(args)), ("annotator", lambda: bench_annotator(args))]
    steps += [("generation", lambda: bench_generation(args)), ("children", lambda: bench_children(args))]
    for name, fn in steps:
        if name not in parts:
            continue
        res.setdefault("load_average_before", {})[name] = list(os.getloadavg())
        try:
            res[name] = fn()
        except Exception as e:  # noqa: BLE001  (one failing part must not lose the others)
            import traceback

            traceback.print_exc()
            res[name + "_error"] = f"{type(e).__name__}: {e}"
        write_json(TMP / f"partial-{args.out}.json", res)
        finish(res, args, started, complete=False)
        __import__("gc").collect()

    finish(res, args, started, complete=True)


if __name__ == "__main__":
    main()
