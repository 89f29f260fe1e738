"""Weak-annotator benchmark on real HH-RLHF human labels, small size (the sizes are in the result).

Superseded for accuracy by the full-size track, ``hh_annotator.py`` (``results/annotator.json``);
kept for what only it measures: annotation speed against a naive loop and its share of the matmul
peak, PairRM and WS-DPO annotators. Writes ``results/annotator_small.json`` and ``.md``.

Quality: a seeded 30% / 70% split of each subset (split_pool, seed 0); the annotator trains on a
subsample of D_l and is scored on a subsample of the held-out 70% (human labels). Speed: BT vs
WS-DPO training time on the same backbone (SmolLM2-135M) and pairs, interleaved and repeated;
batched annotation vs a naive one-pair-at-a-time transformers loop, interleaved and repeated;
achieved FLOP/s over a measured torch.mm peak. Other engineers share this CPU: timings are noisy.

Usage: python -m benchmarks.annotator.annotator_small [--quick]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.result_files import SHARED_DATA, bench_parser, command_line, tidy_command
from cwpo.annotator import TrainAnnotatorConfig, annotate, load_annotator, train_annotator
from cwpo.atomic_files import read_json, write_json, write_text
from cwpo.data import load_pairs, split_pool, to_labeled, write_pairs
from cwpo.machine import machine_info, now_iso

HH = SHARED_DATA / "hh-rlhf"
OUT = Path(__file__).resolve().parent / "results" / "annotator_small.json"
PAPER = {"harmless_acc": 0.691, "helpful_acc": 0.642, "hh_acc": 0.638}  # Table 6, OPT-125M BT


def sizes(quick: bool) -> dict:
    if quick:
        return {
            "n_train": 32,
            "n_eval": 32,
            "epochs": 1,
            "max_length": 64,
            "dpo_train": 8,
            "dpo_eval": 8,
            "speed_pairs": 16,
            "repeats": 1,
            "train_repeats": 1,
        }
    return {
        "n_train": 160,
        "n_eval": 240,
        "epochs": 2,
        "max_length": 96,
        "dpo_train": 16,
        "dpo_eval": 48,
        "speed_pairs": 48,
        "repeats": 2,
        "train_repeats": 1,
    }


def split(subset: str, s: dict) -> tuple[list[dict], list[dict], dict]:
    res = load_pairs(HH, format="hh-rlhf", subset=subset)
    parts = split_pool(res.rows, labeled_frac=0.3, test_frac=0.0, seed=0)
    held_out = to_labeled(parts["unlabeled"])
    rng = random.Random(1)
    train = rng.sample(parts["labeled"], min(s["n_train"], len(parts["labeled"])))
    evals = rng.sample(held_out, min(s["n_eval"], len(held_out)))
    info = {
        "pool": len(res.rows),
        "labeled": len(parts["labeled"]),
        "held_out": len(held_out),
        "train_used": len(train),
        "eval_used": len(evals),
    }
    return train, evals, info


def train(work: Path, name: str, train_rows, eval_rows, **kw) -> tuple[dict, Path]:
    write_pairs(work / f"{name}-train.jsonl", train_rows)
    ev = None
    if eval_rows:
        write_pairs(work / f"{name}-eval.jsonl", eval_rows)
        ev = str(work / f"{name}-eval.jsonl")
    out = work / name
    cfg = TrainAnnotatorConfig(
        train=str(work / f"{name}-train.jsonl"), output=str(out), eval=ev, progress=False, **kw
    )
    t0 = time.perf_counter()
    m = train_annotator(cfg)
    print(
        f"[{name}] {time.perf_counter() - t0:.0f}s acc={m.get('eval_accuracy')} train={m['train_time_s']:.0f}s",
        flush=True,
    )
    return m, out


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0))
    return best


def naive_pairs_per_s(model, tok, rows, max_length) -> float:
    """One pair at a time, plain transformers forward of each side, no batching."""
    tok.truncation_side = "left"
    t0 = time.perf_counter()
    with torch.no_grad():
        for r in rows:
            for resp in (r["response_a"], r["response_b"]):
                enc = tok(r["prompt"] + resp, truncation=True, max_length=max_length, return_tensors="pt")
                model(**enc).logits[0, 0].item()
    return len(rows) / (time.perf_counter() - t0)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def write_markdown(result: dict, path: Path) -> None:
    """A plain-language note generated from the JSON (no number typed by hand)."""
    s, p = result["sizes"], result["paper_reference_opt125m_bt"]
    lines = [
        "# Weak annotator benchmark, small size",
        "",
        f"Made by `{tidy_command(result['command'])}` on {result['date']} ({result['machine'].get('cpu_model', '?')}, "
        f"{result['machine'].get('torch_threads')} torch threads). Numbers: `annotator_small.json`.",
        "",
        "## Quality on held-out human labels (HH-RLHF test files, seeded 30%/70% split)",
        "",
        f"Each annotator trained on {s['n_train']} pairs sampled from D_l (30%) for {s['epochs']} epochs at "
        f"max_length {s['max_length']} and was scored on {s['n_eval']} pairs sampled from the held-out 70%. "
        "The paper trains OPT-125M on all of D_l of the *train* splits for 5 epochs at 512 tokens.",
        "",
        "| subset | minilm-l6 BT (ours) | top-30% most confident | paper OPT-125M BT |",
        "| --- | --- | --- | --- |",
    ]
    for name, key in (("Harmless", "harmless_acc"), ("Helpful", "helpful_acc"), ("HH (both)", "hh_acc")):
        lines.append(
            f"| {name} | {_pct(result[key])} | {_pct(result.get(key + '_top30'))} | {_pct(p[key])} |"
        )
    lines += [
        "",
        f"HH, other objectives: PairRM (minilm-l6, same data) {_pct(result['hh_acc_pairrm'])} "
        f"(top-30% {_pct(result.get('hh_acc_pairrm_top30'))}); WS-DPO (SmolLM2-135M, SFT+DPO on only "
        f"{s['dpo_train']} pairs of D_l, 1 epoch each, scored on {s['dpo_eval']} held-out pairs) "
        f"{_pct(result['hh_acc_dpo'])}.",
        "",
    ]
    below = [k for k in ("harmless_acc", "helpful_acc", "hh_acc") if result[k] < p[k]]
    if below:
        lines.append(
            "**Below the paper** on " + ", ".join(below) + ": expected at this CPU size (a fraction of the "
            "training pairs, few epochs, short sequences, a 22M sentence encoder instead of OPT-125M). With "
            f"{s['n_eval']} evaluation pairs the standard error of an accuracy is about "
            f"{100 * (0.25 / s['n_eval']) ** 0.5:.1f} points."
        )
    else:
        lines.append("All three BT accuracies reach the paper's figures.")
    top, acc = result["hh_acc_top30"], result["hh_acc"]
    lines += [
        "",
        f"The paper's core observation (confident labels are more accurate) "
        f"{'holds' if top > acc else 'does not show'} here: top-30% {_pct(top)} vs all {_pct(acc)}.",
        "",
        "## Speed",
        "",
        f"- Training time BT / WS-DPO (SFT+DPO) on SmolLM2-135M, same {s['dpo_train']} pairs, 1 epoch each: "
        f"ratio {result['train_time_ratio_bt_over_dpo']:.2f} (paper: {result['paper_train_time_s']['ratio']:.2f}). "
        f"Runs: BT {result['train_time_s']['bt-smollm2']}, SFT+DPO {result['train_time_s']['dpo-smollm2 (sft+dpo)']} s "
        f"({s['train_repeats']} repeat: noisy).",
        f"- Annotation, minilm-l6 BT, {s['speed_pairs']} HH pairs, interleaved {s['repeats']}x: naive one-pair "
        f"loop {result['annotate_pairs_per_s_mean']['naive']:.1f} pairs/s, batched fp32 "
        f"{result['annotate_pairs_per_s_mean']['batched_fp32']:.1f}, batched bf16 "
        f"{result['annotate_pairs_per_s_mean']['batched_bf16']:.1f}: speed-up "
        f"{result['annotate_speedup_vs_naive']:.1f}x ({result['annotate_best_variant']}); bf16 labels agree "
        f"with fp32 on {_pct(result['bf16_label_agreement_with_fp32'])} of pairs.",
        f"- Achieved FLOP/s over measured torch.mm peak: {_pct(result['annotate_peak_fraction'])} "
        f"(fp32 path: {_pct(result['annotate_peak_fraction_fp32'])}); {result['flop_model']}.",
        "",
        result["timing_note"],
        "",
    ]
    write_text(path, "\n".join(lines))


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes to check the script end to end")
    ap.add_argument(
        "--markdown-only",
        action="store_true",
        help="only rewrite annotator_small.md from annotator_small.json",
    )
    args = ap.parse_args()
    if args.markdown_only:
        write_markdown(read_json(OUT), OUT.with_suffix(".md"))
        return 0
    torch.set_num_threads(2)
    s = sizes(args.quick)
    result: dict = {
        "command": command_line(),
        "sizes": s,
        "split_seed": 0,
        "labeled_frac": 0.3,
        "paper_reference_opt125m_bt": PAPER,
    }
    common = {"max_length": s["max_length"], "batch_size": 16, "eval_batch_size": 64, "seed": 0}
    with tempfile.TemporaryDirectory(prefix="cwpo-bench-annot-") as tmp:
        work = Path(tmp)
        # ---- quality: minilm-l6 BT on each subset, PairRM on HH ----
        data = {}
        for subset, key in (("harmless", "harmless_acc"), ("helpful", "helpful_acc"), ("hh", "hh_acc")):
            tr, ev, info = split(subset, s)
            data[subset] = (tr, ev)
            result.setdefault("data", {})[subset] = info
            m, out = train(
                work,
                f"bt-{subset}",
                tr,
                ev,
                backbone="minilm-l6",
                objective="bt",
                epochs=s["epochs"],
                lr=5e-5,
                **common,
            )
            result[key] = m["eval_accuracy"]
            result[f"{key}_ece"] = m["eval"]["ece"]
            result[f"{key}_top30"] = m["eval_accuracy_top30"]
            result.setdefault("train_time_s", {})[f"bt-minilm-{subset}"] = m["train_time_s"]
            if subset == "hh":
                result["hh_acc_top30"] = m["eval_accuracy_top30"]
                result["hh_bt_eval_report"] = m["eval"]
                bt_hh_dir = out
        tr, ev = data["hh"]
        m, _ = train(
            work,
            "pairrm-hh",
            tr,
            ev,
            backbone="minilm-l6",
            objective="pairrm",
            epochs=s["epochs"],
            lr=5e-5,
            **common,
        )
        result["hh_acc_pairrm"] = m["eval_accuracy"]
        result["hh_acc_pairrm_top30"] = m["eval_accuracy_top30"]
        result["train_time_s"]["pairrm-minilm-hh"] = m["train_time_s"]

        # ---- BT vs WS-DPO on SmolLM2-135M, same pairs, interleaved and repeated ----
        dtr, dev = tr[: s["dpo_train"]], ev[: s["dpo_eval"]]
        small = {**common, "batch_size": 8, "epochs": 1, "lr": 1e-5}
        bt_times, dpo_times = [], []
        for rep in range(s["train_repeats"]):
            last = rep == s["train_repeats"] - 1
            m, _ = train(
                work, f"bt-smollm-{rep}", dtr, None, backbone="smollm2-135m-instruct", objective="bt", **small
            )
            bt_times.append(m["train_time_s"])
            m, _ = train(
                work,
                f"dpo-smollm-{rep}",
                dtr,
                dev if last else None,
                backbone="smollm2-135m-instruct",
                objective="dpo",
                sft_epochs=1,
                **small,
            )
            dpo_times.append(m["train_time_s"])
            if last:
                result["hh_acc_dpo"] = m["eval_accuracy"]
                result["hh_acc_dpo_top30"] = m["eval_accuracy_top30"]
        result["train_time_s"]["bt-smollm2"] = bt_times
        result["train_time_s"]["dpo-smollm2 (sft+dpo)"] = dpo_times
        result["train_time_ratio_bt_over_dpo"] = sum(bt_times) / sum(dpo_times)
        result["paper_train_time_s"] = {"bt": 2450, "sft+dpo": 4978, "ratio": 2450 / 4978}

        # ---- annotation speed: batched (fp32, bf16) vs naive, interleaved and repeated ----
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        pool = split_pool(load_pairs(HH, format="hh-rlhf", subset="hh").rows, 0.3, test_frac=0.0, seed=0)
        speed_rows = random.Random(2).sample(pool["unlabeled"], s["speed_pairs"])
        write_pairs(work / "speed.jsonl", speed_rows)
        ann32 = load_annotator(bt_hh_dir, dtype="float32")
        ann16 = load_annotator(bt_hh_dir, dtype="bfloat16")
        naive_model = AutoModelForSequenceClassification.from_pretrained(str(bt_hh_dir)).eval()
        naive_tok = AutoTokenizer.from_pretrained(str(bt_hh_dir))
        enc = ann32.encode(
            [r["prompt"] for r in speed_rows],
            [r["response_a"] for r in speed_rows],
            [r["response_b"] for r in speed_rows],
        )
        tokens = sum(len(x) for x in enc.seq_a + enc.seq_b)
        params = sum(p.numel() for n, p in ann32.model.named_parameters() if "embeddings" not in n)
        speeds = {"naive": [], "batched_fp32": [], "batched_bf16": []}
        for rep in range(s["repeats"]):
            speeds["naive"].append(naive_pairs_per_s(naive_model, naive_tok, speed_rows, s["max_length"]))
            for name, ann in (("batched_fp32", ann32), ("batched_bf16", ann16)):
                st = annotate(
                    bt_hh_dir,
                    work / "speed.jsonl",
                    work / f"speed-{name}-{rep}.jsonl",
                    batch_size=32,
                    chunk_size=64,
                    progress=False,
                    annotator=ann,
                    dtype=name[-4:].replace("bf16", "bfloat16").replace("fp32", "float32"),
                )
                speeds[name].append(st["n_input"] / st["seconds_here"])
            print(
                f"[speed rep {rep}] " + ", ".join(f"{k}={v[-1]:.1f}" for k, v in speeds.items()), flush=True
            )
        mean = {k: sum(v) / len(v) for k, v in speeds.items()}
        best = max(("batched_fp32", "batched_bf16"), key=lambda k: mean[k])
        peaks = {"float32": matmul_peak(torch.float32), "bfloat16": matmul_peak(torch.bfloat16)}
        flops = {k: 2 * params * tokens * mean[k] / len(speed_rows) for k in mean}
        result["annotate_pairs_per_s"] = speeds
        result["annotate_pairs_per_s_mean"] = mean
        result["annotate_best_variant"] = best
        result["annotate_speedup_vs_naive"] = mean[best] / mean["naive"]
        result["annotate_speedup_vs_naive_fp32"] = mean["batched_fp32"] / mean["naive"]
        result["matmul_peak_flops"] = peaks
        result["annotate_flops"] = flops
        peak_for = "bfloat16" if best == "batched_bf16" else "float32"
        result["annotate_peak_fraction"] = flops[best] / peaks[peak_for]
        result["annotate_peak_fraction_fp32"] = flops["batched_fp32"] / peaks["float32"]
        result["flop_model"] = (
            f"2 x {params} non-embedding params x {tokens} real tokens per {len(speed_rows)} "
            "pairs (forward only, attention FLOPs ignored); peak = best of 5 torch.mm 2048^3"
        )
        a, b = (
            ann32.score_pairs(
                [r["prompt"] for r in speed_rows],
                [r["response_a"] for r in speed_rows],
                [r["response_b"] for r in speed_rows],
            ),
            ann16.score_pairs(
                [r["prompt"] for r in speed_rows],
                [r["response_a"] for r in speed_rows],
                [r["response_b"] for r in speed_rows],
            ),
        )
        result["bf16_label_agreement_with_fp32"] = float(((a >= 0) == (b >= 0)).float().mean())
    result["timing_note"] = (
        "2 CPU cores shared with other engineers' jobs: timings are noisy. Speed variants were "
        f"interleaved and repeated {s['repeats']}x in one run (means reported)."
    )
    result["date"] = now_iso()
    result["machine"] = machine_info()
    out = OUT if not args.quick else OUT.with_name("annotator_small.quick.json")
    write_json(out, result)
    write_markdown(result, out.with_suffix(".md"))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
