"""The speed bench (``speed.py``), part 2: BT annotator training and scoring, and generation (sampling) speed.
See speed.py for the whole method."""

from __future__ import annotations

import gzip
import json
import random
import statistics
import time

from benchmarks.speed.speed_dpo_sft import MODEL, SHARED, TMP, interleave, ratio


# ---------------------------------------------------------------- annotator
def bench_annotator(args) -> dict:
    """BT training pairs/s (MiniLM-L6, HH lengths, max_length 256, batch 32) and scoring pairs/s."""
    import copy

    import torch
    from transformers import AutoModelForSequenceClassification

    from cwpo.annotator import train as T
    from cwpo.annotator.backbone import _attention_dropout_override
    from cwpo.annotator.encoding import encode_pairs
    from cwpo.annotator.model import Annotator, scalar_scores
    from cwpo.annotator.reward_model_losses import bt_loss
    from cwpo.models.loading import load_tokenizer
    from cwpo.models.logprobs import collate
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
    path = resolve_model("minilm-l6")
    base_model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    base_model.config.pad_token_id = tok.pad_token_id
    fast_bf16 = resolve_bf16("auto")
    fast_dtype = torch.bfloat16 if fast_bf16 else torch.float32
    default_len = T.TrainAnnotatorConfig.max_length
    # the library's default attention dropout, as cwpo.annotator.backbone applies it ({} when None)
    dropout = _attention_dropout_override(path, T.TrainAnnotatorConfig.attention_dropout)
    variants = {  # name: (length buckets, autocast dtype, max_length, backbone config overrides)
        "base": (False, torch.bfloat16, 256, {}),  # the old path: random batches, bf16 autocast, 256 tokens
        "fast": (True, fast_dtype, 256, {}),  # the same computation as base, faster
        "buckets_other_precision": (True, torch.float32 if fast_bf16 else torch.bfloat16, 256, {}),
        # what `cwpo train-annotator` runs by default: the fast path with the default max_length and
        # attention dropout (0 since the HH runs: the CPU's fused attention kernel; not the same
        # computation as base, chosen on accuracy in annotator.json, variants_vs_defaults)
        "default": (True, fast_dtype, default_len, dropout),
    }
    state = {}
    for name, (buckets, dtype, max_len, overrides) in variants.items():
        if overrides:
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **overrides)
            model.load_state_dict(base_model.state_dict())  # the same new head as the other variants
            model.config.pad_token_id = tok.pad_token_id
        else:
            model = copy.deepcopy(base_model)
        model.train()
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
        "speedup_default_vs_base": totals["base"] / totals["default"],
        "default_settings": {
            "max_length": default_len,
            "backbone_overrides": dropout,
            "length_buckets": True,
            "autocast": str(fast_dtype),
        },  # fmt: skip
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
    """Sampling tokens/s, batch 64 (and the batch-size lever), 24 new tokens, through cwpo.evaluate.generation (cache off).

    Each timed run loads the model and samples ``--generation-prompts`` prompts (default 256: four
    batches), as an evaluation does (1,000 prompts, 16 batches, one load): a single batch from a
    cold model would time the first call's kernel set-up more than decoding.
    """
    import shutil

    from cwpo.data.imdb import imdb_prompts
    from cwpo.evaluate.generation import generate_responses

    prompts = [r["prompt"] for r in imdb_prompts(SHARED / "imdb", n=args.generation_prompts, seed=0)]
    variants = {
        # the default before these fast paths: bf16 weights, dynamic KV cache, SDPA attention
        "base": {"dtype": "bfloat16", "attn_implementation": "sdpa"},
        "fp32": {"dtype": "float32", "attn_implementation": "sdpa"},
        # the default now: dtype by the bf16 probe, attention "auto" (SDPA unless $CWPO_ATTN)
        "fast": {"dtype": "auto"},
        # matmul attention: faster on unpadded equal-length batches, not on these padded ones
        "eager": {"dtype": "auto", "attn_implementation": "eager"},
        "static_cache": {"dtype": "auto", "cache_implementation": "static"},
        # larger batches: bigger matmuls per decoding step (more padding, more KV cache)
        "batch128": {"dtype": "auto", "batch_size": 128},
        "batch256": {"dtype": "auto", "batch_size": 256},
    }

    def run(name):
        d = TMP / f"gen-{name}"
        shutil.rmtree(d, ignore_errors=True)
        stats: dict = {}
        settings = {"batch_size": 64, **variants[name]}
        generate_responses(
            MODEL, prompts, max_new_tokens=24, cache_dir=d, seed=0, stats=stats, progress=False, **settings
        )
        run.tokens[name] = stats["new_tokens"]
        return stats["seconds"]

    run.tokens = {}
    times = interleave({n: (lambda n=n: run(n)) for n in variants}, max(2, args.repeats // 2), 1)
    return {
        "prompts": len(prompts),
        "variants": variants,
        "tokens_per_s": {n: run.tokens[n] / statistics.median(t) for n, t in times.items()},
        "times_s": times,
        "new_tokens": run.tokens,
        "speedup_fast_vs_base": ratio(times, "fast", "base"),
        "speedup_eager_vs_base": ratio(times, "eager", "base"),
        **{f"speedup_{b}_vs_base": ratio(times, b, "base") for b in ("batch128", "batch256")},
    }
