"""Which defaults for the BT annotator: pooling, head vs body learning rate, epochs with early
stopping, max_length, measured against a plain 40-line Bradley-Terry loop (issue 11, section 3).

Data (chosen once, before any result was seen; nothing here is the bench's test data):

* ``sentiment``: the v2 pilot pairs (IMDb prefixes, SmolLM2 responses, VADER gold; ``--sentiment``),
  gold ties dropped, seeded shuffle, the first 600 pairs train, the rest test (chosen = higher gold).
* ``hh``: HH-RLHF Harmless (``--hh``), seeded shuffle of the pool, 1,500 pairs train, the rest test.
* ``hh_mixed``: the paper's HH-RLHF pairs (harmless-base + helpful-base, as the HH track and the
  robustness study use them), seeded shuffle, 1,500 pairs train, the next 2,000 test.

Each (data, variant) is one run appended to ``benchmarks/results/annotator_defaults.json`` (under a
file lock, so two processes can fill it): accuracy on the test pairs, on the 30% most confident,
by confidence quintile, training time (model loading and test scoring excluded), the exact
command, date, CPU model and thread count. Variants run through ``cwpo.annotator.train_annotator``
(the library path); ``plain`` is the loop in :func:`plain_loop`.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/annotator_defaults.py --data sentiment \
        --variants plain old_recipe new_default
    .venv/bin/python benchmarks/annotator_defaults.py --list
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line  # noqa: E402

from cwpo.io import machine_info, now_iso  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "annotator_defaults.json"
SHARED = Path(os.environ.get("CWPO_SHARED_DATA", ROOT.parent / "shared" / "data"))

# TrainAnnotatorConfig overrides per variant. "old_recipe" is what the recipes used before this
# change (every parameter at 5e-5, CLS/pooler head, 5 epochs, no early stopping, max_length 64).
OLD = {"pooling": "cls", "lr": 5e-5, "head_lr": None, "epochs": 5, "early_stopping": False, "batch_size": 32}
# The variants below were run against the defaults of their day (each run's full config is in the
# results): early stopping, max_length 128, the backbone's attention dropout. ERA pins those, so a
# later change of a library default does not change what a variant name means; "defaults" is today's.
ERA = {"early_stopping": True, "max_length": 128, "epochs": 3, "separator": False, "attention_dropout": None}
VARIANTS: dict[str, dict] = {
    "old_recipe": {**OLD, "max_length": 64},
    "old_recipe_len128": {**OLD, "max_length": 128},
    # one change at a time from the new default (mean pooling, body 3e-5, head 1e-3, early stopping)
    "new_default": {},
    "cls_pooling": {"pooling": "cls"},
    "same_lr_3e-5": {"head_lr": None},
    "same_lr_5e-5": {"head_lr": None, "lr": 5e-5},
    "head_lr_3e-4": {"head_lr": 3e-4},
    "body_lr_5e-5": {"lr": 5e-5},
    "no_early_stopping_3ep": {"early_stopping": False, "epochs": 3},
    "no_early_stopping_5ep": {"early_stopping": False, "epochs": 5},
    "len64": {"max_length": 64},
    "len256": {"max_length": 256},
    # HH diagnosis (early stopping kept epoch 1 in 18/20 HH trainings; benchmarks/results/robustness.json)
    "plain_like": {
        "pooling": "cls",
        "lr": 2e-5,
        "head_lr": None,
        "epochs": 2,
        "early_stopping": False,
        "batch_size": 16,
    },
    "cls_no_es_3ep": {"pooling": "cls", "early_stopping": False, "epochs": 3},
    "len256_no_es_3ep": {"max_length": 256, "early_stopping": False, "epochs": 3},
    "same_lr_3e-5_no_es_3ep": {"head_lr": None, "early_stopping": False, "epochs": 3},
    "patience2_5ep": {"patience": 2, "epochs": 5},
    # the plain loop's text-pair encoding puts [SEP] between prompt and response; the library did not
    "sep": {"separator": True},
    "sep_len256_no_es_3ep": {"separator": True, "max_length": 256, "early_stopping": False, "epochs": 3},
    # the attention's dropout off lets the CPU use its fused (flash) attention kernel in training
    # (2.5x faster on a 256-token batch of MiniLM-L6, profiled); kept only if accuracy holds
    "attn_dropout0": {"attention_dropout": 0.0, "max_length": 256, "early_stopping": False, "epochs": 3},
}
VARIANTS = {name: {**ERA, **v} for name, v in VARIANTS.items()}
VARIANTS["defaults"] = {}  # the library's defaults as they are now


def load_data(name: str, args) -> tuple[list[dict], list[dict], dict]:
    rng = random.Random(20261124)
    if name == "sentiment":
        rows = [json.loads(x) for x in Path(args.sentiment).read_text().splitlines() if x.strip()]
        decided = [r for r in rows if r["gold_a"] != r["gold_b"]]
        pairs = []
        for r in decided:
            a_wins = r["gold_a"] > r["gold_b"]
            pairs.append(
                {
                    "prompt": r["prompt"],
                    "chosen": r["response_a"] if a_wins else r["response_b"],
                    "rejected": r["response_b"] if a_wins else r["response_a"],
                }
            )
        rng.shuffle(pairs)
        info = {
            "source": "v2 sentiment pilot pairs",
            "pool": len(rows),
            "gold_ties_dropped": len(rows) - len(pairs),
        }
        return pairs[:600], pairs[600:], info
    if name == "hh":
        from cwpo.data import load_pairs

        rows = load_pairs(args.hh, format="hh-rlhf", subset="harmless").rows
        rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
        rng.shuffle(rows)
        return rows[:1500], rows[1500:], {"source": "HH-RLHF harmless-base", "pool": len(rows)}
    if name == "hh_mixed":
        from cwpo.data import load_pairs

        rows = load_pairs(args.hh, format="hh-rlhf", subset="hh").rows
        rows = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
        rng.shuffle(rows)
        return (
            rows[:1500],
            rows[1500:3500],
            {"source": "HH-RLHF harmless-base + helpful-base", "pool": len(rows)},
        )
    raise SystemExit(f"unknown data {name!r}")


def plain_loop(train, test, max_length=128, epochs=2, lr=2e-5, batch=16, seed=0):
    """The baseline: a textbook Bradley-Terry loop, nothing tuned (AdamW, one lr, no schedule)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from cwpo.models.registry import resolve_model

    torch.manual_seed(seed)
    path = resolve_model("minilm-l6")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)

    def score(rows, key):
        enc = tok([r["prompt"] for r in rows], [r[key] for r in rows], truncation=True,
                  max_length=max_length, padding=True, return_tensors="pt")  # fmt: skip
        return model(**enc).logits[:, 0]

    rng = random.Random(seed)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for i in range(0, len(order), batch):
            rows = [train[j] for j in order[i : i + batch]]
            loss = -F.logsigmoid(score(rows, "chosen") - score(rows, "rejected")).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    train_time = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        margins = torch.cat(
            [
                score(test[i : i + 32], "chosen") - score(test[i : i + 32], "rejected")
                for i in range(0, len(test), 32)
            ]
        )
    config = {
        "max_length": max_length,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch,
        "pooling": "cls (pooler)",
    }
    return margins, train_time, config, {}


