"""The result keys of the v2 sentiment parts (the evidence bench), computed from a run's rows.

Every number comes from the evaluation rows of the run (per test prompt, per seed) through
:mod:`cwpo.experiments.evidence`; nothing is typed. Keys per part:
- v2_hp:        hp_gra_human_val (+ CI) on the validation prompts, the chosen settings, pool stats;
- v2_noisefree: gra_<method>_noisefree (+ CI), the head-to-heads and verdicts with suffix
                _noisefree, annotator_gold_acc (+ CI, by confidence quintile);
- v2_crowd:     gra_<method> (+ CI), h2h_<claim>_* , mde_cw_vs_human, mde_cw_vs_ws, verdict_<claim>,
                annotator_gold_acc_crowd, human_gold_agreement_crowd;
- both:         train_fit_<method>: the policy's fit of its own training labels at the end of training;
- v2_split:     split_ratio: per labelled share, GRA of cw and human_dl and their head-to-head.
"""

from __future__ import annotations

import json
from pathlib import Path

from cwpo.atomic_files import read_json
from cwpo.experiments.evidence import annotator_gold_accuracy, evidence, method_gra


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _inputs(stage: Path) -> dict:
    return read_json(stage / "manifest.json")["config"]["inputs"]


def pool_file(annotated: str) -> Path:
    """The pair pool (with gold scores) behind an annotate stage: annotate -> labels -> pairs."""
    labels = Path(_inputs(Path(annotated).parent)["data"])
    return Path(_inputs(labels)["pairs"]) / "pairs.jsonl"


def annotator_keys(rows: list[dict], suffix: str) -> dict:
    """The weak annotator against the gold on D_u, pooled over seeds (one annotator per seed)."""
    per_seed = {}
    for r in rows:
        if r.get("annotated") and r["seed"] not in per_seed:
            per_seed[r["seed"]] = annotator_gold_accuracy(
                _jsonl(Path(r["annotated"])), _jsonl(pool_file(r["annotated"]))
            )
    if not per_seed:
        return {}
    accs = [v["acc"] for v in per_seed.values()]
    quint = [sum(v["by_confidence"][i] for v in per_seed.values()) / len(per_seed) for i in range(5)]
    return {
        f"annotator_gold_acc{suffix}": sum(accs) / len(accs),
        f"annotator_gold_acc{suffix}_ci_low": min(v["ci_low"] for v in per_seed.values()),
        f"annotator_gold_acc{suffix}_ci_high": max(v["ci_high"] for v in per_seed.values()),
        f"annotator_gold_acc{suffix}_per_seed": accs,
        f"annotator_gold_acc{suffix}_by_confidence_quintile": quint,
        f"annotator_gold_pairs{suffix}": sum(v["n"] for v in per_seed.values()) / len(per_seed),
    }


def pool_keys(rows: list[dict], suffix: str = "") -> dict:
    stats = rows[0]["data_stats"]
    out = {
        f"gold_tie_share{suffix}": stats.get("gold_tie_share"),
        f"labeled_pairs{suffix}": stats.get("labeled"),
        f"unlabeled_pairs{suffix}": stats.get("unlabeled"),
    }
    agreement = [r["data_stats"].get("human_gold_agreement") for r in rows]
    agreement = [a for a in agreement if a is not None]
    if agreement:
        out[f"human_gold_agreement{suffix}"] = sum(agreement) / len(agreement)
    return out


# per claim: the difference, its CI, 80%-power MDE, p-values and the whole estimate (cwpo.stats)
H2H_KEYS = ("gra_diff", "gra_diff_ci", "mde", "p", "p_holm", "family_size", "estimate", "win_rate", "win_rate_ci",
            "gold_diff", "gold_diff_ci")  # fmt: skip


def method_keys(ev: dict, suffix: str) -> dict:
    out = {}
    for m, g in ev["methods"].items():
        if not g:
            continue
        out[f"gra_{m}{suffix}"] = g["gra"]
        out[f"gra_{m}{suffix}_ci_low"] = g["ci_low"]
        out[f"gra_{m}{suffix}_ci_high"] = g["ci_high"]
        out[f"gra_{m}{suffix}_per_seed"] = g["per_seed"]
        out[f"n_test_prompts{suffix}"] = g["n_prompts"]
        out[f"n_seeds_{m}{suffix}"] = g["n_seeds"]
    for key, c in ev["claims"].items():
        out[f"verdict_{key}{suffix}"] = c["verdict"]
        for k in H2H_KEYS:
            out[f"h2h_{key}{suffix}_{k}"] = c[k]
    for other in ("human", "ws"):
        claim = ev["claims"].get(f"cw_gt_{other}")
        if claim:
            out[f"mde_cw_vs_{other}{suffix}"] = claim["mde"]
    return out


