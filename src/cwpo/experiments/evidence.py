"""Per-prompt evidence of a results folder: GRA with CIs, paired head-to-heads, MDEs and verdicts.

A ``cwpo run`` results row points at its evaluation (``eval_dir/rows.jsonl``: per test prompt the
gold score of the policy's response and of the SFT model's response). Methods of one seed share
the SFT model and its reference responses, and every seed of a v2 track uses the same test
prompts, so every comparison here is paired by (seed, prompt) and crossed (the prompts are the
same for every seed); :mod:`cwpo.stats` turns the paired differences into an estimate (crossed
bootstrap over seeds x prompts, t over seeds), an 80%-power MDE, and the claims of one results
group into Holm-adjusted verdicts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from cwpo.errors import CWPOError
from cwpo.stats import STATS_META, Claim, Estimate, crossed_bootstrap, judge, paired_estimate

# (claim key, better, worse, the paper's claim, the paper's number or None)
CLAIMS = [
    ("cw_gt_human", "cw", "human", "CW-DPO > Human-DPO on the same D_u (Table 1)", "60.3 vs 58.4"),
    ("cw_gt_ws", "cw", "ws", "CW-DPO > weak labels with weight 1 (Table 1)", None),
    ("cw_ipo_gt_human_ipo", "cw_ipo", "human_ipo", "CW-IPO > Human-IPO (Table 1)", "61.5 (CW-IPO)"),
    ("cw_rdpo_gt_human_rdpo", "cw_rdpo", "human_rdpo", "CW-rDPO > Human-rDPO (Table 1)", "62.7 (CW-rDPO)"),
    ("cw_gt_human100", "cw", "human100", "CW-DPO on D_u > Human-DPO on 100% (Table 3)", "+2.4 avg"),
    ("cw_gt_top30", "cw", "top30", "CW-DPO > top-30% confident (Table 4)", None),
    ("cw_gt_top40", "cw", "top40", "CW-DPO > top-40% confident (Table 4)", None),
    ("cw_gt_w_sigmoid", "cw", "w_sigmoid", "c beats the weight sigmoid(|d|) (Table 5)", None),
    ("cw_gt_w_tanh", "cw", "w_tanh", "c beats the weight tanh(|d|) (Table 5)", None),
    ("cw_gt_w_one_minus_exp", "cw", "w_one_minus_exp", "c beats the weight 1-exp(-|d|) (Table 5)", None),
    ("cw_gt_w_clipped", "cw", "w_clipped", "c beats the weight min(|d|,1) (Table 5)", None),
    ("cw_gt_w_normalized", "cw", "w_normalized", "c beats the weight |d|/max|d| (Table 5)", None),
    ("cw_gt_human_dl", "cw", "human_dl", "CW-DPO on D_u > DPO on D_l alone (Fig. 3)", None),
]


def eval_table(row: dict) -> list[dict]:
    path = Path(row["eval_dir"]) / "rows.jsonl"
    if not path.exists():
        raise CWPOError(f"{path} is missing: the evaluation of {row['method']} (seed {row['seed']}) is gone")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _outcome(a: float, b: float) -> float:
    return 1.0 if a > b else 0.5 if a == b else 0.0


def per_prompt(rows: list[dict], method: str) -> dict[int, dict[str, np.ndarray]]:
    """``{seed: {"outcome": GRA outcomes, "gold": policy gold, "gold_ref": reference gold}}``."""
    out = {}
    for r in rows:
        if r["method"] != method:
            continue
        table = eval_table(r)
        if any(t.get("gold_policy") is None for t in table):
            raise CWPOError(f"{r['eval_dir']}: no gold scores (the evaluation had no --gold)")
        gold = np.array([t["gold_policy"] for t in table], dtype=float)
        ref = np.array([t["gold_reference"] for t in table], dtype=float)
        out[r["seed"]] = {
            "outcome": np.array([_outcome(a, b) for a, b in zip(gold, ref, strict=True)]),
            "gold": gold,
            "gold_ref": ref,
            "prompts": [t["prompt"] for t in table],
        }
    return out


def _common(a: dict, b: dict) -> list[int]:
    seeds = sorted(set(a) & set(b))
    for s in seeds:
        if a[s]["prompts"] != b[s]["prompts"]:
            raise CWPOError(f"seed {s}: the two methods were evaluated on different prompts")
    return seeds


def _clipped(est: Estimate, low: float, high: float) -> tuple[float, float]:
    """The interval of ``est`` cut to the range the quantity can take (a rate's CI stays in [0, 1])."""
    return max(est.lo, low), min(est.hi, high)


def method_gra(rows: list[dict], method: str, n_boot: int = 2000) -> dict:
    """GRA of ``method`` against the SFT model over every seed and prompt, with its 95% CI."""
    data = per_prompt(rows, method)
    if not data:
        return {}
    seeds = sorted(data)
    mat = np.stack([data[s]["outcome"] for s in seeds])
    est = crossed_bootstrap(mat, n_boot=n_boot)
    low, high = _clipped(est, 0.0, 1.0)
    return {
        "gra": est.mean,
        "ci_low": low,
        "ci_high": high,
        "se": est.se,
        "interval": est.method,
        "per_seed": [float(x) for x in mat.mean(axis=1)],
        "n_seeds": len(seeds),
        "n_prompts": mat.shape[1],
    }


def head_to_head(rows: list[dict], a: str, b: str, n_boot: int = 2000) -> dict:
    """``a`` against ``b`` on the same seeds and prompts.

    ``gra_diff``: the difference of their GRA outcomes (paired through the shared reference
    responses), with its se, p-value, 80%-power MDE and CI (``estimate``: all of it, from
    :func:`cwpo.stats.paired_estimate`). ``win_rate``: share of prompts where the gold scores a's
    response above b's (ties half), with CI; ``gold_diff``: the mean gold difference a − b, with CI.
    The verdict is not made here: it needs the family of claims (:func:`evidence`).
    """
    da, db = per_prompt(rows, a), per_prompt(rows, b)
    seeds = _common(da, db)
    if not seeds:
        return {}
    oa = np.stack([da[s]["outcome"] for s in seeds])
    ob = np.stack([db[s]["outcome"] for s in seeds])
    ga = np.stack([da[s]["gold"] for s in seeds])
    gb = np.stack([db[s]["gold"] for s in seeds])
    gra_diff = paired_estimate(oa, ob, method="crossed", n_boot=n_boot)
    wins = crossed_bootstrap(np.vectorize(_outcome)(ga, gb), n_boot=n_boot, seed=1)
    gold = paired_estimate(ga, gb, method="crossed", n_boot=n_boot, seed=2)
    return {
        "gra_diff": gra_diff.mean,
        "gra_diff_se": gra_diff.se,
        "gra_diff_ci": list(_clipped(gra_diff, -1.0, 1.0)),
        "mde": gra_diff.mde,
        "p": gra_diff.p,
        "estimate": gra_diff.to_dict(),
        "win_rate": wins.mean,
        "win_rate_ci": list(_clipped(wins, 0.0, 1.0)),
        "gold_diff": gold.mean,
        "gold_diff_ci": [gold.lo, gold.hi],
        "n_seeds": len(seeds),
        "n_prompts": oa.shape[1],
    }


def evidence(rows: list[dict], n_boot: int = 2000) -> dict:
    """Every method's GRA with CI, and every claim of :data:`CLAIMS` the rows can test, judged
    together as one family (:func:`cwpo.stats.judge`: Holm-adjusted verdicts)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    by_method = defaultdict(dict)
    for m in methods:
        by_method[m] = method_gra(rows, m, n_boot=n_boot)
    claims = {}
    for key, better, worse, text, paper in CLAIMS:
        if better in methods and worse in methods:
            h2h = head_to_head(rows, better, worse, n_boot=n_boot)
            if h2h:
                claims[key] = {"claim": text, "paper": paper, "better": better, "worse": worse, **h2h}
    family = [Claim(key, Estimate(**c["estimate"]), 1, c["paper"]) for key, c in claims.items()]
    for judged in judge(family):
        claims[judged["name"]].update(
            verdict=judged["verdict"], p_holm=judged["p_holm"], family_size=judged["family_size"]
        )
    return {"methods": dict(by_method), "claims": claims, "stats": STATS_META}


def annotator_gold_accuracy(annotated: list[dict], pairs: list[dict], n_bins: int = 5) -> dict:
    """How often the weak annotator's choice is the gold's, on the gold-decided pairs of D_u.

    ``annotated``: the annotate stage's rows (prompt, chosen, rejected, confidence); ``pairs``: the
    pool with both responses' gold scores (prompt, response_a, response_b, gold_a, gold_b). Pairs
    are matched by (prompt, {responses}); gold ties are left out. Returns the accuracy with a
    bootstrap CI, the number of pairs, and the accuracy by confidence quantile (lowest first).
    """
    gold = {}
    for p in pairs:
        gold[(p["prompt"], p["response_a"], p["response_b"])] = (p["gold_a"], p["gold_b"])
        gold[(p["prompt"], p["response_b"], p["response_a"])] = (p["gold_b"], p["gold_a"])
    correct, conf = [], []
    for r in annotated:
        key = (r["prompt"], r["chosen"], r["rejected"])
        if key not in gold:
            raise CWPOError(f"annotated pair not in the pool (prompt {r['prompt'][:40]!r}): wrong pool file?")
        g_chosen, g_rejected = gold[key]
        if g_chosen == g_rejected:
            continue
        correct.append(float(g_chosen > g_rejected))
        conf.append(float(r["confidence"]))
    if not correct:
        return {}
    acc = np.array(correct)
    low, high = _clipped(crossed_bootstrap(acc), 0.0, 1.0)
    order = np.argsort(np.array(conf), kind="stable")
    bins = [acc[idx].mean() for idx in np.array_split(order, n_bins) if len(idx)]
    return {
        "acc": float(acc.mean()),
        "ci_low": low,
        "ci_high": high,
        "n": len(correct),
        "by_confidence": [float(b) for b in bins],
    }


def _stage_inputs(stage: Path) -> dict:
    return json.loads((stage / "manifest.json").read_text(encoding="utf-8"))["config"]["inputs"]


def pool_file(annotated: str | Path) -> Path | None:
    """The pair pool (with gold scores) behind an annotate stage: annotate -> labels -> pairs.

    None when the chain does not lead to a pool with gold scores (a track without a gold).
    """
    try:
        labels = Path(_stage_inputs(Path(annotated).parent)["data"])
    except (OSError, KeyError, ValueError):
        return None
    return labels_pool_file(labels)


def labels_pool_file(labels: str | Path) -> Path | None:
    """The pair pool (with gold scores) behind a labels stage folder; None where there is none."""
    try:
        pool = Path(_stage_inputs(Path(labels))["pairs"]) / "pairs.jsonl"
    except (OSError, KeyError, ValueError):
        return None
    return pool if pool.exists() else None


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def annotator_vs_gold(rows: list[dict]) -> dict[int, dict]:
    """Per seed, the weak annotator against the gold on D_u (rows of one run; empty without a gold)."""
    out = {}
    for r in rows:
        if r.get("annotated") and r["seed"] not in out:
            pool = pool_file(r["annotated"])
            if pool is None:
                return {}
            out[r["seed"]] = annotator_gold_accuracy(read_jsonl(r["annotated"]), read_jsonl(pool))
    return out


def claim_line(c: dict) -> str:
    """One markdown line: the claim, our verdict with its numbers, and the paper's number."""
    lo, hi = c["gra_diff_ci"]
    paper = f" Paper: {c['paper']}." if c.get("paper") else ""
    return (
        f"- **{c['claim']}: {c['verdict']}.** {c['better']} − {c['worse']} = {100 * c['gra_diff']:+.1f} GRA points "
        f"(95% CI {100 * lo:+.1f} to {100 * hi:+.1f}; Holm p {c['p_holm']:.3g}; 80%-power MDE {100 * c['mde']:.1f} "
        f"over {c['n_seeds']} seed(s) × "
        f"{c['n_prompts']} prompts); head-to-head gold win rate {100 * c['win_rate']:.1f}% "
        f"(CI {100 * c['win_rate_ci'][0]:.1f}-{100 * c['win_rate_ci'][1]:.1f}).{paper}"
    )
