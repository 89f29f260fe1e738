"""Active labelling on the sentiment track: which pairs should the humans label, at equal budgets?

Pool: the sentiment evidence bench's pair pool (2,065 IMDb pairs, both responses scored by VADER;
``archive/bench/stages/pairs-*/pairs.jsonl.gz``), split once (seed 0) into the selectable pool
and 500 fixed evaluation pairs that no strategy can select. Simulated humans label what a strategy
selects, in two regimes: ``noisefree`` (the gold's order; a coin flip on the 6.5% of pairs whose
gold scores tie, as the simulator does everywhere) and ``crowd_bt`` (Bradley-Terry noise,
P(a) = sigma((g_a - g_b) / T), with T calibrated on the pool to 67.5% agreement with the gold,
like HH-RLHF crowd workers; labels drawn once per seed, the same for every strategy). For each
regime, strategy (``random``, ``uncertainty``, ``uncertain_diverse``) and seed: a random start of
5% of the selectable pool (shared by the strategies of a seed), then rounds of selection every 5%
up to 30% (:func:`cwpo.experiments.active.run_rounds`), the MiniLM-L6 Bradley-Terry annotator
retrained from scratch each round for at least ``MIN_STEPS`` optimizer steps (few labels, more
epochs: the same rule for every strategy).

Measured at each budget: the annotator's gold accuracy on the 500 fixed pairs (the same pairs for
every strategy; per pair in ``results/active_eval_rows.jsonl.gz``) and on the rest of the pool.
Claims (``cwpo.stats``, Student t over the seed-paired differences), fixed here before the runs:

- primary, one Holm family of 4 claims over both regimes: in each regime, uncertainty − random and
  uncertainty+diversity − random in the mean accuracy over the 10%, 20% and 30% budgets (the
  issue's budgets);
- secondary, another family (12 claims): the same at each of those budgets;
- CW-DPO on each strategy's annotation (:mod:`benchmarks.annotator.active_align`): its own family
  (4 planned claims).

A claim gets a verdict only with every planned seed (``SEEDS``); before, it is descriptive. Holm
counts every planned claim of a family, also when only some have their seeds.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.annotator.active --workers 2 [--max-minutes 110]
    .venv/bin/python -m benchmarks.annotator.active --regimes noisefree --strategies random --seeds 0  # one piece
    .venv/bin/python -m benchmarks.annotator.active --summarize   # results from the finished pieces only

Pieces resume from ``runs/bench/active-v2/`` (untracked: each round ends with a ``round.json``, and
a piece refuses to resume under another design); the committed result is
``annotator/results/active.json``.
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

from benchmarks.annotator.active_align import ALIGN_FAMILY, align_claims
from benchmarks.result_files import REPO, bench_parser, module_command, repo_env, write_result
from cwpo.atomic_files import atomic_path, read_json, write_json, write_jsonl, write_text
from cwpo.errors import ConfigError
from cwpo.experiments.active import ActiveConfig, run_rounds
from cwpo.experiments.simulate import bt_preference_prob, gold_agreement, simulate_labels
from cwpo.stats import STATS_META, Claim, judge, t_estimate

RESULT = REPO / "benchmarks" / "annotator" / "results" / "active.json"
REPORT = REPO / "benchmarks" / "annotator" / "report" / "active.md"
RUNS = REPO / "runs" / "bench" / "active-v2"  # v1 (2.5% start, 6-step annotators) was retired
REGIMES = ("noisefree", "crowd_bt")
STRATEGIES = ("random", "uncertainty", "uncertain_diverse")
SEEDS = tuple(range(10))  # MDE of a primary claim about 2.9 points (sd 2.3 over seeds, Holm over 4)
SHARES = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)  # the random start, then a round every 5%
REPORTED = (0.10, 0.20, 0.30)  # the budgets of the claims
# the planned families: Holm counts every planned claim, also while some still lack seeds
PRIMARY_FAMILY = len(REGIMES) * (len(STRATEGIES) - 1)
SECONDARY_FAMILY = PRIMARY_FAMILY * len(REPORTED)
MIN_STEPS = 30  # optimizer steps every annotator trains for at least (batch 32)
ROWS = REPO / "benchmarks" / "annotator" / "results" / "active_eval_rows.jsonl.gz"
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


def keep_or_write(path: Path, rows: list[dict]) -> None:
    """Write a piece's labelled rows once; a resumed piece checks they are the ones it would draw."""
    if not path.exists():
        write_jsonl(path, rows)
    elif [json.loads(x) for x in path.read_text().splitlines()] != rows:
        raise ConfigError(f"{path} holds other labels than this design draws: choose another runs folder")


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
    for path, want in ((pool_path, pool_rows), (eval_path, labelled(held, regime, seed, temperature))):
        keep_or_write(path, want)
    agreement = gold_agreement(
        [r["human_label"] for r in pool_rows],
        [r["gold_a"] for r in pool_rows],
        [r["gold_b"] for r in pool_rows],
    )
    write_json(work / "labels.json", {"human_gold_agreement": agreement, "temperature": temperature})
    budgets = [round(s * len(pool)) for s in SHARES]
    cfg = ActiveConfig(pool=str(pool_path), workdir=str(work / "rounds"), budgets=budgets, strategy=strategy,
                       eval_pairs=str(eval_path), seed=seed, annotator={"backbone": "minilm-l6"},
                       min_steps=MIN_STEPS)  # fmt: skip
    started = time.time()
    out = run_rounds(
        cfg,
        progress=lambda m: print(f"  {regime}/{strategy}/seed{seed}: round {m['round']} done", flush=True),
    )
    return {**out, "seconds_this_run": time.time() - started, "human_gold_agreement": agreement}


