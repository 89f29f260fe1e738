"""The HH-RLHF annotator track at full size (paper Table 6 and Fig. 2).

The paper's HH-RLHF subsets (App. E): Harmless = harmless-base, Helpful = helpful-base, HH = both,
pairs over 512 tokens dropped (SmolLM2 tokenizer: prompt + longer response), from the shared test
files (no train split is reachable); ``hh-all`` adds helpful-online and helpful-rejection-sampled
(not in the paper). A seeded 30/70 split (``split_pool``, seed = run seed), the weak annotator
trained on all of D_l with the library's defaults and scored on the human labels of the whole
held-out 70%. Parts (each resumable: a run
already in the results file is skipped; two processes may fill the file at once):

* ``minilm``: MiniLM-L6 BT on Harmless, Helpful and both, seeds 0-2: accuracy, accuracy of the
  30% most confident, accuracy by confidence quintile, ECE before and after temperature scaling
  (T fitted on the early-stopping slice of D_l), training time.
* ``share``: MiniLM-L6 BT on both subsets with 10/20/50% labelled (30% is the ``minilm`` part).
* ``smollm``: BT, DPO and SFT+DPO annotators on SmolLM2-135M (full fine-tuning, same pairs, same
  settings; the size that runs here is in the result), accuracy on the same held-out pairs and
  training time (paper Table 6: BT/SFT+DPO time 2450/4978 s = 0.49).
* ``cross``: MiniLM-L6 BT trained on D_l of one subset, scored on the held-out pairs of the other
  (harmless -> helpful and helpful -> harmless): why one annotator on both subsets does worse than
  on either alone. Below 50% means the two subsets' human preferences point opposite ways.

Writes ``benchmarks/annotator/results/annotator.json`` (every run, then the summary keys under
``metrics``) and ``annotator.md`` beside it, both from the runs alone. The small-size
bench of annotation speed is ``annotator_small.py``.

    OMP_NUM_THREADS=1 python -m benchmarks.annotator.hh_annotator --part minilm --seeds 0 1 2
    python -m benchmarks.annotator.hh_annotator --summarize
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.annotator.hh_annotator_report import (
    SHARES,
    SMOLLM_VARIANTS,
    SUBSETS,
    summarize,
    write_markdown,
    write_plots,
)
from benchmarks.result_files import SHARED_DATA, bench_parser, command_line
from cwpo.annotator import TrainAnnotatorConfig, load_annotator, train_annotator
from cwpo.annotator.calibration import agreement, calibration_report
from cwpo.atomic_files import write_text
from cwpo.data import load_pairs, split_pool, to_labeled, write_pairs
from cwpo.machine import machine_info, now_iso

HH = SHARED_DATA / "hh-rlhf"
OUT = Path(__file__).resolve().parent / "results" / "annotator.json"  # --output replaces it (smoke runs)
# variants, compared with the defaults on the same splits (never in the headline keys)
# One change from the defaults, run on the same splits and seeds (keys minilm+NAME/...).
# attn_dropout_backbone: MiniLM-L6's own 0.1 attention dropout, the default until the runs of the
# two showed no loss of accuracy at 0 (which trains 1.25x faster).
VARIANTS = {"attn_dropout_backbone": {"attention_dropout": None}, "response_pooling": {"pooling": "response"}}
# SmolLM2 annotators: one setting for all three objectives (full fine-tuning of the 135M model)
SMOLLM = {"epochs": 1, "batch_size": 8, "lr": 1e-5, "max_length": 256, "early_stopping": False}


MAX_TOKENS = 512  # the paper's length filter


def split(subset: str, share: float, seed: int) -> tuple[list[dict], list[dict], dict]:
    from cwpo.data.split import filter_by_length
    from cwpo.models.loading import load_tokenizer

    loaded = load_pairs(HH, format="hh-rlhf", subset=subset).rows
    rows, dropped = filter_by_length(loaded, load_tokenizer("smollm2-135m-instruct"), MAX_TOKENS)
    parts = split_pool(rows, labeled_frac=share, test_frac=0.0, seed=seed)
    held_out = to_labeled(parts["unlabeled"])
    return parts["labeled"], held_out, {"loaded": len(loaded), f"over_{MAX_TOKENS}_tokens": dropped,
                                        "pool": len(rows), "labeled": len(parts["labeled"]),
                                        "held_out": len(held_out)}  # fmt: skip


def quintiles(margins: torch.Tensor) -> list[dict]:
    conf = margins.abs()
    agree = agreement(margins)
    order = torch.argsort(conf, stable=True)
    n = len(order)
    return [
        {
            "quintile": q + 1,
            "accuracy": float(agree[order[q * n // 5 : (q + 1) * n // 5]].mean()),
            "n": (q + 1) * n // 5 - q * n // 5,
        }  # fmt: skip
        for q in range(5)
    ]


def train_and_score(train_rows, eval_rows, seed: int, overrides: dict):
    """Train with the library defaults (+ overrides), score the held-out pairs; raw margins, metrics."""
    with tempfile.TemporaryDirectory(prefix="cwpo-annot-track-") as tmp:
        write_pairs(Path(tmp) / "train.jsonl", train_rows)
        cfg = TrainAnnotatorConfig(
            train=str(Path(tmp) / "train.jsonl"), output=str(Path(tmp) / "ann"), progress=False,
            seed=seed, calibrate=True, **overrides,
        )  # fmt: skip
        metrics = train_annotator(cfg)
        ann = load_annotator(cfg.output, dtype="auto")
        t0 = time.perf_counter()
        scaled = ann.score_pairs(
            [r["prompt"] for r in eval_rows], [r["chosen"] for r in eval_rows],
            [r["rejected"] for r in eval_rows], 64,
        )  # fmt: skip
        score_time = time.perf_counter() - t0
    import dataclasses

    temperature = metrics["temperature"]
    margins = scaled * temperature
    before, after = calibration_report(margins), calibration_report(margins, temperature)
    keep = ("accuracy", "ece", "nll", "mean_confidence", "accuracy_top30")
    return margins, {
        "accuracy": before["accuracy"],
        "accuracy_top30": before["accuracy_top30"],
        "accuracy_by_confidence_quintile": quintiles(margins),
        "before_calibration": {k: before[k] for k in keep},
        "after_calibration": {k: after[k] for k in keep},
        "temperature": temperature,
        "n_train": metrics["n_train"],
        "n_eval": len(eval_rows),
        "train_time_s": metrics["train_time_s"],
        "score_time_s": score_time,
        "epochs_run": metrics["epochs_run"],
        "best_epoch": metrics.get("best_epoch"),
        "val_curve": metrics.get("val_curve"),
        "config": {
            k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("train", "output", "progress")
        },
    }


def load_doc() -> dict:
    return json.loads(OUT.read_text()) if OUT.exists() else {}


def record(key: str, entry: dict) -> None:
    """Add one run to the results file under a lock (two processes can fill it), then re-summarize."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(str(OUT) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = load_doc()
        runs = doc.get("runs", {})
        runs[key] = entry
        runs = {k: runs[k] for k in sorted(runs)}
        write_json(OUT, {**doc, "runs": runs})  # the run is kept even if summarizing it fails
        write_doc(runs)


