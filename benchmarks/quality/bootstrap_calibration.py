"""How well the seeds x prompts intervals of :mod:`cwpo.stats` are calibrated on the frontier
bench's layout: :func:`~cwpo.stats.crossed_bootstrap` and :func:`~cwpo.stats.crossed_components`,
on the same simulated data sets.

Simulated paired GRA outcomes of two methods on the same seeds x prompts: per prompt a difficulty
q ~ U(0.3, 0.9); per method and seed a training shift u ~ N(0, sd_seed); each outcome is 1 with
probability clip(q + u + effect) (the first method gets ``effect``), else 0, and the claim's data
is the [seeds, prompts] matrix of their differences. Over ``--datasets`` draws per setting: the
true sd of the estimate (the sd of the estimates over draws), the mean standard error the
estimator reports, their ratio, how often a null claim gets p < 0.05, and how often the 95%
interval covers the true difference, and the median degrees of freedom.

    python -m benchmarks.quality.bootstrap_calibration   # results/bootstrap_calibration.json
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.result_files import bench_parser, write_result
from cwpo.stats import STATS_META, crossed_bootstrap, crossed_components

HERE = Path(__file__).resolve().parent


def draw(rng, n_seeds: int, n_prompts: int, sd_seed: float, effect: float) -> np.ndarray:
    q = rng.uniform(0.3, 0.9, n_prompts)
    out = []
    for shift in (effect, 0.0):
        u = rng.normal(0.0, sd_seed, (n_seeds, 1)) if sd_seed else np.zeros((n_seeds, 1))
        out.append((rng.random((n_seeds, n_prompts)) < np.clip(q + u + shift, 0, 1)).astype(float))
    return out[0] - out[1]


def setting(
    n_datasets: int, n_seeds: int, n_prompts: int, sd_seed: float, effect: float, n_boot: int
) -> dict:
    rng = np.random.default_rng(0)
    data = [draw(rng, n_seeds, n_prompts, sd_seed, effect) for _ in range(n_datasets)]
    means = np.array([d.mean() for d in data])
    true_sd = float(means.std(ddof=1))
    out = {
        "seeds": n_seeds,
        "prompts": n_prompts,
        "sd_seed": sd_seed,
        "effect": effect,
        "true_sd_of_estimate": true_sd,
    }
    for name, fn in (
        ("crossed_bootstrap", lambda d: crossed_bootstrap(d, n_boot=n_boot)),
        ("crossed_components", crossed_components),
    ):
        est = [fn(d) for d in data]
        mean_se = float(np.mean([e.se for e in est]))
        out[name] = {
            "mean_reported_se": mean_se,
            "se_ratio": mean_se / true_sd,
            "share_p_below_0.05": float(np.mean([e.p < 0.05 for e in est])),
            "ci_coverage": float(np.mean([e.lo <= effect <= e.hi for e in est])),
            "median_df": float(np.median([e.df for e in est])) if est[0].df is not None else None,
        }
    return out


def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--datasets", type=int, default=300)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--output", type=Path, default=HERE / "results" / "bootstrap_calibration.json")
    args = p.parse_args()
    started = time.time()
    grid = [(3, 300, sd, 0.0) for sd in (0.0, 0.02, 0.04, 0.06)] + [(5, 300, 0.02, 0.0), (3, 300, 0.02, 0.05)]
    rows = []
    for n_seeds, n_prompts, sd_seed, effect in grid:
        rows.append(setting(args.datasets, n_seeds, n_prompts, sd_seed, effect, args.n_boot))
        print(rows[-1], flush=True)
    write_result(args.output, {"settings": rows, "datasets": args.datasets, "n_boot": args.n_boot,
                               "stats": STATS_META}, started)  # fmt: skip


if __name__ == "__main__":
    main()
