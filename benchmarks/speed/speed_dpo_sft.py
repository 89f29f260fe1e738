"""The speed bench (``speed.py``), part 1: the pairs, model FLOPs and the timed CW-DPO and SFT steps (cwpo's paths,
today's path and TRL's); shared settings of the speed bench. See speed.py for the whole method."""

from __future__ import annotations

import gzip
import json
import random
import statistics
from pathlib import Path

from benchmarks.result_files import SHARED_DATA as SHARED
from benchmarks.speed.train_step import timed_train_step

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

    from cwpo.align.trainable_model import lora_config, training_attention, training_precision
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
    times = interleave({p: (lambda p=p: timed_train_step(*built[p])) for p in paths}, repeats, args.warmup)
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

    from cwpo.align.trainable_model import lora_config, training_attention, training_precision
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
    times = interleave(
        {p: (lambda p=p: timed_train_step(*built[p])) for p in built}, args.repeats, args.warmup
    )
    return {
        "real_tokens": real,
        "tokens_per_s": {p: real / statistics.median(t) for p, t in times.items()},
        "step_times_s": times,
        "speedup_fast_vs_base": ratio(times, "fast", "base"),
    }