def library_run(train, test, overrides: dict, seed=0, bf16=False):
    from cwpo.annotator import TrainAnnotatorConfig, load_annotator, train_annotator
    from cwpo.io import write_jsonl

    with tempfile.TemporaryDirectory() as tmp:
        write_jsonl(Path(tmp) / "train.jsonl", train)
        base = {"bf16": bf16}  # default fp32 like the plain loop; --bf16 auto: the library's run-time probe
        cfg = TrainAnnotatorConfig(
            train=str(Path(tmp) / "train.jsonl"), output=str(Path(tmp) / "ann"), progress=False, seed=seed,
            **{**base, **overrides},
        )  # fmt: skip
        metrics = train_annotator(cfg)
        ann = load_annotator(cfg.output)
        margins = ann.score_pairs(
            [r["prompt"] for r in test], [r["chosen"] for r in test], [r["rejected"] for r in test], 64
        )
    import dataclasses

    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("train", "output", "progress")}
    extra = {
        k: metrics.get(k)
        for k in ("train_steps", "epochs_run", "best_epoch", "val_curve", "epoch_mean_losses", "precision")
    }
    return margins, metrics["train_time_s"], config, extra


def summarize(margins: torch.Tensor) -> dict:
    m = margins.double()
    agree = (m > 0).double() + 0.5 * (m == 0).double()
    conf = m.abs()
    order = torch.argsort(conf, descending=True, stable=True)
    k = max(1, round(0.3 * len(m)))
    quint = []
    asc = torch.argsort(conf, stable=True)
    for q in range(5):
        idx = asc[q * len(m) // 5 : (q + 1) * len(m) // 5]
        quint.append({"quintile": q + 1, "accuracy": float(agree[idx].mean()), "n": len(idx),
                      "mean_abs_margin": float(conf[idx].mean())})  # fmt: skip
    return {
        "accuracy": float(agree.mean()),
        "accuracy_top30": float(agree[order[:k]].mean()),
        "accuracy_by_confidence_quintile": quint,
        "n_test": len(m),
        "agree": [float(x) for x in agree],  # per test pair (1, 0.5 on a tie, 0): paired comparisons
    }


T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # two-sided 95% t quantiles by df


def by_variant(runs: list[dict], reference: str = "new_default") -> dict:
    """Per (data, variant): accuracy over seeds and its difference from ``reference`` paired by seed.

    The difference's CI is a t interval over the seed-paired differences (training noise; the test
    pairs are fixed). Where both runs of a seed kept per-pair agreement, the pooled per-pair SE of
    the difference (test-pair noise) is reported beside it.
    """
    groups: dict = {}
    for r in runs:
        groups.setdefault((r["data"], r["variant"]), {})[r["seed"]] = r
    out = {}
    for (data, variant), seeds in sorted(groups.items()):
        acc = [seeds[s]["accuracy"] for s in sorted(seeds)]
        m = sum(acc) / len(acc)
        sd = (sum((a - m) ** 2 for a in acc) / (len(acc) - 1)) ** 0.5 if len(acc) > 1 else None
        entry = {
            "seeds": sorted(seeds),
            "accuracy": round(m, 4),
            "accuracy_std": None if sd is None else round(sd, 4),
            "accuracy_per_seed": [round(a, 4) for a in acc],
            "accuracy_top30": round(sum(seeds[s]["accuracy_top30"] for s in seeds) / len(seeds), 4),
            "train_time_s": round(sum(seeds[s]["train_time_s"] for s in seeds) / len(seeds), 1),
        }
        ref = groups.get((data, reference), {})
        common = sorted(set(seeds) & set(ref))
        if variant != reference and common:
            d = [seeds[s]["accuracy"] - ref[s]["accuracy"] for s in common]
            dm = sum(d) / len(d)
            entry[f"minus_{reference}"] = round(dm, 4)
            entry[f"minus_{reference}_seeds"] = common
            if len(d) > 1:
                dsd = (sum((x - dm) ** 2 for x in d) / (len(d) - 1)) ** 0.5
                half = T975[min(len(d) - 1, 5)] * dsd / len(d) ** 0.5
                entry[f"minus_{reference}_ci95_over_seeds"] = [round(dm - half, 4), round(dm + half, 4)]
            paired = [s for s in common if "agree" in seeds[s] and "agree" in ref[s]]
            if paired:
                agree = torch.tensor([seeds[s]["agree"] for s in paired], dtype=torch.float64)
                agree_ref = torch.tensor([ref[s]["agree"] for s in paired], dtype=torch.float64)
                diffs = (agree - agree_ref).mean(0)  # per test pair, over the paired seeds
                entry[f"minus_{reference}_per_pair_se"] = round(float(diffs.std() / len(diffs) ** 0.5), 4)
        out[f"{data}/{variant}"] = entry
    return out


def record(entry: dict) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(str(OUT) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = json.loads(OUT.read_text()) if OUT.exists() else {"runs": []}
        doc["runs"] = [
            r for r in doc["runs"]
            if not (r["data"] == entry["data"] and r["variant"] == entry["variant"] and r["seed"] == entry["seed"])
        ] + [entry]  # fmt: skip
        doc["runs"].sort(key=lambda r: (r["data"], r["variant"], r["seed"]))
        doc["summary"] = {
            f"{r['data']}/{r['variant']}/seed{r['seed']}": {
                "accuracy": round(r["accuracy"], 4),
                "accuracy_top30": round(r["accuracy_top30"], 4),
                "train_time_s": round(r["train_time_s"], 1),
            }
            for r in doc["runs"]
        }
        doc["by_variant"] = by_variant(doc["runs"])
        doc["variants"] = {"plain": "plain_loop() in this script", **VARIANTS}
        OUT.write_text(json.dumps(doc, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", choices=["sentiment", "hh", "hh_mixed"], default="sentiment")
    parser.add_argument(
        "--bf16",
        choices=["false", "auto"],
        default="false",
        help="library variants' precision (auto: the probe)",
    )
    parser.add_argument("--variants", nargs="+", default=["plain", "old_recipe", "new_default"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sentiment", default="/work/runs/v2/stages/pairs-51beacd8d148dbe5/pairs.jsonl")
    parser.add_argument("--hh", default=str(SHARED / "hh-rlhf"))
    parser.add_argument("--plain-max-length", type=int, default=128)
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    args = parser.parse_args()
    if args.list:
        for name, v in {"plain": {"see": "plain_loop"}, **VARIANTS}.items():
            print(name, v)
        return
    train, test, info = load_data(args.data, args)
    machine = {k: v for k, v in machine_info().items() if k != "hostname"}
    for name in args.variants:
        if name != "plain" and name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}")
        started = time.time()
        if name == "plain":
            margins, train_time, config, extra = plain_loop(
                train, test, args.plain_max_length, seed=args.seed
            )
        else:
            margins, train_time, config, extra = library_run(
                train, test, VARIANTS[name], seed=args.seed, bf16=False if args.bf16 == "false" else "auto"
            )
        entry = {
            "data": args.data,
            # bf16 runs are kept beside the fp32 runs of the same variant, not over them
            "variant": name if name == "plain" or args.bf16 == "false" else f"{name}@bf16-auto",
            "seed": args.seed,
            **summarize(margins),
            "train_time_s": train_time,
            "n_train": len(train),
            "data_info": info,
            "config": config,
            **{k: v for k, v in extra.items() if v is not None},
            "wall_time_s": round(time.time() - started, 1),
            "command": command_line(),
            "date": now_iso(),
            "cpu_model": machine.get("cpu_model"),
            "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average_at_end": list(os.getloadavg()),
            "machine": machine,
        }
        record(entry)
        print(f"{args.data} {name}: acc {entry['accuracy']:.3f} top30 {entry['accuracy_top30']:.3f} "
              f"train {train_time:.0f}s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