def finished(regime: str, strategy: str, seed: int) -> dict | None:
    folder = piece_dir(regime, strategy, seed)
    files = [folder / "rounds" / f"round-{r:02d}" / "round.json" for r in range(len(SHARES) + 1)]
    if not all(f.exists() for f in files):
        return None
    labels = read_json(folder / "labels.json") if (folder / "labels.json").exists() else {}
    return {"rounds": [read_json(f)["metrics"] for f in files], **labels}


def _claim(fam: dict, name: str, diffs: dict[int, float], is_primary: bool) -> None:
    """A claim of the planned family, judged only with every planned seed (else descriptive)."""
    if len(diffs) < 2:
        return
    est = t_estimate([diffs[s] for s in sorted(diffs)])
    if len(diffs) < len(SEEDS):
        fam["descriptive"][name] = {**est.to_dict(), "why": f"{len(diffs)} of {len(SEEDS)} seeds: no verdict"}
    else:
        fam["primary" if is_primary else "secondary"].append(Claim(name, est))


def summarize(started: float, output: Path, align_cache: Path | None = None) -> dict:
    rows = read_pool()
    pool, _held = split(rows)
    budgets = [round(s * len(pool)) for s in SHARES]
    acc: dict = {}  # (regime, strategy, seed) -> {labels: {"eval": acc, "rest": acc, "gold_correct": [...]}}
    agreement: dict = {}
    for regime, strategy, seed in itertools.product(REGIMES, STRATEGIES, SEEDS):
        done = finished(regime, strategy, seed)
        if done is None:
            continue
        agreement[f"{regime}/{seed}"] = done.get("human_gold_agreement")
        acc[(regime, strategy, seed)] = {
            m["trained_on"]: {
                "eval": m["eval"]["gold_accuracy"],
                "rest": m["rest"]["gold_accuracy"],
                "gold_correct": m["eval"].get("gold_correct"),
            }
            for m in done["rounds"]
            if "trained_on" in m
        }
    metrics: dict = {"budgets": {f"{s:.3f}": b for s, b in zip(SHARES, budgets, strict=True)},
                     "n_pool": len(pool), "n_eval": N_EVAL, "crowd_temperature": crowd_temperature(rows),
                     "planned_seeds": list(SEEDS), "min_steps": MIN_STEPS, "human_gold_agreement": agreement,
                     "by_regime": {}, "stats": STATS_META}  # fmt: skip
    fam: dict = {"primary": [], "secondary": [], "descriptive": {}}
    reported = {share: budgets[SHARES.index(share)] for share in REPORTED}
    for regime in REGIMES:
        per = metrics["by_regime"].setdefault(regime, {})
        for share, budget in zip(SHARES, budgets, strict=True):
            level = per.setdefault(f"{share:.0%}", {"labels": budget})
            for strategy in STRATEGIES:
                seeds = [s for s in SEEDS if (regime, strategy, s) in acc]
                level[strategy] = {
                    where: [acc[(regime, strategy, s)][budget][where] for s in seeds]
                    for where in ("eval", "rest")
                } | {"seeds": seeds}
        for strategy in STRATEGIES[1:]:
            seeds = [s for s in SEEDS if (regime, strategy, s) in acc and (regime, "random", s) in acc]
            d = {s: {b: acc[(regime, strategy, s)][b]["eval"] - acc[(regime, "random", s)][b]["eval"]
                     for b in reported.values()} for s in seeds}  # fmt: skip
            name = (
                f"{regime}: {strategy} > random, mean over {', '.join(f'{x:.0%}' for x in REPORTED)} labels"
            )
            _claim(fam, name, {s: sum(v.values()) / len(v) for s, v in d.items()}, True)
            for share, b in reported.items():
                _claim(
                    fam, f"{regime} {share:.0%}: {strategy} > random", {s: v[b] for s, v in d.items()}, False
                )
    metrics["claims"] = judge(fam["primary"], family_size=PRIMARY_FAMILY)
    metrics["secondary_claims"] = judge(fam["secondary"], family_size=SECONDARY_FAMILY)
    metrics["descriptive"] = fam["descriptive"]
    metrics["align"], align = align_claims(cache=align_cache)  # CW-DPO from each strategy's labels
    metrics["align_claims"] = judge(align, family_size=ALIGN_FAMILY)  # its own family
    metrics["pieces_finished"] = [f"{r}/{st}/seed{s}" for (r, st, s) in acc]
    write_result(output, metrics, started)
    eval_rows = [
        {"regime": r, "strategy": st, "seed": s, "labels": b, "gold_correct": v["gold_correct"]}
        for (r, st, s), by in sorted(acc.items())
        for b, v in sorted(by.items())
    ]
    data = gzip.compress("".join(json.dumps(row) + "\n" for row in eval_rows).encode(), mtime=0)
    with atomic_path(ROWS if output == RESULT else output.with_suffix(".rows.jsonl.gz")) as tmp:
        tmp.write_bytes(data)  # byte-stable: no timestamp in the gzip header
    write_text(
        REPORT if output == RESULT else output.with_suffix(".md"), render(metrics)
    )  # a trial: beside it
    return metrics


