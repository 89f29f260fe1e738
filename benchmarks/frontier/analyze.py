"""frontier.json from the scored snapshots: frontiers, matched-KL claims, tuned points, controls.

Reads the index ``results/points.jsonl`` (written by :mod:`benchmarks.frontier.run`) and, per
point, its per-prompt rows from the stage cache (or the stage archive). Every interval, p-value,
MDE and verdict comes from :mod:`cwpo.stats` (seeds x prompts variance components; per regime
one Holm family of the primary claims, fixed in advance, and one of the rest).

- ``frontier``: per regime and method, at its selected learning rate, each snapshot's KL, gold
  reward and GRA on the test prompts (means over seeds x prompts, with CIs);
- ``tuned``: the grid, the selection rule (validation prompts only), each method's chosen
  (lr, snapshot) and its test values; and every method at the one shared setting;
- ``matched_kl``: CW against each baseline (and each control against CW) at KL levels both reach:
  per level the paired difference, over the levels their mean (the claim), a dominance summary;
- ``equal_steps``: methods trained on fewer pairs against CW at the same optimizer steps;
- ``controls``, ``second_gold``, ``fluency``, ``label_stats``, ``stats``.

    python -m benchmarks.frontier.analyze [--cache runs/bench/cache] [--levels 5]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.frontier.render import plot_frontiers
from benchmarks.frontier.run import ARCHIVE, HERE, POINTS, REPO, load_plan
from benchmarks.frontier.train_rows import read_jsonl
from benchmarks.result_files import bench_parser, write_result
from cwpo.evaluate.frontier import outcome_value
from cwpo.experiments.frontier import common_levels, dominance, interpolate
from cwpo.stats import STATS_META, Claim, crossed_components, crossed_replicates, judge, paired_estimate

BASELINES = ("human", "ws", "human100", "human_rdpo", "human_dl", "top30", "top40")
CONTROLS = ("shuffled_c", "human_x_c", "human_x_oracle", "ws_ess")
HEADLINE = ("human", "ws", "cw", "human100")  # the methods whose mean picks the shared setting
FEWER_PAIRS = ("human_dl", "top30", "top40")
PAPER = {"cw_vs_human": 1.9}  # GRA points, the paper's sentiment margin of CW over Human
# the primary family, fixed before the runs: CW against these, this metric, at matched KL (the mean
# over the KL levels both reach); every other comparison is judged in a secondary family
PRIMARY = ("human", "ws", "human100")
PRIMARY_METRIC = "gra"
# what each control is expected to show against CW: -1 (below CW: the weights' values per pair
# matter, not their distribution or their sum) or +1 (above CW: better labels or weights help)
CONTROL_DIRECTION = {"shuffled_c": -1, "ws_ess": -1, "human_x_c": +1, "human_x_oracle": +1}
SELECTION_RULE = (
    "on the validation prompts only (never test): the lr whose best snapshot has the highest mean GRA "
    "over the seeds every lr ran (lr_seeds), then at that lr the snapshot with the highest mean GRA "
    "over every seed that ran it (tuning_seeds); ties to the smaller KL"
)


def per_prompt(rows: list[dict]) -> dict[str, np.ndarray]:
    """Per prompt (sorted ids) the means over samples of reward, GRA outcome, log-ratio, second."""
    by: dict = {}
    for r in rows:
        by.setdefault(r["prompt_id"], []).append(r)
    ids = sorted(by)
    cols = {
        "reward": lambda r: r["gold"],
        "gra": lambda r: outcome_value(r["gold"], r["gold_ref"]),
        "kl": lambda r: r["logp"] - r["logp_ref"],
        "second": lambda r: r["second"],
        "second_gra": lambda r: outcome_value(r["second"], r["second_ref"]),
    }
    return {k: np.array([np.mean([f(r) for r in by[i]]) for i in ids]) for k, f in cols.items()} | {
        "ids": np.array(ids)
    }


class Points:
    """The index, grouped: (regime, method, lr, split) -> seed -> sorted [(step, point, values)]."""

    def __init__(self, index: list[dict], cache: Path, results: Path = POINTS.parent):
        self.cache, self.results, self.groups, self._rows = cache, results, {}, {}
        refs: dict[str, set] = {}
        for p in index:
            refs.setdefault(p["regime"], set()).add(p.get("sft_sha"))
        mixed = {r: s for r, s in refs.items() if len(s) > 1}
        if mixed:  # KL and GRA against two different SFT models cannot share a frontier
            raise ValueError(f"points of {sorted(mixed)} were scored against different SFT models: {mixed}")
        runs: dict[tuple, set] = {}
        for p in index:
            runs.setdefault((p["regime"], p["method"], p["lr"], p["seed"]), set()).add(p.get("align_stage"))
        mixed_runs = [k for k, v in runs.items() if len(v) > 1]
        if mixed_runs:  # a frontier is the snapshots of one training run
            raise ValueError(f"points of {mixed_runs[0]} come from {len(runs[mixed_runs[0]])} training runs")
        for p in index:
            key = (p["regime"], p["method"], p["lr"], p["split"])
            self.groups.setdefault(key, {}).setdefault(p["seed"], []).append(p)
        for seeds in self.groups.values():
            for pts in seeds.values():
                pts.sort(key=lambda p: p["step"])

    def rows(self, point: dict) -> dict[str, np.ndarray]:
        if point["stage"] in self._rows:
            return self._rows[point["stage"]]
        for root in (self.cache, ARCHIVE):
            folder = root / "stages" / point["stage"]
            if (folder / "rows.jsonl").exists() or (folder / "rows.jsonl.gz").exists():
                self._rows[point["stage"]] = per_prompt(read_jsonl(folder / "rows.jsonl"))
                return self._rows[point["stage"]]
        raise FileNotFoundError(f"rows of {point['stage']} in neither {self.cache} nor {ARCHIVE}")

    def run(self, regime, method, lr, split, seeds=None) -> dict[int, tuple[list[dict], dict]]:
        """seed -> (points, {metric: [steps, prompts]})."""
        out = {}
        for seed, pts in sorted(self.groups.get((regime, method, lr, split), {}).items()):
            if seeds is not None and seed not in seeds:
                continue
            vals = [self.rows(p) for p in pts]
            for p, v in zip(pts, vals, strict=True):  # every snapshot of a run on the same prompts
                if not np.array_equal(v["ids"], vals[0]["ids"]):
                    raise ValueError(f"{p['stage']} scored other prompts than {pts[0]['stage']}")
            out[seed] = (pts, {k: np.stack([v[k] for v in vals]) for k in vals[0] if k != "ids"})
            out[seed][1]["ids"] = vals[0]["ids"]
        return out

    def lrs(self, regime, method) -> list[float]:
        return sorted({k[2] for k in self.groups if k[0] == regime and k[1] == method})


N_BOOT = {"n": 4000}  # bootstrap replicates (analyze(n_boot=...) sets it; tests use fewer)


def est(matrix) -> dict:
    return crossed_components(np.asarray(matrix)).to_dict()


def diff(a, b):
    return paired_estimate(a, b, method="components")


def tuning_seeds(points: Points, regime: str, methods: list[str]) -> set[int]:
    """The seeds every learning rate of the grid was run with, for every method given: grid
    points are compared on the same seeds (the second lr may have run on seed 0 only)."""
    sets = [
        set(points.groups.get((regime, m, lr, "val"), {})) for m in methods for lr in points.lrs(regime, m)
    ]
    return set.intersection(*sets) if sets else set()


def _val_candidates(points: Points, regime: str, method: str, lr: float, seeds) -> list[dict]:
    """Every snapshot (step 0, the SFT model itself, excluded) of one lr that all ``seeds`` (None:
    every seed that ran it) reached, with its mean validation GRA and KL over those seeds."""
    run = points.run(regime, method, lr, "val", seeds)
    out = []
    for step in sorted({p["step"] for pts, _ in run.values() for p in pts} - {0}):
        have = [(pts, v) for pts, v in run.values() if any(p["step"] == step for p in pts)]
        if not have or len(have) < len(run):
            continue
        at = [[p["step"] for p in pts].index(step) for pts, _ in have]
        out.append(
            {
                "lr": lr,
                "step": step,
                "epochs": have[0][0][at[0]]["epochs"],
                "val_gra": float(np.mean([v["gra"][i].mean() for (_, v), i in zip(have, at, strict=True)])),
                "val_kl": float(np.mean([v["kl"][i].mean() for (_, v), i in zip(have, at, strict=True)])),
                "tuning_seeds": sorted(run),
            }
        )
    return out


def _best(cands: list[dict]) -> dict | None:
    """The highest validation GRA; ties go to the smaller KL."""
    return max(cands, key=lambda c: (c["val_gra"], -c["val_kl"]), default=None)


def select(points: Points, regime: str, method: str) -> dict | None:
    """The rule, in two steps on validation prompts only: the lr whose best snapshot has the highest
    mean GRA over the seeds every lr of the grid ran (the second lr may have run on seed 0 only, and
    grid points are compared on the same seeds); then, at that lr, the snapshot with the highest
    mean GRA over every seed that ran it. Ties go to the smaller KL."""
    seeds = tuning_seeds(points, regime, [method])
    lrs = [
        c
        for lr in points.lrs(regime, method)
        if (c := _best(_val_candidates(points, regime, method, lr, seeds)))
    ]
    if not lrs:
        return None
    lr = _best(lrs)["lr"]
    # a seed still being scored may share no snapshot with the others yet: the lr's own pick stands
    best = _best(_val_candidates(points, regime, method, lr, None)) or next(c for c in lrs if c["lr"] == lr)
    return {**best, "lr_seeds": sorted(seeds)}


def untuned(points: Points, regime: str, method: str, cw: dict | None) -> dict | None:
    """A method run without validation prompts (a control): CW's selected lr if it has runs at it,
    else its only lr, and its last snapshot that every seed reached. Said so in the result."""
    lrs = points.lrs(regime, method)
    if not lrs:
        return None
    lr = cw["lr"] if cw and cw["lr"] in lrs else lrs[0]
    run = points.run(regime, method, lr, "test")
    if not run:
        return None
    step = min(max(p["step"] for p in pts) for pts, _ in run.values())
    epochs = next(p["epochs"] for pts, _ in run.values() for p in pts if p["step"] == step)
    which = "CW's lr" if cw and lr == cw["lr"] else f"lr {lr:g} (no run at CW's lr)"
    return {"lr": lr, "step": step, "epochs": epochs, "rule": f"no validation runs: {which}, last snapshot"}


def at_point(points: Points, regime, method, lr, step, split="test") -> dict | None:
    """[seeds, prompts] matrices of every metric at one snapshot, seeds in order."""
    run = points.run(regime, method, lr, split)
    mats, seeds = {}, []
    for seed, (pts, v) in run.items():
        steps = [p["step"] for p in pts]
        if step not in steps:
            continue
        seeds.append(seed)
        for k, m in v.items():
            mats.setdefault(k, []).append(m if k == "ids" else m[steps.index(step)])
    if not seeds:
        return None
    return {"seeds": seeds, **{k: np.stack(m) for k, m in mats.items()}}


def frontier_lr(points: Points, regime, method, chosen: dict, min_seeds: int) -> float:
    """The learning rate of a method's frontier: the chosen one with every planned seed, else the
    one with the most seeds on test prompts (ties: the chosen one, then the smaller)."""
    seeds = {
        lr: len(points.groups.get((regime, method, lr, "test"), {})) for lr in points.lrs(regime, method)
    }
    if seeds.get(chosen["lr"], 0) >= min_seeds:
        return chosen["lr"]
    return max(seeds, key=lambda lr: (seeds[lr], lr == chosen["lr"], -lr))


def step_at(points: Points, regime, method, lr, epochs) -> int | None:
    """The method's optimizer step at ``epochs`` of training at ``lr`` (steps per epoch differ)."""
    steps = {
        p["step"]
        for pts in points.groups.get((regime, method, lr, "test"), {}).values()
        for p in pts
        if p["epochs"] == epochs
    }
    return steps.pop() if len(steps) == 1 else None