def write_doc(runs: dict) -> None:
    doc = {
        "metrics": summarize(runs),
        "runs": runs,
        "data": "the shared HH-RLHF test files (../shared/data/hh-rlhf), the paper's subsets (harmless-base, "
        f"helpful-base, both; hh-all: the four folders), pairs over {MAX_TOKENS} tokens dropped, "
        "split_pool(labeled_frac, test_frac=0, seed=run seed): D_l trains, the human labels of D_u evaluate",
        "date": now_iso(),
        "machine": {k: v for k, v in machine_info().items() if k != "hostname"},
    }
    write_json(OUT, doc)
    plots = write_plots(doc["metrics"], runs, OUT.parent.parent / "report" / "hh-annotator")
    write_markdown(doc, OUT.with_suffix(".md"), plots)


def write_json(path: Path, doc: dict) -> None:
    """Replace ``path`` atomically (cwpo.atomic_files: a killed process leaves the old file or the new one)."""
    write_text(path, json.dumps(doc, indent=1) + "\n")


def run_entry(extra: dict) -> dict:
    return {
        **extra,
        "command": command_line(),
        "date": now_iso(),
        "cpu_model": machine_info().get("cpu_model"),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_end": list(os.getloadavg()),
    }


def main() -> None:
    global OUT
    ap = bench_parser(__doc__)
    ap.add_argument("--part", choices=["minilm", "share", "smollm", "cross"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--subsets", nargs="+", default=list(SUBSETS), choices=SUBSETS)
    ap.add_argument("--smollm-train", type=int, default=1000, help="smollm part: pairs of D_l used")
    ap.add_argument("--smollm-eval", type=int, default=1000, help="smollm part: held-out pairs scored")
    ap.add_argument(
        "--smollm-variants", nargs="+", default=list(SMOLLM_VARIANTS), choices=list(SMOLLM_VARIANTS)
    )
    ap.add_argument(
        "--variant", choices=list(VARIANTS),
        help="minilm part: one change from the defaults, run beside them (keys minilm+NAME/...)",
    )  # fmt: skip
    ap.add_argument("--summarize", action="store_true", help="only rewrite the summary and annotator.md")
    ap.add_argument("--max-train", type=int, help="smoke runs: at most N pairs of D_l")
    ap.add_argument("--max-eval", type=int, help="smoke runs: at most N held-out pairs")
    ap.add_argument("--output", type=Path, default=OUT, help="results file (default: %(default)s)")
    args = ap.parse_args()
    OUT = args.output
    if args.summarize or not args.part:
        with open(str(OUT) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            write_doc(load_doc().get("runs", {}))
        print(f"wrote {OUT} and {OUT.with_suffix('.md')}")
        return
    done = load_doc().get("runs", {})
    jobs = []
    if args.part == "minilm":
        tag, extra = (
            ("minilm", {}) if not args.variant else (f"minilm+{args.variant}", VARIANTS[args.variant])
        )
        jobs = [
            (f"{tag}/{sub}/share0.3/seed{s}", sub, 0.3, s, extra, None)
            for s in args.seeds
            for sub in args.subsets
        ]
    elif args.part == "share":
        jobs = [(f"minilm/hh/share{sh}/seed{s}", "hh", sh, s, {}, None) for s in args.seeds for sh in SHARES]
    elif args.part == "cross":
        jobs = [(f"cross/{a}-to-{b}/share0.3/seed{s}", a, 0.3, s, {}, b) for s in args.seeds
                for a, b in (("harmless", "helpful"), ("helpful", "harmless"))]  # fmt: skip
    else:
        jobs = [(f"smollm/{v}/seed0", "hh", 0.3, 0, {"backbone": "smollm2-135m-instruct", **SMOLLM, **o}, None)
                for v, o in SMOLLM_VARIANTS.items() if v in args.smollm_variants]  # fmt: skip
    for key, subset, share, seed, overrides, scored_on in jobs:  # scored_on: cross part
        # a smollm run scored before the held-out sample was drawn at random (it took the first
        # pairs of D_u, which is in pool order: Harmless only) is run again
        if key in done and not (args.part == "smollm" and "eval_sample" not in done[key]):
            print(f"{key}: already in {OUT.name}, skipped", flush=True)
            continue
        started = time.time()
        train_rows, held_out, info = split(subset, share, seed)
        if scored_on:  # cross: the held-out pairs of the other subset (same seed, same 30/70 split)
            held_out = split(scored_on, share, seed)[1]
            info["scored_on"] = scored_on
        limit = args.max_eval
        if args.part == "smollm":
            train_rows, limit = train_rows[: args.smollm_train], args.smollm_eval
        if args.max_train:
            train_rows = train_rows[: args.max_train]
        sample = "all"
        if limit and limit < len(held_out):
            # D_u is in pool order (harmless-base before helpful-base): a seeded random sample of it
            held_out, sample = random.Random(seed).sample(held_out, limit), f"seeded random {limit}"
        margins, res = train_and_score(train_rows, held_out, seed, overrides)
        entry = run_entry({"subset": subset, "labeled_share": share, "seed": seed, "split": info, **res,
                           "eval_sample": sample, "wall_time_s": round(time.time() - started, 1)})  # fmt: skip
        entry["agree"] = [float(x) for x in agreement(margins)]  # per held-out pair: paired comparisons
        by_source: dict = {}
        for row, a in zip(held_out, entry["agree"], strict=True):
            by_source.setdefault(row["source"].split("/")[0], []).append(a)
        entry["accuracy_by_source"] = {k: sum(v) / len(v) for k, v in sorted(by_source.items())}
        record(key, entry)
        print(f"{key}: acc {res['accuracy']:.3f} top30 {res['accuracy_top30']:.3f} "
              f"train {res['train_time_s']:.0f}s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
