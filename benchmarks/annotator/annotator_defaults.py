"""Which defaults for the BT annotator: pooling, head vs body learning rate, epochs with early
stopping, max_length, measured against a plain 40-line Bradley-Terry loop.

Data (chosen once, before any result was seen; nothing here is the bench's test data):

* ``sentiment``: the v2 pilot pairs (IMDb prefixes, SmolLM2 responses, VADER gold; ``--sentiment``),
  gold ties dropped, seeded shuffle, the first 600 pairs train, the rest test (chosen = higher gold).
* ``sentiment_pool1``: the same from a pilot pool sampled like the bench's (its recipe, its SFT
  model) with pool seed 1, pairs whose prompt the bench's pool holds dropped (``--sentiment``;
  sampled when missing); ``--train-pairs N``: a learning curve on a fixed test slice.
* ``hh``: HH-RLHF Harmless (``--hh``), seeded shuffle of the pool, 1,500 pairs train, the rest test.
* ``hh_mixed``: the paper's HH-RLHF pairs (harmless-base + helpful-base, as the HH track and the
  robustness study use them), seeded shuffle, 1,500 pairs train, the next 2,000 test.

Each (data, variant) is one run appended to ``benchmarks/annotator/results/annotator_defaults.json`` (under a
file lock, so two processes can fill it): accuracy on the test pairs, on the 30% most confident,
by confidence quintile, training time (model loading and test scoring excluded), the exact
command, date, CPU model and thread count. Variants run through ``cwpo.annotator.train_annotator``
(the library path); ``plain`` is the loop in :func:`plain_loop`.

    OMP_NUM_THREADS=1 python -m benchmarks.annotator.annotator_defaults --data sentiment \
        --variants plain old_recipe new_default
    python -m benchmarks.annotator.annotator_defaults --list
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import random
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.result_files import REPO as ROOT
from benchmarks.result_files import SHARED_DATA as SHARED
from benchmarks.result_files import bench_parser, command_line
from cwpo.machine import machine_info, now_iso

OUT = Path(__file__).resolve().parent / "results" / "annotator_defaults.json"

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
    # HH diagnosis (early stopping kept epoch 1 in 18/20 HH trainings; benchmarks/tracks/results/robustness.json)
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
# Longer training from today's defaults: a 600-pair D_l gives ~57 optimizer steps in 3 epochs
# (sentiment: the bar of 80% gold agreement for the noise-free annotator)
VARIANTS.update(
    {
        "epochs10": {"epochs": 10},
        "lr1e-4": {"lr": 1e-4},
        # the mean over the response's tokens only (the gold of the sentiment track reads the
        # response alone; an HH prompt is most of a pair's tokens and the same on both sides)
        "response_pooling": {"pooling": "response"},
    }
)


SENTIMENT_POOL1 = str(ROOT / "benchmarks" / "archive" / "pilot" / "sentiment-pool1.jsonl.gz")
PILOT_POOL_SEED = 1  # the bench's pool is pool_seed 0: this pilot pool samples other prompts


def sentiment_pilot(path: Path, sft_model: Path) -> None:
    """Sample a pilot pool like the sentiment v2 bench's (its recipe, its SFT model) from another
    pool seed; prompts the bench's pool also holds are dropped, so no bench pair is seen here."""
    from cwpo.atomic_files import atomic_path
    from cwpo.experiments.recipe import load_recipe
    from cwpo.experiments.sentiment import SentimentConfig, sample_pairs

    recipe = load_recipe(ROOT / "configs" / "cpu" / "sentiment-v2.yaml")
    sent = dict(recipe.sentiment)
    sent["imdb"] = str((ROOT / sent["imdb"]).resolve())  # recipes' paths are relative to the repo
    cfg = SentimentConfig(**sent)
    pairs, _ = sample_pairs(str(sft_model / "model"), cfg, PILOT_POOL_SEED)
    bench = sorted(sft_model.parent.glob("pairs-*/pairs.jsonl"))
    seen = {json.loads(x)["prompt_id"] for f in bench for x in f.read_text().splitlines() if x.strip()}
    kept = [r for r in pairs if r["prompt_id"] not in seen]
    print(f"pilot pool: {len(pairs)} pairs, {len(pairs) - len(kept)} dropped (prompt in the bench pool)")
    text = "".join(json.dumps(r) + "\n" for r in kept)
    with atomic_path(path) as tmp, gzip.open(tmp, "wt") if path.suffix == ".gz" else open(tmp, "w") as f:
        f.write(text)


def read_rows(path: str) -> list[dict]:
    with gzip.open(path, "rt") if str(path).endswith(".gz") else open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def sentiment_pairs(path: str) -> tuple[list[dict], int]:
    """The gold-decided pairs of a sentiment pool as (chosen, rejected), in the seeded order the
    train and test slices are cut from; and the pool's size."""
    rows = read_rows(path)
    pairs = []
    for r in rows:
        if r["gold_a"] == r["gold_b"]:
            continue
        a_wins = r["gold_a"] > r["gold_b"]
        pairs.append(
            {
                "prompt": r["prompt"],
                "chosen": r["response_a"] if a_wins else r["response_b"],
                "rejected": r["response_b"] if a_wins else r["response_a"],
                "gold_gap": abs(r["gold_a"] - r["gold_b"]),
            }
        )
    random.Random(20261124).shuffle(pairs)
    return pairs, len(rows)


