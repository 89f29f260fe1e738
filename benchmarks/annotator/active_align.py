"""Does choosing which pairs humans label change the aligned model? CW-DPO from active against
random labelling, compared at matched KL on the frontier bench's machinery.

For each regime, strategy and seed of the active bench (:mod:`benchmarks.annotator.active`) at one
human budget (default 20% of the selectable pool): the round whose annotator was trained on that
many labels has labelled the rest of the pool (``annotated.jsonl``: weak labels and c). CW-DPO
trains on it with :mod:`benchmarks.frontier.run` (``--annotation`` that round, ``--tag
active-STRATEGY-20``; lr 5e-4, 1 epoch, snapshots at 1/16 to 1 epoch, test prompts only) and every
snapshot is scored like a frontier point (gold reward, GRA, Monte-Carlo KL to the SFT model).

Claims, per regime and strategy: active minus random in GRA and in gold reward at matched KL (the
mean over the KL levels both reach; crossed bootstrap over seeds x prompts), judged only with every
planned seed, as their own Holm family in ``annotator/results/active.json`` (written by ``active
--summarize``). Power is low: two CW arms differ by less than the annotators do, and the frontier
bench's MDE between two similar CW arms is about 8 GRA points at 3 seeds x 300 prompts; a resolved
annotator-level difference at this budget is what would make a difference here plausible. CW-DPO
(``cw``) trains on the annotated rest only (the paper's design), so the human labels a strategy
buys reach the aligned model only through the annotator; ``cw_dl`` also trains on those labels
(weight 1), what a user with both would do. The default run is ``cw`` for random and uncertainty:
2 regimes x 2 strategies x 3 seeds = 12 one-epoch runs, about 2.5 h on two cores; ``--methods cw
cw_dl`` and ``--strategies ... uncertain_diverse`` each double it.

    OMP_NUM_THREADS=1 python -m benchmarks.annotator.active_align --regimes noisefree --seeds 0 1 2 &
    OMP_NUM_THREADS=1 python -m benchmarks.annotator.active_align --regimes crowd_bt --seeds 0 1 2 &
    python -m benchmarks.annotator.active --summarize

Runs resume from the stage cache (``--cache``, default the frontier bench's); the index of scored
snapshots is ``annotator/results/active_align/points.jsonl``.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

from benchmarks.frontier import analyze
from benchmarks.frontier import run as frontier_run
from benchmarks.frontier.train_rows import read_jsonl
from benchmarks.result_files import REPO, bench_parser
from cwpo.atomic_files import read_json
from cwpo.stats import Claim

RESULTS = REPO / "benchmarks" / "annotator" / "results" / "active_align"
REGIMES = ("noisefree", "crowd_bt")
STRATEGIES = ("random", "uncertainty", "uncertain_diverse")
SEEDS = (0, 1, 2)
SHARE = 0.20
LR = 5e-4
CHECKPOINTS = ("0.0625", "0.125", "0.25", "0.5", "1")  # dense early, as the frontier plan
# the aligned methods (plan.yaml): CW-DPO on D_u, and with D_l's human labels beside it
METHODS = {"cw": "CW-DPO", "cw_dl": "CW-DPO with D_l"}
PLANNED = {"strategies": ("random", "uncertainty"), "methods": ("cw",)}  # the runs by default
# the planned claims (each active strategy against random, GRA and reward, per regime): Holm counts
# them all while some still lack seeds; runs beyond the plan make the family larger, not smaller
ALIGN_FAMILY = len(REGIMES) * len(PLANNED["methods"]) * (len(PLANNED["strategies"]) - 1) * 2


def tag(strategy: str, share: float = SHARE) -> str:
    return f"active-{strategy}-{round(100 * share)}"


def budget_round(piece: Path, share: float = SHARE) -> Path | None:
    """The round folder whose annotator trained on ``share`` of the selectable pool, if finished."""
    n_pool = len(read_jsonl(piece / "pool.jsonl"))
    want = round(share * n_pool)
    for folder in sorted((piece / "rounds").glob("round-*")):
        done = folder / "round.json"
        if done.exists() and read_json(done)["metrics"].get("trained_on") == want:
            return folder if (folder / "annotated.jsonl").exists() else None
    return None


def run_piece(regime: str, strategy: str, seed: int, args) -> int:
    from benchmarks.annotator.active import piece_dir

    folder = budget_round(piece_dir(regime, strategy, seed), args.share)
    if folder is None:
        print(f"skipped {regime}/{strategy}/seed{seed}: no finished round at {args.share:.0%} labels "
              "(run benchmarks.annotator.active first)")  # fmt: skip
        return 0
    argv = [
        "--regime", regime, "--methods", *args.methods, "--seeds", str(seed), "--lrs", str(LR), "--splits", "test",
        "--epochs", CHECKPOINTS[-1], "--checkpoints", *CHECKPOINTS, "--annotation", str(folder),
        "--tag", tag(strategy, args.share), "--results", str(args.results), "--cache", str(args.cache),
        "--max-minutes", str(args.max_minutes),
    ]  # fmt: skip
    return frontier_run.main(argv)


def align_claims(results: Path = RESULTS, cache: Path | None = None, share: float = SHARE, n_levels: int = 5):
    """``(metrics, claims)``: per regime the frontier of each strategy's CW-DPO and, for each active
    strategy with random on every planned seed, active − random at matched KL (GRA, reward)."""
    index = results / frontier_run.POINTS.name
    if not index.exists():
        return {"note": "no CW-DPO run from the active bench yet"}, []
    points = analyze.Points(
        read_jsonl(index), cache or frontier_run.REPO / "runs" / "bench" / "cache", results
    )
    metrics: dict = {"share": share, "lr": LR, "epochs": float(CHECKPOINTS[-1]), "by_regime": {}}
    claims = []
    for regime, method in itertools.product(REGIMES, METHODS):
        name = f"{method}@{{}}"
        have = {s for s in STRATEGIES if points.run(regime, name.format(tag(s, share)), LR, "test")}
        if not have:
            continue
        per = metrics["by_regime"].setdefault(regime, {"frontier": {}, "matched_kl": {}})
        for s in sorted(have):
            per["frontier"][f"{method}/{s}"] = analyze.frontier(
                points, regime, name.format(tag(s, share)), LR
            )
        for s in sorted(have - {"random"}) if "random" in have else []:
            for metric in ("gra", "reward"):
                a, b = name.format(tag(s, share)), name.format(tag("random", share))
                res = analyze.matched(points, regime, a, LR, b, LR, metric, n_levels)
                if not res or "_estimate" not in res or len(res["seeds"]) < len(SEEDS):
                    continue  # a verdict only with every planned seed
                label = METHODS[method]
                claims.append(Claim(f"{regime} {share:.0%} {label} {metric} at matched KL: {s} > random",
                                    res.pop("_estimate")))  # fmt: skip
                per["matched_kl"][f"{method}/{s}_vs_random_{metric}"] = res
    return metrics, claims


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES))
    ap.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(PLANNED["strategies"]))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    ap.add_argument("--share", type=float, default=SHARE, help="the human budget (share of the pool)")
    ap.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(PLANNED["methods"]))
    ap.add_argument("--cache", type=Path, default=REPO / "runs" / "bench" / "cache")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--max-minutes", type=float, default=110.0)
    args = ap.parse_args(argv)
    started = time.time()
    for piece in itertools.product(args.regimes, args.strategies, args.seeds):
        if (time.time() - started) / 60 > args.max_minutes:
            print(f"stopped after {args.max_minutes} minutes; run the same command again to continue")
            return 0
        rc = run_piece(*piece, args)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