def _claim_lines(claims: list[dict], empty: str) -> list[str]:
    if not claims:
        return [empty]
    return [
        f"- {c['name']}: **{c['verdict']}**, {100 * c['estimate']['mean']:+.1f} points "
        f"[{100 * c['estimate']['lo']:+.1f}, {100 * c['estimate']['hi']:+.1f}], Holm p {c['p_holm']:.2g}, "
        f"MDE {100 * c['estimate']['mde']:.1f} ({c['estimate']['n_seeds']} seeds)"
        for c in claims
    ]


def render(metrics: dict) -> str:
    """The report page, from the metrics alone: accuracy per strategy and budget, then the verdicts."""
    planned = len(metrics.get("planned_seeds", SEEDS))
    lines = [
        "# Active labelling on the sentiment track",
        "",
        "Generated by `python -m benchmarks.annotator.active --summarize` from `active.json`; nothing here is "
        "typed. MiniLM-L6 BT's gold accuracy on the 500 fixed evaluation pairs, mean over the finished seeds "
        "(their number in brackets; the design plans "
        f"{planned}), per labelled share of the selectable pool. Random start {SHARES[0]:.0%}, a round every "
        f"5%, every annotator trained for at least {metrics.get('min_steps', MIN_STEPS)} steps. Verdicts: "
        "active minus random, seed-paired, Student t (`cwpo.stats`), only with every planned seed.",
        "",
        "| regime | labels | " + " | ".join(STRATEGIES) + " |",
        "|---|---|" + "---|" * len(STRATEGIES),
    ]
    for regime, levels in metrics["by_regime"].items():
        for share, level in levels.items():
            cells = []
            for strategy in STRATEGIES:
                accs = level[strategy]["eval"]
                cells.append(f"{100 * sum(accs) / len(accs):.1f} ({len(accs)})" if accs else "not run")
            lines.append(f"| {regime} | {share} ({level['labels']}) | " + " | ".join(cells) + " |")
    lines += ["", "**Primary claims** (one Holm family, fixed before the runs)", ""]
    lines += _claim_lines(metrics["claims"], f"None has all {planned} seeds yet.")
    lines += ["", "**Secondary claims** (each budget; their own Holm family)", ""]
    lines += _claim_lines(metrics.get("secondary_claims", []), f"None has all {planned} seeds yet.")
    descriptive = metrics.get("descriptive") or {}
    if descriptive:
        lines += ["", "Without a verdict yet (fewer seeds than planned):", ""]
        lines += [
            f"- {name}: {100 * e['mean']:+.1f} points [{100 * e['lo']:+.1f}, {100 * e['hi']:+.1f}], "
            f"{e['n_seeds']} seeds"
            for name, e in descriptive.items()
        ]
    lines += align_lines(metrics.get("align", {}))
    lines += _claim_lines(metrics.get("align_claims", []), "")
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
    parser.add_argument("--max-minutes", type=float, default=110.0, help="start no piece after this long")
    parser.add_argument(
        "--summarize", action="store_true", help="only write the results from finished pieces"
    )
    parser.add_argument("--no-summary", action="store_true", help=argparse.SUPPRESS)  # a worker's piece
    parser.add_argument("--output", type=Path, default=RESULT)
    parser.add_argument("--align-cache", type=Path, help="the stage cache active_align ran with")
    args = parser.parse_args()
    started = time.time()
    if not args.summarize:
        # seed by seed: every strategy of a seed finishes together, so the paired claims grow
        pieces = [
            (regime, strategy, seed)
            for seed in args.seeds
            for regime in args.regimes
            for strategy in args.strategies
            if finished(regime, strategy, seed) is None
        ]

        def late() -> bool:
            return (time.time() - started) / 60 > args.max_minutes

        if args.workers:

            def one(piece):
                if late():
                    return 0
                cmd = module_command("benchmarks.annotator.active") + [
                    "--regimes", piece[0], "--strategies", piece[1], "--seeds", str(piece[2]), "--no-summary",
                ]  # fmt: skip
                return subprocess.run(cmd, env={**repo_env(), "OMP_NUM_THREADS": "1"}).returncode

            with ThreadPoolExecutor(args.workers) as pool:
                if any(rc != 0 for rc in pool.map(one, pieces)):
                    sys.exit(2)
        else:
            for piece in pieces:
                if late():
                    break
                print(f"active labelling: {'/'.join(map(str, piece))}", flush=True)
                try:
                    run_piece(*piece)
                except ConfigError as e:  # another design's rounds in the runs folder: one line
                    print(f"error: {e}", file=sys.stderr)
                    sys.exit(2)
        if late():
            print(f"stopped after {args.max_minutes} minutes; run the same command again to continue")
        if args.no_summary:
            return
    metrics = summarize(started, args.output, args.align_cache)
    print(
        json.dumps(
            {c["name"]: (c["verdict"], round(c["estimate"]["mean"], 4)) for c in metrics["claims"]}, indent=1
        )
    )


if __name__ == "__main__":
    main()
