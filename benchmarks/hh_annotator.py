"""The HH-RLHF annotator track at full size (issue 11 §3; paper Table 6 and Fig. 2).

All 8.5k shared HH-RLHF test pairs (no train split is reachable), a seeded 30/70 split
(``split_pool``, seed = run seed), the weak annotator trained on all of D_l with the library's
defaults and scored on the human labels of the whole held-out 70%. Parts (each resumable: a run
already in the results file is skipped; two processes may fill the file at once):

* ``minilm``: MiniLM-L6 BT on Harmless, Helpful and both, seeds 0-2: accuracy, accuracy of the
  30% most confident, accuracy by confidence quintile, ECE before and after temperature scaling
  (T fitted on the early-stopping slice of D_l), training time.
* ``share``: MiniLM-L6 BT on both subsets with 10/20/50% labelled (30% is the ``minilm`` part).
* ``smollm``: BT, DPO and SFT+DPO annotators on SmolLM2-135M (full fine-tuning, same pairs, same
  settings; the size that runs here is in the result), accuracy on the same held-out pairs and
  training time (paper Table 6: BT/SFT+DPO time 2450/4978 s = 0.49).

Writes ``benchmarks/results/annotator.json`` (every run, then the summary keys under ``metrics``,
the file issue 11 names) and ``annotator.md`` beside it, both from the runs alone. The small-size
bench of annotation speed is ``annotator_small.py``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hh_annotator.py --part minilm --seeds 0 1 2
    .venv/bin/python benchmarks/hh_annotator.py --summarize
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line  # noqa: E402

from cwpo.annotator import TrainAnnotatorConfig, load_annotator, train_annotator  # noqa: E402
from cwpo.annotator.calibration import agreement, calibration_report  # noqa: E402
from cwpo.data import load_pairs, split_pool, to_labeled, write_pairs  # noqa: E402
from cwpo.io import machine_info, now_iso  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HH = Path(os.environ.get("CWPO_SHARED_DATA", ROOT.parent / "shared" / "data")) / "hh-rlhf"
OUT = ROOT / "benchmarks" / "results" / "annotator.json"  # --output replaces it (smoke runs)
PAPER = {"harmless_acc": 0.691, "helpful_acc": 0.642, "hh_acc": 0.638}  # Table 6, OPT-125M BT
PAPER_TIME = {"bt": 2450, "sft+dpo": 4978}  # Table 6, seconds
SUBSETS = ("harmless", "helpful", "hh")
SHARES = (0.1, 0.2, 0.5)
# SmolLM2 annotators: one setting for all three objectives (full fine-tuning of the 135M model)
SMOLLM = {"epochs": 1, "batch_size": 8, "lr": 1e-5, "max_length": 256, "early_stopping": False}
SMOLLM_VARIANTS = {"bt": {"objective": "bt"}, "dpo": {"objective": "dpo", "sft_epochs": 0},
                   "sft+dpo": {"objective": "dpo", "sft_epochs": 1}}  # fmt: skip


def split(subset: str, share: float, seed: int) -> tuple[list[dict], list[dict], dict]:
    rows = load_pairs(HH, format="hh-rlhf", subset=subset).rows
    parts = split_pool(rows, labeled_frac=share, test_frac=0.0, seed=seed)
    held_out = to_labeled(parts["unlabeled"])
    return parts["labeled"], held_out, {"pool": len(rows), "labeled": len(parts["labeled"]),
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


def train_and_score(train_rows, eval_rows, seed: int, overrides: dict, eval_limit: int | None = None):
    """Train with the library defaults (+ overrides), score the held-out pairs; raw margins, metrics."""
    eval_rows = eval_rows[:eval_limit] if eval_limit else eval_rows
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
        write_doc({k: runs[k] for k in sorted(runs)})


def mean_std(vals: list[float]) -> tuple[float | None, float | None]:
    if not vals:
        return None, None
    m = sum(vals) / len(vals)
    s = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else None
    return m, s


def summarize(runs: dict) -> dict:
    """Every headline key from the runs (means over seeds, std over seeds, verdicts against the bars)."""
    s: dict = {"paper_reference_opt125m_bt": PAPER}
    for subset in SUBSETS:
        members = [r for k, r in runs.items() if k.startswith(f"minilm/{subset}/share0.3/")]
        name = f"{subset}_acc"
        for field_, suffix in (("accuracy", ""), ("accuracy_top30", "_top30")):
            m, sd = mean_std([r[field_] for r in members])
            s[name + suffix], s[f"{name}{suffix}_std"] = m, sd
        for when in ("before", "after"):
            s[f"{name}_ece_{when}_calibration"] = mean_std(
                [r[f"{when}_calibration"]["ece"] for r in members]
            )[0]
        s[f"{name}_n_seeds"] = len(members)
        s[f"{name}_n_eval"] = members[0]["n_eval"] if members else None
        s[f"{name}_train_time_s"] = mean_std([r["train_time_s"] for r in members])[0]
        if members:
            s[f"{name}_by_confidence_quintile"] = [
                mean_std([r["accuracy_by_confidence_quintile"][q]["accuracy"] for r in members])[0]
                for q in range(5)
            ]
    curve = {}
    for share in (*SHARES[:2], 0.3, *SHARES[2:]):
        members = [r for k, r in runs.items() if k.startswith(f"minilm/hh/share{share}/")]
        if members:
            m, sd = mean_std([r["accuracy"] for r in members])
            curve[str(share)] = {"accuracy": m, "std": sd, "n_seeds": len(members),
                                 "n_train": members[0]["n_train"]}  # fmt: skip
    s["hh_acc_by_labeled_share"] = curve
    smol = {v: runs.get(f"smollm/{v}/seed0") for v in SMOLLM_VARIANTS}
    for v, r in smol.items():
        tag = v.replace("+", "")
        s[f"smollm_{tag}_acc"] = r["accuracy"] if r else None
        s[f"smollm_{tag}_acc_top30"] = r["accuracy_top30"] if r else None
        s[f"smollm_{tag}_train_time_s"] = r["train_time_s"] if r else None
    if smol["bt"] and smol["sft+dpo"]:
        s["train_time_ratio_bt_over_dpo"] = smol["bt"]["train_time_s"] / smol["sft+dpo"]["train_time_s"]
        s["paper_train_time_ratio"] = PAPER_TIME["bt"] / PAPER_TIME["sft+dpo"]
        a = torch.tensor(smol["bt"]["agree"], dtype=torch.float64)
        b = torch.tensor(smol["sft+dpo"]["agree"], dtype=torch.float64)
        d = a - b
        se = float(d.std() / math.sqrt(len(d)))
        diff = float(d.mean())
        s["smollm_bt_minus_sftdpo_acc"] = diff
        s["smollm_bt_minus_sftdpo_ci95"] = [diff - 1.96 * se, diff + 1.96 * se]
        s["smollm_bt_minus_sftdpo_mde"] = 1.96 * se
        s["smollm_n_train"], s["smollm_n_eval"] = smol["bt"]["n_train"], smol["bt"]["n_eval"]
        s["verdict_table6_bt_beats_sftdpo"] = (
            "holds" if diff - 1.96 * se > 0 else "fails" if diff + 1.96 * se < 0 else "unresolved"
        )
    if s.get("hh_acc") is not None:
        s["bar_hh_acc_0.638"] = "met" if s["hh_acc"] >= 0.638 else "not met"
        s["bar_hh_acc_top30_plus_0.05"] = "met" if s["hh_acc_top30"] >= s["hh_acc"] + 0.05 else "not met"
    if s.get("train_time_ratio_bt_over_dpo") is not None:
        s["bar_train_time_ratio_0.49"] = "met" if s["train_time_ratio_bt_over_dpo"] <= 0.49 else "not met"
    return s


def write_doc(runs: dict) -> None:
    doc = {
        "metrics": summarize(runs),
        "runs": runs,
        "data": "all 8.5k shared HH-RLHF test pairs (../shared/data/hh-rlhf), split_pool(labeled_frac, "
        "test_frac=0, seed=run seed): D_l trains, the human labels of D_u evaluate",
        "date": now_iso(),
        "machine": {k: v for k, v in machine_info().items() if k != "hostname"},
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    write_markdown(doc, OUT.with_suffix(".md"))


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def write_markdown(doc: dict, path: Path) -> None:
    m = doc["metrics"]
    lines = [
        "# HH-RLHF annotator track (issue 11 §3)",
        "",
        "Generated by `benchmarks/hh_annotator.py` from `annotator.json` (every run's command, date and "
        "threads are in its entry). " + doc["data"] + ".",
        "",
        "| subset | MiniLM-L6 BT (mean ± std over seeds) | top-30% most confident | ECE before → after T | "
        "held-out pairs | paper OPT-125M BT |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for subset in SUBSETS:
        k = f"{subset}_acc"
        if m.get(k) is None:
            lines.append(f"| {subset} | not run | | | | {_pct(PAPER[k])} |")
            continue
        sd = m.get(f"{k}_std")
        lines.append(
            f"| {subset} | {_pct(m[k])} ± {100 * (sd or 0):.1f} (seeds: {m[f'{k}_n_seeds']}) | "
            f"{_pct(m[f'{k}_top30'])} | {m[f'{k}_ece_before_calibration']:.3f} → "
            f"{m[f'{k}_ece_after_calibration']:.3f} | {m[f'{k}_n_eval']} | {_pct(PAPER[k])} |"
        )
    if m.get("hh_acc_by_confidence_quintile"):
        q = " / ".join(_pct(x) for x in m["hh_acc_by_confidence_quintile"])
        lines += ["", f"Accuracy by confidence quintile (HH, lowest to highest, mean over seeds): {q}."]
    if m.get("hh_acc_by_labeled_share"):
        pts = ", ".join(
            f"{float(k):.0%} ({v['n_train']} pairs): {_pct(v['accuracy'])}"
            for k, v in m["hh_acc_by_labeled_share"].items()
        )
        lines += ["", f"Accuracy against labelled share (HH): {pts}."]
    if m.get("train_time_ratio_bt_over_dpo") is not None:
        lo, hi = m["smollm_bt_minus_sftdpo_ci95"]
        lines += [
            "",
            f"SmolLM2-135M annotators on the same {m['smollm_n_train']} pairs of D_l, scored on "
            f"{m['smollm_n_eval']} held-out pairs: BT {_pct(m['smollm_bt_acc'])}, DPO "
            f"{_pct(m['smollm_dpo_acc'])}, SFT+DPO {_pct(m['smollm_sftdpo_acc'])}; BT − SFT+DPO "
            f"{100 * m['smollm_bt_minus_sftdpo_acc']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] "
            f"(paper Table 6: BT > SFT+DPO; here {m['verdict_table6_bt_beats_sftdpo']}). Training time "
            f"BT / SFT+DPO {m['train_time_ratio_bt_over_dpo']:.2f} (paper {m['paper_train_time_ratio']:.2f}).",
        ]
    bars = [f"{k[4:]}: {v}" for k, v in m.items() if k.startswith("bar_")]
    if bars:
        lines += ["", "Bars of issue 11: " + "; ".join(bars) + "."]
    path.write_text("\n".join(lines) + "\n")


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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["minilm", "share", "smollm"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--subsets", nargs="+", default=list(SUBSETS), choices=SUBSETS)
    ap.add_argument("--smollm-train", type=int, default=1000, help="smollm part: pairs of D_l used")
    ap.add_argument("--smollm-eval", type=int, default=1000, help="smollm part: held-out pairs scored")
    ap.add_argument(
        "--smollm-variants", nargs="+", default=list(SMOLLM_VARIANTS), choices=list(SMOLLM_VARIANTS)
    )
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
        jobs = [
            (f"minilm/{sub}/share0.3/seed{s}", sub, 0.3, s, {}) for s in args.seeds for sub in args.subsets
        ]
    elif args.part == "share":
        jobs = [(f"minilm/hh/share{sh}/seed{s}", "hh", sh, s, {}) for s in args.seeds for sh in SHARES]
    else:
        jobs = [(f"smollm/{v}/seed0", "hh", 0.3, 0, {"backbone": "smollm2-135m-instruct", **SMOLLM, **o})
                for v, o in SMOLLM_VARIANTS.items() if v in args.smollm_variants]  # fmt: skip
    for key, subset, share, seed, overrides in jobs:
        if key in done:
            print(f"{key}: already in {OUT.name}, skipped", flush=True)
            continue
        started = time.time()
        train_rows, held_out, info = split(subset, share, seed)
        limit = args.max_eval
        if args.part == "smollm":
            train_rows, limit = train_rows[: args.smollm_train], args.smollm_eval
        if args.max_train:
            train_rows = train_rows[: args.max_train]
        margins, res = train_and_score(train_rows, held_out, seed, overrides, limit)
        entry = run_entry({"subset": subset, "labeled_share": share, "seed": seed, "split": info, **res,
                           "wall_time_s": round(time.time() - started, 1)})  # fmt: skip
        if args.part == "smollm":
            entry["agree"] = [float(x) for x in agreement(margins)]
        record(key, entry)
        print(f"{key}: acc {res['accuracy']:.3f} top30 {res['accuracy_top30']:.3f} "
              f"train {res['train_time_s']:.0f}s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
