"""The demo's annotator settings, chosen on validation pools, never on the demo's own pairs.

`cwpo demo` trains its MiniLM-L6 BT annotator on 90 labelled pairs. This script samples the
demo's pair pool again with other pool seeds (1 and 2: the same prompts, other responses; the
demo uses pool_seed 0 and its test prompts are disjoint from every pool), trains each candidate
setting on D_l and measures its agreement with the gold (VADER) on the gold-decided pairs of D_u.
The candidates: the library defaults (3 epochs at most, early stopping on 10% of D_l), no early
stopping at 3 and 10 epochs, a larger head learning rate, smaller batches. The demo takes the
cheapest candidate within one standard error of the best (the one-SE rule: differences of a few
points on 2 x 192 pairs are noise, so the cheaper setting wins them). Writes
benchmarks/annotator/results/demo_annotator.json (per pool and the mean over pools).

    python -m benchmarks.annotator.demo_annotator [--runs DIR] [--pool-seeds 1 2]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import cwpo
from benchmarks.result_files import REPO, bench_parser, write_result
from cwpo.annotator.score import annotate
from cwpo.annotator.train import TrainAnnotatorConfig, train_annotator
from cwpo.experiments.evidence import annotator_gold_accuracy, labels_pool_file, read_jsonl
from cwpo.experiments.point_runner import PointRunner
from cwpo.experiments.recipe import load_recipe

RESULT = Path(__file__).resolve().parent / "results" / "demo_annotator.json"
VARIANTS = {  # name: overrides of the demo recipe's annotator section (before this study)
    "library_defaults": {"epochs": 3, "early_stopping": True},
    "no_early_stopping_3ep": {"epochs": 3, "early_stopping": False},
    "no_early_stopping_10ep": {"epochs": 10, "early_stopping": False},
    "no_early_stopping_10ep_head_lr_3e-3": {"epochs": 10, "early_stopping": False, "head_lr": 3e-3},
    "no_early_stopping_10ep_batch16": {"epochs": 10, "early_stopping": False, "batch_size": 16},
    "no_early_stopping_20ep_batch16": {"epochs": 20, "early_stopping": False, "batch_size": 16},
}


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--runs", default=str(REPO / "runs" / "demo-annotator"), help="stage cache folder")
    parser.add_argument("--pool-seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    start = time.time()
    root = Path(args.runs)
    root.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(Path(cwpo.__file__).parent / "configs" / "demo.yaml")
    per_pool: dict = {}
    for ps in args.pool_seeds:
        if ps == 0:
            raise SystemExit("pool seed 0 is the demo's own pool: choose settings on other pools")
        recipe.sentiment["pool_seed"] = ps
        pr = PointRunner(root, {"seed": 0}, recipe, progress=False)
        labels = pr.data()
        pool = read_jsonl(labels_pool_file(labels.path))
        for name, over in VARIANTS.items():
            out = root / f"pool{ps}-{name}"
            t0 = time.time()
            cfg = TrainAnnotatorConfig(
                **{
                    **recipe.annotator,
                    **over,
                    "seed": 0,
                    "train": str(pr.files["labeled"]),
                    "output": str(out / "annotator"),
                    "progress": False,
                    "overwrite": True,
                }
            )
            train_annotator(cfg)
            annotate(
                out / "annotator",
                pr.files["unlabeled"],
                out / "annotated.jsonl",
                batch_size=64,
                progress=False,
                overwrite=True,
            )
            acc = annotator_gold_accuracy(read_jsonl(out / "annotated.jsonl"), pool)
            per_pool.setdefault(name, {})[f"pool_seed_{ps}"] = {**acc, "seconds": round(time.time() - t0, 1)}
            print(f"pool {ps} {name}: {acc['acc']:.3f} on {acc['n']} pairs", flush=True)
    metrics = {
        "labeled_pairs": len(read_jsonl(pr.files["labeled"])),
        "mean_gold_acc": {n: float(np.mean([v["acc"] for v in p.values()])) for n, p in per_pool.items()},
        "per_pool": per_pool,
        "variants": VARIANTS,
    }
    # the one-standard-error rule: the cheapest setting (fewest epochs) whose mean accuracy is
    # within one standard error of the best one's; among equally cheap ones, the more accurate
    mean = metrics["mean_gold_acc"]
    best = max(mean, key=mean.get)
    n_pairs = sum(v["n"] for v in per_pool[best].values())
    se = float(np.sqrt(mean[best] * (1 - mean[best]) / n_pairs))
    close = [n for n in mean if mean[n] >= mean[best] - se]
    chosen = min(close, key=lambda n: (VARIANTS[n]["epochs"], -mean[n]))
    metrics.update({"best": best, "standard_error_of_best": se, "within_one_se": close, "chosen": chosen})
    path = write_result(RESULT, metrics, start)
    print(f"best {best} ({mean[best]:.3f}, SE {se:.3f}); chosen by the one-SE rule: {chosen}; wrote {path}")


if __name__ == "__main__":
    main()