def frontier(points: Points, regime, method, lr) -> list[dict]:
    run = points.run(regime, method, lr, "test")
    steps = sorted({p["step"] for pts, _ in run.values() for p in pts})
    out = []
    for step in steps:
        m = at_point(points, regime, method, lr, step)
        if m is None or len(m["seeds"]) < len(run):
            continue
        epochs = next(p["epochs"] for pts, _ in run.values() for p in pts if p["step"] == step)
        out.append({"step": step, "epochs": epochs, **{k: est(m[k]) for k in ("kl", "reward", "gra")}})
    return out


def _axis_statistic(ra: dict, rb: dict, seeds: list, metric: str, n_levels: int, x: str, level: int | None):
    """The mean difference over matched levels (or at the ``level``-th one) as a function of
    resampled (seeds, prompts): each checkpoint's KL is recomputed from the resampled prompts, then
    the common levels and the interpolation (in steps the axis is fixed)."""
    runs = {s: (ra[s], rb[s]) for s in seeds}

    def statistic(s_idx, p_idx) -> float:
        chosen = [seeds[i] for i in s_idx]
        curves = []
        for seed in chosen:
            for pts, v in runs[seed]:
                kl = (
                    v["kl"][:, p_idx].mean(axis=1) if x == "kl" else np.array([p["step"] for p in pts], float)
                )
                curves.append((kl, v[metric][:, p_idx].mean(axis=1)))
        levels = common_levels([kl for kl, _ in curves], n_levels + 1)[1:]
        if not levels:  # a replicate whose runs share no range: the nearest shared point
            levels = [min(kl.max() for kl, _ in curves)]
        if level is not None:  # the same place in the replicate's common range
            levels = [levels[min(level, len(levels) - 1)]]
        vals = [np.interp(levels, *_increasing(kl, y)) for kl, y in curves]
        return float(np.mean([np.mean(vals[2 * j] - vals[2 * j + 1]) for j in range(len(chosen))]))

    return statistic


