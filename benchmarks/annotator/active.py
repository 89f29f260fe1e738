"""Active labelling on the sentiment track: which pairs should the humans label, at equal budgets?

Pool: the sentiment evidence bench's pair pool (2,065 IMDb pairs, both responses scored by VADER;
``archive/bench/stages/pairs-*/pairs.jsonl.gz``), split once (seed 0) into the selectable pool
and 500 fixed evaluation pairs that no strategy can select. Simulated humans label what a strategy
selects, in two regimes: ``noisefree`` (the gold's order) and ``crowd_bt`` (Bradley-Terry noise,
P(a) = sigma((g_a - g_b) / T), with T calibrated on the pool to 67.5% agreement with the gold,
like HH-RLHF crowd workers; labels drawn per seed). For each regime, strategy (``random``,
``uncertainty``, ``uncertain_diverse``) and seed: a random start of 2.5% of the selectable pool,
then rounds of selection up to 10%, 20% and 30% of it (:func:`cwpo.experiments.active.run_rounds`),
the MiniLM-L6 Bradley-Terry annotator with the library defaults retrained each round.

Measured at each budget: the annotator's gold accuracy on the 500 fixed pairs (the fair
comparison: the same pairs for every strategy) and on the rest of the pool (what alignment would
train on; it differs by strategy). Claims: active minus random at each (regime, budget, strategy),
seed-paired, Student t over seeds (``cwpo.stats``); all of them one Holm family.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.annotator.active --workers 2   # every piece, then the results
    .venv/bin/python -m benchmarks.annotator.active --regimes noisefree --strategies random --seeds 0  # one piece
    .venv/bin/python -m benchmarks.annotator.active --summarize   # results from the finished pieces only

Pieces resume from ``runs/bench/active/`` (untracked: each round ends with a ``round.json``);
the committed result is ``annotator/results/active.json`` with per round the accuracies behind it.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import math
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.annotator.active_align import align_claims
from benchmarks.result_files import REPO, bench_parser, module_command, repo_env, write_result
from cwpo.atomic_files import read_json, write_jsonl, write_text
from cwpo.experiments.active import ActiveConfig, run_rounds
from cwpo.experiments.simulate import bt_preference_prob, gold_agreement, simulate_labels
from cwpo.stats import STATS_META, Claim, judge, t_estimate

RESULT = REPO / "benchmarks" / "annotator" / "results" / "active.json"
REPORT = REPO / "benchmarks" / "annotator" / "report" / "active.md"
RUNS = REPO / "runs" / "bench" / "active"
REGIMES = ("noisefree", "crowd_bt")
STRATEGIES = ("random", "uncertainty", "uncertain_diverse")
SEEDS = (0, 1, 2)
SHARES = (0.025, 0.10, 0.20, 0.30)  # the random start, then the budgets compared
N_EVAL = 500
CROWD_AGREEMENT = 0.675


def pool_file() -> Path:
    (path,) = sorted((REPO / "benchmarks" / "archive" / "bench" / "stages").glob("pairs-*/pairs.jsonl.gz"))
    return path


def read_pool() -> list[dict]:
    with gzip.open(pool_file(), "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [r for r in rows if r["response_a"] != r["response_b"]]


def crowd_temperature(rows: list[dict], target: float = CROWD_AGREEMENT) -> float:
    """T at which Bradley-Terry humans agree with the gold on ``target`` of the decided pairs
    (expected agreement, no sampling: mean of max(P, 1 - P) over pairs; bisection on log T)."""

    def agreement(t: float) -> float:
        decided = [(r["gold_a"], r["gold_b"]) for r in rows if r["gold_a"] != r["gold_b"]]
        return sum(max(p, 1 - p) for p in (bt_preference_prob(a, b, t) for a, b in decided)) / len(decided)

    lo, hi = math.log(1e-4), math.log(100.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if agreement(math.exp(mid)) > target else (lo, mid)
    return math.exp((lo + hi) / 2)


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    held = set(order[:N_EVAL])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def labelled(rows: list[dict], regime: str, seed: int, temperature: float) -> list[dict]:
    t = 0.0 if regime == "noisefree" else temperature
    labels = simulate_labels([r["gold_a"] for r in rows], [r["gold_b"] for r in rows], t, seed=1000 + seed)
    return [{**r, "human_label": lab} for r, lab in zip(rows, labels, strict=True)]


def piece_dir(regime: str, strategy: str, seed: int) -> Path:
    return RUNS / regime / strategy / f"seed{seed}"


def run_piece(regime: str, strategy: str, seed: int) -> dict:
    rows = read_pool()
    pool, held = split(rows)
    temperature = crowd_temperature(rows)
    work = piece_dir(regime, strategy, seed)
    work.mkdir(parents=True, exist_ok=True)
    pool_path, eval_path = work / "pool.jsonl", work / "eval.jsonl"
    pool_rows = labelled(pool, regime, seed, temperature)
    if not pool_path.exists():
        write_jsonl(pool_path, pool_rows)
        write_jsonl(eval_path, labelled(held, regime, seed, temperature))
    budgets = [round(s * len(pool)) for s in SHARES]
    cfg = ActiveConfig(pool=str(pool_path), workdir=str(work / "rounds"), budgets=budgets, strategy=strategy,
                       eval_pairs=str(eval_path), seed=seed, annotator={"backbone": "minilm-l6"})  # fmt: skip
    started = time.time()
    out = run_rounds(
        cfg,
        progress=lambda m: print(f"  {regime}/{strategy}/seed{seed}: round {m['round']} done", flush=True),
    )
    out["seconds_this_run"] = time.time() - started
    out["human_gold_agreement"] = gold_agreement(
        [r["human_label"] for r in pool_rows],
        [r["gold_a"] for r in pool_rows],
        [r["gold_b"] for r in pool_rows],
    )
    return out


def finished(regime: str, strategy: str, seed: int) -> dict | None:
    rounds = piece_dir(regime, strategy, seed) / "rounds"
    files = [rounds / f"round-{r:02d}" / "round.json" for r in range(len(SHARES) + 1)]
    if not all(f.exists() for f in files):
        return None
    return {"rounds": [read_json(f)["metrics"] for f in files]}


def summarize(started: float, output: Path) -> dict:
    rows = read_pool()
    pool, _held = split(rows)
    budgets = [round(s * len(pool)) for s in SHARES]
    acc: dict = {}  # (regime, strategy, seed) -> {budget: {"eval": acc, "rest": acc}}
    for regime, strategy, seed in itertools.product(REGIMES, STRATEGIES, SEEDS):
        done = finished(regime, strategy, seed)
        if done is None:
            continue
        acc[(regime, strategy, seed)] = {
            m["trained_on"]: {"eval": m["eval"]["gold_accuracy"], "rest": m["rest"]["gold_accuracy"]}
            for m in done["rounds"]
            if "trained_on" in m
        }
    metrics: dict = {"budgets": {f"{s:.3f}": b for s, b in zip(SHARES, budgets, strict=True)},
                     "n_pool": len(pool), "n_eval": N_EVAL, "crowd_temperature": crowd_temperature(rows),
                     "by_regime": {}, "stats": STATS_META}  # fmt: skip
    claims = []
    for regime in REGIMES:
        per = metrics["by_regime"].setdefault(regime, {})
        for share, budget in zip(SHARES[1:], budgets[1:], strict=True):
            level = per.setdefault(f"{share:.0%}", {"labels": budget})
            for strategy in STRATEGIES:
                seeds = [s for s in SEEDS if (regime, strategy, s) in acc]
                level[strategy] = {
                    where: [acc[(regime, strategy, s)][budget][where] for s in seeds]
                    for where in ("eval", "rest")
                } | {"seeds": seeds}
            for strategy in STRATEGIES[1:]:
                seeds = [s for s in SEEDS if (regime, strategy, s) in acc and (regime, "random", s) in acc]
                if len(seeds) < 2:
                    continue
                diffs = [acc[(regime, strategy, s)][budget]["eval"] - acc[(regime, "random", s)][budget]["eval"]
                         for s in seeds]  # fmt: skip
                claims.append(Claim(f"{regime} {share:.0%} {strategy} > random", t_estimate(diffs)))
    metrics["align"], align = align_claims()  # CW-DPO from each strategy's labels, at matched KL
    metrics["claims"] = judge(claims + align)
    metrics["pieces_finished"] = [f"{r}/{st}/seed{s}" for (r, st, s) in acc]
    write_result(output, metrics, started)
    write_text(
        REPORT if output == RESULT else output.with_suffix(".md"), render(metrics)
    )  # a trial: beside it
    return metrics


def render(metrics: dict) -> str:
    """The report page, from the metrics alone: accuracy per strategy and budget, then the verdicts."""
    lines = [
        "# Active labelling on the sentiment track",
        "",
        "Generated by `python -m benchmarks.annotator.active --summarize` from `active.json`; nothing here is "
        "typed. MiniLM-L6 BT's gold accuracy on the 500 fixed evaluation pairs, mean over the finished seeds, "
        "per labelled share of the selectable pool. Verdicts: active minus random, seed-paired, Student t, "
        "all claims one Holm family (`cwpo.stats`).",
        "",
        "| regime | labels | " + " | ".join(STRATEGIES) + " |",
        "|---|---|" + "---|" * len(STRATEGIES),
    ]
    for regime, levels in metrics["by_regime"].items():
        for share, level in levels.items():
            cells = []
            for strategy in STRATEGIES:
                accs = level[strategy]["eval"]
                cells.append(f"{100 * sum(accs) / len(accs):.1f} ({len(accs)} seeds)" if accs else "not run")
            lines.append(f"| {regime} | {share} ({level['labels']}) | " + " | ".join(cells) + " |")
    lines += ["", *(f"- {c['name']}: **{c['verdict']}**, {100 * c['estimate']['mean']:+.1f} points "
                    f"[{100 * c['estimate']['lo']:+.1f}, {100 * c['estimate']['hi']:+.1f}], Holm p {c['p_holm']:.2g}"
                    for c in metrics["claims"])]  # fmt: skip
    if not metrics["claims"]:
        lines.append("No comparison has two finished seeds of both strategies yet.")
    lines += align_lines(metrics.get("align", {}))
    lines += ["", f"Finished pieces: {', '.join(metrics['pieces_finished']) or 'none'}.", ""]
    return "\n".join(lines)


def align_lines(align: dict) -> list[str]:
    """The CW-DPO part of the page: each strategy's frontier (KL, reward, GRA per snapshot)."""
    lines = ["", "## CW-DPO trained on each strategy's annotation", ""]
    if not align.get("by_regime"):
        return [*lines, align.get("note", "No CW-DPO run from the active bench yet."), ""]
    lines += [
        f"CW-DPO on the rest of the pool as each strategy's annotator labelled it at {align['share']:.0%} "
        f"human labels (lr {align['lr']}, {align['epochs']:g} epoch, test prompts; "
        "`python -m benchmarks.annotator.active_align`). Mean over seeds x prompts [95% CI].",
        "",
        "| regime | strategy | epochs | KL | gold reward | GRA % |",
        "|---|---|---|---|---|---|",
    ]
    for regime, per in align["by_regime"].items():
        for strategy, points in per["frontier"].items():
            for p in points:
                lines.append(
                    f"| {regime} | {strategy} | {p['epochs']:g} | {p['kl']['mean']:.2f} | "
                    f"{p['reward']['mean']:.3f} | {100 * p['gra']['mean']:.1f} "
                    f"[{100 * p['gra']['lo']:.1f}, {100 * p['gra']['hi']:.1f}] |"
                )
    return [*lines, "", "Matched-KL claims (active − random) are in the verdict list above.", ""]


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES))
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument(
        "--workers", type=int, default=0, help="run the pieces in this many single-thread processes"
    )
    parser.add_argument(
        "--summarize", action="store_true", help="only write the results from finished pieces"
    )
    parser.add_argument("--no-summary", action="store_true", help=argparse.SUPPRESS)  # a worker's piece
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    started = time.time()
    if not args.summarize:
        pieces = [
            p for p in itertools.product(args.regimes, args.strategies, args.seeds) if finished(*p) is None
        ]
        if args.workers:

            def one(piece):
                cmd = module_command("benchmarks.annotator.active") + [
                    "--regimes",
                    piece[0],
                    "--strategies",
                    piece[1],
                    "--seeds",
                    str(piece[2]),
                    "--no-summary",
                ]
                return subprocess.run(cmd, env={**repo_env(), "OMP_NUM_THREADS": "1"}).returncode  # fmt: skip

            with ThreadPoolExecutor(args.workers) as pool:
                if any(rc != 0 for rc in pool.map(one, pieces)):
                    sys.exit(2)
        else:
            for piece in pieces:
                print(f"active labelling: {'/'.join(map(str, piece))}", flush=True)
                run_piece(*piece)
        if args.no_summary:
            return
    metrics = summarize(started, args.output)
    print(
        json.dumps(
            {c["name"]: (c["verdict"], round(c["estimate"]["mean"], 4)) for c in metrics["claims"]}, indent=1
        )
    )


if __name__ == "__main__":
    main()