CURVE_TEST_START = 1000  # the learning curve's fixed test slice: the pairs after the first 1,000


def load_data(name: str, args) -> tuple[list[dict], list[dict], dict]:
    rng = random.Random(20261124)
    if name in ("sentiment", "sentiment_pool1"):
        if not Path(args.sentiment).exists():
            if name == "sentiment":
                raise SystemExit(f"{args.sentiment}: the v2 pilot pairs are not on this machine")
            sentiment_pilot(Path(args.sentiment), Path(args.sft))
        pairs, n_rows = sentiment_pairs(args.sentiment)
        info = {
            "source": "v2 sentiment pilot pairs" + (" (pool seed 1)" if name == "sentiment_pool1" else ""),
            "pool": n_rows,
            "gold_ties_dropped": n_rows - len(pairs),
        }
        if args.train_pairs:
            if not 0 < args.train_pairs <= CURVE_TEST_START or len(pairs) <= CURVE_TEST_START:
                raise SystemExit(
                    f"--train-pairs takes 1..{CURVE_TEST_START} with more than {CURVE_TEST_START} "
                    f"decided pairs, got {args.train_pairs}"
                )
            return pairs[: args.train_pairs], pairs[CURVE_TEST_START:], info
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
    from cwpo.atomic_files import write_jsonl

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


def reference_of(data: str) -> str:
    """The variant the others of ``data`` are compared with: the defaults of the day it was run."""
    return "defaults@bf16-auto" if data == "sentiment_pool1" else "new_default"


def by_gold_gap(agree: list[float], gaps: list[float]) -> list[dict]:
    """Accuracy by the gold's gap |gold_a - gold_b| (sentiment: how far apart VADER puts the two)."""
    out = []
    for lo, hi in GAP_BINS:
        a = [x for x, g in zip(agree, gaps, strict=True) if lo <= g < hi]
        out.append({"gap": [lo, hi], "n": len(a), "accuracy": round(sum(a) / len(a), 4) if a else None})
    return out


GAP_BINS = [(0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 1.0), (1.0, 2.01)]


def pool1_summary(runs: list[dict], path: str) -> dict:
    """The pilot pool's learning curve and, per run, accuracy by the gold's gap."""
    curve = sorted(
        ({"n_train": r["n_train"], "accuracy": round(r["accuracy"], 4), "n_test": r["n_test"]}
         for r in runs if r["data"] == "sentiment_pool1" and "@curve-n" in r["variant"]),
        key=lambda c: c["n_train"],
    )  # fmt: skip
    out: dict = {"learning_curve": curve}
    if Path(path).exists():
        all_gaps = [p["gold_gap"] for p in sentiment_pairs(path)[0]]
        # a run's test slice, told by its length: the pairs after 600 (variants) or 1,000 (curve)
        gaps = {len(g): g for g in (all_gaps[600:], all_gaps[CURVE_TEST_START:])}
        out["accuracy_by_gold_gap"] = {
            r["variant"]: by_gold_gap(r["agree"], gaps[len(r["agree"])])
            for r in runs
            if r["data"] == "sentiment_pool1" and len(r.get("agree", [])) in gaps
        }
    return out


def by_variant(runs: list[dict]) -> dict:
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
        reference = reference_of(data)
        ref = groups.get((data, reference), {})
        common = sorted(set(seeds) & set(ref))
        if variant != reference and common and "@curve-n" not in variant:  # a curve is its own comparison
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
        write_summaries(doc)


def write_summaries(doc: dict) -> None:
    """The summary blocks of the results file, all from its runs (the caller holds the lock)."""
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
    doc["sentiment_pool1"] = pool1_summary(doc["runs"], SENTIMENT_POOL1)
    doc["variants"] = {"plain": "plain_loop() in this script", **VARIANTS}
    OUT.write_text(json.dumps(doc, indent=2) + "\n")


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument(
        "--data", choices=["sentiment", "sentiment_pool1", "hh", "hh_mixed"], default="sentiment_pool1"
    )
    parser.add_argument(
        "--bf16",
        choices=["false", "auto"],
        default="false",
        help="library variants' precision (auto: the probe)",
    )
    parser.add_argument("--variants", nargs="+", default=["plain", "old_recipe", "new_default"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sentiment",
        default=SENTIMENT_POOL1,
        help="the pilot pairs; sampled (pool seed 1, the bench's SFT model: --sft) when missing",
    )
    parser.add_argument(
        "--sft",
        default=str(ROOT / "runs" / "bench" / "cache" / "stages" / "sft-91bbf45976574d1a"),
        help="the sentiment v2 bench's SFT stage folder (to sample the pilot pool)",
    )
    parser.add_argument("--hh", default=str(SHARED / "hh-rlhf"))
    parser.add_argument("--plain-max-length", type=int, default=128)
    parser.add_argument(
        "--train-pairs",
        type=int,
        help="sentiment learning curve: train on the first N pairs (N <= 1000), test on the pairs after 1,000",
    )
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    parser.add_argument("--summarize", action="store_true", help="only rewrite the summaries of the results")
    args = parser.parse_args()
    if args.summarize:
        with open(str(OUT) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            write_summaries(json.loads(OUT.read_text()))
        print(f"wrote {OUT}")
        return
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
            "variant": (name if name == "plain" or args.bf16 == "false" else f"{name}@bf16-auto")
            + (f"@curve-n{args.train_pairs}" if args.train_pairs else ""),
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