def matched_estimate(
    ra: dict,
    rb: dict,
    seeds: list,
    metric: str,
    n_levels: int,
    x: str,
    gap: np.ndarray,
    level: int | None = None,
):
    """The estimate of a matched difference from its per-prompt values at the full data's levels
    (``gap``, [seeds, prompts]): the seeds x prompts variance components (:func:`cwpo.stats.
    crossed_components`). The estimated KL axis errs per run, so with several seeds its error is in
    the seeds' spread already; with one seed its variance is added: the crossed bootstrap's variance
    with the axis recomputed in every replicate minus its variance with the axis fixed, on the same
    resamples (at least 0; none in steps)."""
    extra = 0.0
    n_seeds, n_prompts = gap.shape
    if x == "kl" and n_seeds == 1:
        moving = crossed_replicates(
            _axis_statistic(ra, rb, seeds, metric, n_levels, x, level), n_seeds, n_prompts, N_BOOT["n"]
        )
        fixed = crossed_replicates(lambda s, p: gap[np.ix_(s, p)].mean(), n_seeds, n_prompts, N_BOOT["n"])
        extra = max(0.0, float(moving.var(ddof=1) - fixed.var(ddof=1)))
    return crossed_components(gap, extra_var=extra)


def _increasing(kl: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checkpoints sorted by KL, equal KLs averaged (np.interp needs increasing x)."""
    xs = np.unique(kl)
    return xs, np.array([y[kl == v].mean() for v in xs])


def matched(
    points: Points, regime, a, lr_a, b, lr_b, metric: str, n_levels: int, x: str = "kl"
) -> dict | None:
    """a − b at common levels of ``x`` (KL, or optimizer steps), over the seeds both have."""
    ra, rb = points.run(regime, a, lr_a, "test"), points.run(regime, b, lr_b, "test")
    seeds = sorted(set(ra) & set(rb))
    if not seeds:
        return None

    def xs(run, seed):
        pts, v = run[seed]
        return v["kl"].mean(axis=1) if x == "kl" else np.array([p["step"] for p in pts], dtype=float)

    for s in seeds:
        if not np.array_equal(ra[s][1]["ids"], rb[s][1]["ids"]):
            raise ValueError(f"{a} and {b} (seed {s}) were scored on different prompts")
    runs = [xs(ra, s) for s in seeds] + [xs(rb, s) for s in seeds]
    levels = common_levels(runs, n_levels + 1)[1:]  # the lowest common level is the SFT model (0)
    if not levels:
        return {"seeds": seeds, "levels": [], "note": f"no common {x} range"}
    ma = np.stack([interpolate(xs(ra, s), ra[s][1][metric], levels) for s in seeds], axis=1)
    mb = np.stack([interpolate(xs(rb, s), rb[s][1][metric], levels) for s in seeds], axis=1)
    gap = ma - mb  # [levels, seeds, prompts]
    per_level = [
        matched_estimate(ra, rb, seeds, metric, n_levels, x, gap[i], level=i).to_dict()
        for i in range(len(levels))
    ]  # each level's interval counts the KL axis's uncertainty too, as the mean's does
    overall = matched_estimate(ra, rb, seeds, metric, n_levels, x, gap.mean(axis=0))
    return {
        "x": x,
        "seeds": seeds,
        "levels": levels,
        "per_level": per_level,
        "mean_over_levels": overall.to_dict(),
        "dominance": dominance(per_level),
        "_estimate": overall,
    }


class Families:
    """The claims of one regime: the primary family (fixed in advance), the secondary one, and the
    comparisons without a verdict (fewer seeds than planned: an interval over prompts only)."""

    def __init__(self, min_seeds: int):
        self.min_seeds, self.primary, self.secondary, self.descriptive = min_seeds, [], [], {}

    def add(self, name: str, estimate, n_seeds: int, is_primary: bool, direction: int = 1, paper=None):
        if n_seeds < self.min_seeds:
            why = f"{n_seeds} of {self.min_seeds} seeds: no verdict"
            self.descriptive[name] = {**estimate.to_dict(), "why": why}
            return
        (self.primary if is_primary else self.secondary).append(Claim(name, estimate, direction, paper))


def planned_methods(plan: dict) -> dict[str, set[str]]:
    """regime -> the methods the plan's parts run in it."""
    out: dict[str, set[str]] = {}
    for workers in plan.get("parts", {}).values():
        for args in workers:
            regime = args[args.index("--regime") + 1]
            i = args.index("--methods") + 1
            while i < len(args) and not str(args[i]).startswith("--"):
                out.setdefault(regime, set()).add(args[i])
                i += 1
    return out


def secondary_size(methods: set[str]) -> int:
    """The secondary family of a regime running ``methods``, counted as :func:`analyze` forms it:
    CW against each baseline at matched KL (reward, and GRA where not primary), each control against
    CW (GRA, reward), and CW against every other non-control method at its tuned point."""
    if "cw" not in methods:
        return 0
    n = sum(1 if b in PRIMARY else 2 for b in BASELINES if b in methods)
    n += 2 * sum(c in methods for c in CONTROLS)
    return n + sum(m != "cw" and m not in CONTROLS for m in methods)


def analyze(
    points: Points, n_levels: int, n_boot: int = 4000, min_seeds: int = 3, planned: dict | None = None
) -> dict:
    """``min_seeds``: a comparison gets a verdict only with this many seeds (the plan's); with fewer
    its interval covers prompts only, not training randomness, and it stays descriptive.
    ``planned``: regime -> the methods the plan runs there (:func:`planned_methods`): the secondary
    family's Holm size counts their claims also before their runs exist."""
    N_BOOT["n"] = n_boot
    regimes = sorted({k[0] for k in points.groups})
    out: dict = {"regimes": {}, "stats": STATS_META}
    for regime in regimes:
        methods = sorted({k[1] for k in points.groups if k[0] == regime})
        tuned = {m: select(points, regime, m) for m in methods}
        for m in methods:  # scored on test prompts only (the controls): CW's lr, the last snapshot
            if tuned[m] is None:
                tuned[m] = untuned(points, regime, m, tuned.get("cw"))
        grid_lrs = sorted({lr for m in methods for lr in points.lrs(regime, m)})
        # the frontiers and matched-KL claims: at the selected lr if it ran on every planned seed,
        # else at the lr with the most seeds (a grid point run on one seed informs selection only)
        lr_of = {m: frontier_lr(points, regime, m, tuned[m], min_seeds) for m in methods if tuned[m]}
        shared = _shared(points, regime, [m for m in HEADLINE if m in methods])
        r: dict = {
            "frontier": {m: frontier(points, regime, m, lr_of[m]) for m in methods if tuned[m]},
            "frontier_lr": lr_of,
            "tuned": {
                "grid": {"lr": grid_lrs, "length": "every snapshot (epochs) of each run"},
                "rule": SELECTION_RULE,
                "chosen": tuned,
                "shared_setting": shared,
                "test_at_chosen": {},
                "test_at_shared": {},
            },
            "matched_kl": {},
            "equal_steps": {},
            "controls": {},
            "second_gold": {},
            "fluency": {},
        }
        for m in methods:
            t = tuned[m]
            if not t:
                continue
            at = at_point(points, regime, m, t["lr"], t["step"])
            if at is not None:
                r["tuned"]["test_at_chosen"][m] = {k: est(at[k]) for k in ("gra", "reward", "kl")}
                r["second_gold"][m] = {k: est(at[k]) for k in ("second", "second_gra")}
                r["fluency"][m] = _fluency(points, regime, m, t)
            step = step_at(points, regime, m, shared["lr"], shared["epochs"]) if shared else None
            if step is not None:
                s = at_point(points, regime, m, shared["lr"], step)
                if s is not None:
                    r["tuned"]["test_at_shared"][m] = {k: est(s[k]) for k in ("gra", "reward", "kl")}
        fam = Families(min_seeds)
        claim = fam.add

        if "cw" in methods and tuned.get("cw"):
            pairs = [("cw", b, +1) for b in BASELINES if b in methods and tuned.get(b)]
            pairs += [(c, "cw", CONTROL_DIRECTION[c]) for c in CONTROLS if c in methods and tuned.get(c)]
            for a, b, direction in pairs:
                for metric in ("gra", "reward"):
                    res = matched(points, regime, a, lr_of[a], b, lr_of[b], metric, n_levels)
                    name = f"{a}_vs_{b}_{metric}_at_matched_kl"
                    if res and "_estimate" in res:
                        paper = PAPER.get(f"{a}_vs_{b}") if metric == "gra" else None  # GRA points
                        is_primary = a == "cw" and b in PRIMARY and metric == PRIMARY_METRIC
                        claim(name, res.pop("_estimate"), len(res["seeds"]), is_primary, direction, paper)
                    if res:
                        r["matched_kl"][name] = res
            for b in FEWER_PAIRS:
                if b in methods and tuned.get(b):
                    res = matched(points, regime, "cw", lr_of["cw"], b, lr_of[b], "gra", n_levels, "step")
                    if res:
                        res.pop("_estimate", None)
                        r["equal_steps"][f"cw_vs_{b}_gra"] = res
            for b in [m for m in methods if m != "cw" and tuned.get(m) and m not in CONTROLS]:
                a_t, b_t = (at_point(points, regime, x, tuned[x]["lr"], tuned[x]["step"]) for x in ("cw", b))
                if a_t is None or b_t is None:
                    continue
                seeds = sorted(set(a_t["seeds"]) & set(b_t["seeds"]))
                ia = [a_t["seeds"].index(s) for s in seeds]
                ib = [b_t["seeds"].index(s) for s in seeds]
                if not np.array_equal(a_t["ids"][ia], b_t["ids"][ib]):
                    raise ValueError(f"cw and {b} were scored on different prompts")
                # each at its own selected snapshot, so at unequal KL (shown): secondary
                claim(f"cw_vs_{b}_gra_at_tuned", diff(a_t["gra"][ia], b_t["gra"][ib]), len(seeds), False,
                      paper=PAPER.get(f"cw_vs_{b}"))  # fmt: skip
        for c in CONTROLS:
            if c in methods and tuned.get(c):
                r["controls"][c] = {
                    "test_at_chosen": r["tuned"]["test_at_chosen"].get(c),
                    "at_matched_kl": {
                        k: v for k, v in r["matched_kl"].items() if k.startswith(f"{c}_vs_") and "_gra_" in k
                    },
                }
        r["verdicts"] = judge(fam.primary, family_size=len(PRIMARY))  # the headline, fixed in advance
        size = secondary_size(set(methods) | (planned or {}).get(regime, set()))
        r["secondary_verdicts"] = judge(fam.secondary, family_size=size)  # every other comparison
        r["descriptive"] = fam.descriptive
        out["regimes"][regime] = r
    stats_file = points.results / "label_stats.json"
    out["label_stats"] = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return out


def _shared_scores(points: Points, regime: str, methods: list[str], seeds, lrs) -> dict:
    """(lr, epochs) -> the mean over ``methods`` of each one's mean validation GRA over ``seeds``
    (None: all its seeds), for the settings every method reached."""
    scores: dict = {}
    for m in methods:
        for lr in set(points.lrs(regime, m)) & set(lrs):
            for pts, v in points.run(regime, m, lr, "val", seeds).values():
                for i, p in enumerate(pts):
                    if p["step"]:  # keyed by epochs: methods with more pairs take more steps
                        scores.setdefault((lr, p["epochs"]), {}).setdefault(m, []).append(v["gra"][i].mean())
    return {
        k: np.mean([np.mean(s) for s in by.values()]) for k, by in scores.items() if len(by) == len(methods)
    }


def _shared(points: Points, regime: str, methods: list[str]) -> dict | None:
    """The one setting for all, by the rule of :func:`select` applied to the mean over the methods:
    the lr on the seeds every lr ran, then the length at that lr on every seed."""
    seeds = tuning_seeds(points, regime, methods)
    grid = {lr for m in methods for lr in points.lrs(regime, m)}
    first = _shared_scores(points, regime, methods, seeds, grid)
    if not first:
        return None
    lr = max(first.items(), key=lambda kv: kv[1])[0][0]
    (lr, epochs), gra = max(_shared_scores(points, regime, methods, None, {lr}).items(), key=lambda kv: kv[1])
    return {
        "lr": lr,
        "epochs": epochs,
        "val_gra_mean_over_methods": float(gra),
        "methods": methods,
        "lr_seeds": sorted(seeds),
    }


def _fluency(points: Points, regime, method, t) -> dict:
    """Perplexity under the SFT model, distinct-1/2 and length at the chosen point (mean, range over seeds)."""
    pts = [
        p
        for seeds in points.groups.get((regime, method, t["lr"], "test"), {}).values()
        for p in seeds
        if p["step"] == t["step"]
    ]
    out = {}
    for k in ("sft_perplexity", "distinct_1", "distinct_2", "mean_tokens"):
        vals = [p[k] for p in pts if p.get(k) is not None]
        if vals:
            out[k] = {
                "mean": float(np.mean(vals)),
                "min": float(min(vals)),
                "max": float(max(vals)),
                "n_seeds": len(vals),
            }
    sft = [
        p
        for seeds in points.groups.get((regime, method, t["lr"], "test"), {}).values()
        for p in seeds
        if p["step"] == 0
    ]
    if sft:
        out["sft_model"] = {
            k: float(np.mean([p[k] for p in sft])) for k in ("sft_perplexity", "distinct_1", "distinct_2")
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--cache", type=Path, default=REPO / "runs" / "bench" / "cache")
    ap.add_argument("--levels", type=int, default=5, help="KL levels per matched comparison")
    ap.add_argument(
        "--min-seeds", type=int, default=3, help="seeds a comparison needs for a verdict (the plan's)"
    )
    ap.add_argument("--results", type=Path, default=POINTS.parent, help="where run wrote points.jsonl")
    ap.add_argument("--out", type=Path, help="default: RESULTS/frontier.json")
    ap.add_argument("--report", type=Path, default=HERE / "report", help="where the plots go")
    args = ap.parse_args(argv)
    started = time.time()
    index = args.results / POINTS.name
    if not index.exists():
        print(f"error: no scored points yet ({index}); run benchmarks.frontier.run first", file=sys.stderr)
        return 2
    try:
        points = Points(read_jsonl(index), args.cache, args.results)
        plan = planned_methods(load_plan(HERE / "plan.yaml"))
        result = analyze(points, args.levels, min_seeds=args.min_seeds, planned=plan)
    except (ValueError, FileNotFoundError) as e:  # mixed SFT models, other prompts, missing rows
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = args.out or args.results / "frontier.json"
    write_result(out, result, started)
    print(f"wrote {out}")
    for path in plot_frontiers(result, args.report):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