def fit_keys(rows: list[dict], suffix: str) -> dict:
    """How well each method's policy fits its own training labels by the end of its one epoch:
    DPO's implicit-reward accuracy and margin over the last tenth of the steps (``metrics.json`` of
    each align stage), averaged over seeds. Labels a policy fits more readily move it further from
    the SFT model in the same number of steps, whatever their agreement with the gold."""
    per: dict[str, list[dict]] = {}
    for r in rows:
        path = Path(r["policy_dir"]) / "metrics.json" if r.get("policy_dir") else None
        if path is None or not path.exists():
            continue
        steps = [s for s in read_json(path).get("steps", []) if "rewards/accuracies" in s]
        if steps:
            tail = steps[-max(1, len(steps) // 10) :]
            per.setdefault(r["method"], []).append(
                {k: sum(s[f"rewards/{k}"] for s in tail) / len(tail) for k in ("accuracies", "margins")}
            )
    return {
        f"train_fit_{m}{suffix}": {
            "reward_accuracy_end": sum(v["accuracies"] for v in vals) / len(vals),
            "reward_margin_end": sum(v["margins"] for v in vals) / len(vals),
            "n_seeds": len(vals),
        }
        for m, vals in per.items()
    }


def table5_verdict(ev: dict) -> str | None:
    """c is the best weight (a conjunction of the Table 5 claims, each judged by the one rule in
    :func:`cwpo.experiments.evidence.evidence`): holds if every one holds, fails if one fails."""
    verdicts = [c["verdict"] for k, c in ev["claims"].items() if k.startswith("cw_gt_w_")]
    if not verdicts:
        return None
    if "fails" in verdicts:
        return "fails"
    return "holds" if all(v == "holds" for v in verdicts) else "unresolved"


def v2_metrics(part: str, res: dict, recipe: dict) -> dict:
    rows = res["rows"]
    if part == "v2_hp":
        g = method_gra(rows, "human")
        return {
            "hp_gra_human_val": g["gra"],
            "hp_gra_human_val_ci_low": g["ci_low"],
            "hp_gra_human_val_ci_high": g["ci_high"],
            "hp_n_val_prompts": g["n_prompts"],
            "hp_align_steps": rows[0].get("align_steps"),
            "hp_settings": {"align": recipe["align"], "sentiment": recipe["sentiment"]},
            **pool_keys(rows),
            "gold_gap_quartiles": rows[0]["data_stats"].get("gold_gap_quartiles"),
            **annotator_keys(rows, "_hp"),
        }
    if part == "v2_noisefree":
        return {
            **method_keys(evidence(rows), "_noisefree"),
            **annotator_keys(rows, ""),
            **pool_keys(rows, "_noisefree"),
            **fit_keys(rows, "_noisefree"),
        }
    if part == "v2_crowd":
        ev = evidence(rows)
        out = {**method_keys(ev, ""), **annotator_keys(rows, "_crowd"), **pool_keys(rows, "_crowd")}
        out.update(fit_keys(rows, ""))
        out["verdict_c_best_weight"] = table5_verdict(ev)
        return out
    if part == "v2_split":
        by_frac: dict = {}
        for frac in sorted({r["sentiment.labeled_frac"] for r in rows}):
            sub = [r for r in rows if r["sentiment.labeled_frac"] == frac]
            ev = evidence(sub)
            by_frac[str(frac)] = {
                **{f"gra_{m}": g.get("gra") for m, g in ev["methods"].items()},
                **{f"gra_{m}_ci": [g.get("ci_low"), g.get("ci_high")] for m, g in ev["methods"].items()},
                **{f"verdict_{k}": c["verdict"] for k, c in ev["claims"].items()},
                **{f"h2h_{k}_gra_diff": c["gra_diff"] for k, c in ev["claims"].items()},
                **{f"h2h_{k}_gra_diff_ci": c["gra_diff_ci"] for k, c in ev["claims"].items()},
                **{
                    f"h2h_{k}_{f}": c[f]
                    for k, c in ev["claims"].items()
                    for f in ("mde", "p", "p_holm", "estimate")
                },
                **annotator_keys(sub, ""),
            }
        return {"split_ratio": by_frac}
    raise ValueError(f"not a v2 part: {part}")
