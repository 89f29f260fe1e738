"""Summary keys, verdicts, markdown and plots of the HH-RLHF annotator track, from its runs alone.

Used by ``hh_annotator.py`` (which runs the track); nothing here trains or reads the data.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from cwpo.stats import Claim, Estimate, crossed_bootstrap, judge, paired_estimate, t_estimate

PAPER = {"harmless_acc": 0.691, "helpful_acc": 0.642, "hh_acc": 0.638}  # Table 6, OPT-125M BT
PAPER_TIME = {"bt": 2450, "sft+dpo": 4978}  # Table 6, seconds
SUBSETS = ("harmless", "helpful", "hh", "hh-all")  # hh-all: not in the paper (no paper number)
SHARES = (0.1, 0.2, 0.5)
# SmolLM2 annotators: the three objectives, each with hh_annotator.SMOLLM (the same settings)
SMOLLM_VARIANTS = {"bt": {"objective": "bt"}, "dpo": {"objective": "dpo", "sft_epochs": 0},
                   "sft+dpo": {"objective": "dpo", "sft_epochs": 1}}  # fmt: skip


def mean_std(vals: list[float]) -> tuple[float | None, float | None]:
    if not vals:
        return None, None
    m = sum(vals) / len(vals)
    s = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else None
    return m, s


def fig2_keys(runs: dict) -> dict:
    """Paper Fig. 2's premise on HH: the most confident fifth of labels is more accurate than the least.

    Top minus bottom quintile per seed; its estimate is Student t over the seeds
    (:func:`cwpo.stats.t_estimate`); the verdict is made with Table 6's claim (:func:`summarize`).
    """
    members = [r for k, r in runs.items() if k.startswith("minilm/hh/share0.3/")]
    if not members:
        return {}
    diffs = [
        r["accuracy_by_confidence_quintile"][-1]["accuracy"]
        - r["accuracy_by_confidence_quintile"][0]["accuracy"]
        for r in members
    ]
    if len(diffs) < 2:
        return {}
    est = t_estimate(diffs)
    return {
        "hh_acc_top_minus_bottom_quintile": est.mean,
        "hh_acc_top_minus_bottom_quintile_ci95": [est.lo, est.hi],
        "hh_acc_top_minus_bottom_quintile_estimate": est.to_dict(),
    }


def variant_keys(runs: dict) -> dict:
    """Variants (``minilm+NAME`` runs: one change from the defaults) against the defaults on the same splits and seeds:
    accuracy, and the difference paired per held-out pair (SE over pairs, pooled over seeds)."""
    out: dict = {}
    for key, r in runs.items():
        if not key.startswith("minilm+"):  # the other parts' keys have other shapes (smollm/VARIANT/seed0)
            continue
        tag, subset, share, seed = key.split("/")
        if share != "share0.3":
            continue
        ref = runs.get(f"minilm/{subset}/{share}/{seed}")
        entry = out.setdefault(f"{tag[len('minilm+'):]}/{subset}", {"seeds": [], "accuracy": [], "diff": [],
                                                                    "train_time_ratio": []})  # fmt: skip
        entry["seeds"].append(int(seed[len("seed") :]))
        entry["accuracy"].append(r["accuracy"])
        if ref and "agree" in ref and "agree" in r:
            entry["diff"].append(np.asarray(r["agree"], float) - np.asarray(ref["agree"], float))
            entry["train_time_ratio"].append(ref["train_time_s"] / r["train_time_s"])
    summary = {}
    for name, e in out.items():
        n = len(e["diff"])
        # t over seeds; one seed: the crossed bootstrap over its held-out pairs alone
        est = (
            (t_estimate([d.mean() for d in e["diff"]]) if n >= 2 else crossed_bootstrap(e["diff"][0]))
            if n
            else None
        )
        summary[name] = {
            "seeds": e["seeds"],
            "accuracy": mean_std(e["accuracy"])[0],
            "minus_defaults": None if est is None else est.mean,
            "minus_defaults_ci95": None if est is None else [est.lo, est.hi],
            "minus_defaults_interval": None if est is None else est.method,
            "defaults_train_time_over_variant": mean_std(e["train_time_ratio"])[0],
            "paired_seeds": n,
        }
    return {"variants_vs_defaults": summary} if summary else {}


def summarize(runs: dict) -> dict:
    """Every headline key from the runs (means over seeds, std over seeds, verdicts against the bars)."""
    s: dict = {"paper_reference_opt125m_bt": PAPER}
    for subset in SUBSETS:
        members = [r for k, r in runs.items() if k.startswith(f"minilm/{subset}/share0.3/")]
        name = f"{subset}_acc"
        for field_, suffix in (("accuracy", ""), ("accuracy_top30", "_top30")):
            m, sd = mean_std([r[field_] for r in members])
            s[name + suffix], s[f"{name}{suffix}_std"] = m, sd
        for when in ("before", "after"):
            s[f"{name}_ece_{when}_calibration"] = mean_std(
                [r[f"{when}_calibration"]["ece"] for r in members]
            )[0]
        s[f"{name}_n_seeds"] = len(members)
        s[f"{name}_n_eval"] = members[0]["n_eval"] if members else None
        s[f"{name}_train_time_s"] = mean_std([r["train_time_s"] for r in members])[0]
        if members:
            s[f"{name}_by_confidence_quintile"] = [
                mean_std([r["accuracy_by_confidence_quintile"][q]["accuracy"] for r in members])[0]
                for q in range(5)
            ]
    s.update(fig2_keys(runs))
    s.update(variant_keys(runs))
    curve = {}
    for share in (*SHARES[:2], 0.3, *SHARES[2:]):
        members = [r for k, r in runs.items() if k.startswith(f"minilm/hh/share{share}/")]
        if members:
            m, sd = mean_std([r["accuracy"] for r in members])
            curve[str(share)] = {"accuracy": m, "std": sd, "n_seeds": len(members),
                                 "n_train": members[0]["n_train"]}  # fmt: skip
    s["hh_acc_by_labeled_share"] = curve
    for a, b in (("harmless", "helpful"), ("helpful", "harmless")):
        members = [r for k, r in runs.items() if k.startswith(f"cross/{a}-to-{b}/")]
        if members:
            s[f"cross_{a}_to_{b}_acc"] = mean_std([r["accuracy"] for r in members])[0]
            s[f"cross_{a}_to_{b}_n_seeds"] = len(members)
    smol = {v: runs.get(f"smollm/{v}/seed0") for v in SMOLLM_VARIANTS}
    for v, r in smol.items():
        tag = v.replace("+", "")
        s[f"smollm_{tag}_acc"] = r["accuracy"] if r else None
        s[f"smollm_{tag}_acc_top30"] = r["accuracy_top30"] if r else None
        s[f"smollm_{tag}_train_time_s"] = r["train_time_s"] if r else None
    same_pairs = (
        smol["bt"] and smol["sft+dpo"] and smol["bt"].get("eval_sample") == smol["sft+dpo"].get("eval_sample")
    )  # a paired comparison only on the same held-out pairs (runs before the random sample: Harmless only)
    if same_pairs:
        s["train_time_ratio_bt_over_dpo"] = smol["bt"]["train_time_s"] / smol["sft+dpo"]["train_time_s"]
        s["paper_train_time_ratio"] = PAPER_TIME["bt"] / PAPER_TIME["sft+dpo"]
        # one seed: the crossed bootstrap resamples the held-out pairs only (no training randomness)
        est = paired_estimate([smol["bt"]["agree"]], [smol["sft+dpo"]["agree"]], method="crossed")
        s["smollm_bt_minus_sftdpo_acc"] = est.mean
        s["smollm_bt_minus_sftdpo_ci95"] = [est.lo, est.hi]
        s["smollm_bt_minus_sftdpo_mde"] = est.mde
        s["smollm_bt_minus_sftdpo_estimate"] = est.to_dict()
        s["smollm_n_train"], s["smollm_n_eval"] = smol["bt"]["n_train"], smol["bt"]["n_eval"]
    family = [
        Claim(verdict_key, Estimate(**s[key]))
        for verdict_key, key in (
            ("verdict_fig2_accuracy_rises_with_confidence", "hh_acc_top_minus_bottom_quintile_estimate"),
            ("verdict_table6_bt_beats_sftdpo", "smollm_bt_minus_sftdpo_estimate"),
        )
        if s.get(key)
    ]
    for judged in judge(family):  # the track's claims, one family (cwpo.stats)
        s[judged["name"]] = judged["verdict"]
        s[judged["name"] + "_p_holm"] = judged["p_holm"]
    if s.get("train_time_ratio_bt_over_dpo") is not None:
        s["bar_train_time_ratio_0.49"] = "met" if s["train_time_ratio_bt_over_dpo"] <= 0.49 else "not met"
    return s


def write_plots(m: dict, runs: dict, out: Path) -> list[Path]:
    """Accuracy by confidence quintile per subset, accuracy against labelled share (HH): mean ± std."""
    from cwpo.experiments.plotting import pyplot, savefig

    plt, written = pyplot(), []
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for subset in SUBSETS:
        members = [r for k, r in runs.items() if k.startswith(f"minilm/{subset}/share0.3/")]
        if not members:
            continue
        per_q = [[r["accuracy_by_confidence_quintile"][q]["accuracy"] for r in members] for q in range(5)]
        ax.errorbar(range(1, 6), [100 * mean_std(v)[0] for v in per_q],
                    yerr=[100 * (mean_std(v)[1] or 0) for v in per_q], marker="o", capsize=3,
                    label=f"{subset} ({len(members)} seeds)")  # fmt: skip
    if ax.lines:
        ax.set_xticks(range(1, 6))
        ax.axhline(50, color="grey", lw=0.8, ls=":")
        ax.set(xlabel="confidence quintile (1 = least confident)", ylabel="accuracy on human labels (%)",
               title="MiniLM-L6 BT on held-out HH-RLHF")  # fmt: skip
        ax.legend(fontsize=8)
        savefig(fig, out / "accuracy_by_confidence.png")
        written.append(out / "accuracy_by_confidence.png")
    plt.close(fig)
    curve = m.get("hh_acc_by_labeled_share") or {}
    if len(curve) > 1:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        shares = sorted(curve, key=float)
        ax.errorbar([100 * float(x) for x in shares], [100 * curve[x]["accuracy"] for x in shares],
                    yerr=[100 * (curve[x]["std"] or 0) for x in shares], marker="o", capsize=3)  # fmt: skip
        ax.axhline(100 * PAPER["hh_acc"], color="grey", lw=0.8, ls="--", label="paper OPT-125M BT (30%)")
        ax.set(xlabel="labelled share of the pool (%)", ylabel="accuracy on the rest (%)",
               title="MiniLM-L6 BT on HH-RLHF (both subsets)")  # fmt: skip
        ax.legend(fontsize=8)
        savefig(fig, out / "accuracy_by_labeled_share.png")
        written.append(out / "accuracy_by_labeled_share.png")
        plt.close(fig)
    return written


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def write_markdown(doc: dict, path: Path, plots: list[Path] = ()) -> None:
    m = doc["metrics"]
    lines = [
        "# HH-RLHF annotator track",
        "",
        "Generated by `python -m benchmarks.annotator.hh_annotator` from `annotator.json` (every run's command, date and "
        "threads are in its entry). Data: " + doc["data"] + ".",
        "",
        "| subset | MiniLM-L6 BT (mean ± std over seeds) | top-30% most confident | ECE before → after T | "
        "held-out pairs | paper OPT-125M BT |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for subset in SUBSETS:
        k = f"{subset}_acc"
        if m.get(k) is None:
            lines.append(f"| {subset} | not run | | | | {_pct(PAPER.get(k))} |")
            continue
        sd = m.get(f"{k}_std")
        lines.append(
            f"| {subset} | {_pct(m[k])}{'' if sd is None else f' ± {100 * sd:.1f}'} (seeds: {m[f'{k}_n_seeds']}) | "
            f"{_pct(m[f'{k}_top30'])} | {m[f'{k}_ece_before_calibration']:.3f} → "
            f"{m[f'{k}_ece_after_calibration']:.3f} | {m[f'{k}_n_eval']} | {_pct(PAPER.get(k))} |"
        )
    if m.get("hh_acc_by_confidence_quintile"):
        q = " / ".join(_pct(x) for x in m["hh_acc_by_confidence_quintile"])
        lines += ["", f"Accuracy by confidence quintile (HH, lowest to highest, mean over seeds): {q}."]
    if m.get("hh_acc_by_labeled_share"):
        pts = ", ".join(
            f"{float(k):.0%} ({v['n_train']} pairs): {_pct(v['accuracy'])}"
            for k, v in m["hh_acc_by_labeled_share"].items()
        )
        lines += ["", f"Accuracy against labelled share (HH): {pts}."]
    cross = [(a, b) for a, b in (("harmless", "helpful"), ("helpful", "harmless"))
             if m.get(f"cross_{a}_to_{b}_acc") is not None]  # fmt: skip
    if cross:
        pts = "; ".join(f"trained on {a}, scored on {b}: {_pct(m[f'cross_{a}_to_{b}_acc'])} "
                        f"(seeds: {m[f'cross_{a}_to_{b}_n_seeds']})" for a, b in cross)  # fmt: skip
        lines += ["", f"Across subsets (`--part cross`): {pts}. Below 50% means that what one subset's "
                  "humans prefer, the other's tend to reject: one small annotator on both must then "
                  "learn from the prompt which preference applies."]  # fmt: skip
    if m.get("train_time_ratio_bt_over_dpo") is not None:
        lo, hi = m["smollm_bt_minus_sftdpo_ci95"]
        lines += [
            "",
            f"SmolLM2-135M annotators on the same {m['smollm_n_train']} pairs of D_l, scored on "
            f"{m['smollm_n_eval']} held-out pairs (a seeded random sample of D_u): BT {_pct(m['smollm_bt_acc'])}, DPO "
            f"{_pct(m['smollm_dpo_acc'])}, SFT+DPO {_pct(m['smollm_sftdpo_acc'])}; BT − SFT+DPO "
            f"{100 * m['smollm_bt_minus_sftdpo_acc']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] "
            f"(paper Table 6: BT > SFT+DPO; here {m['verdict_table6_bt_beats_sftdpo']}). Training time "
            f"BT / SFT+DPO {m['train_time_ratio_bt_over_dpo']:.2f} (paper {m['paper_train_time_ratio']:.2f}).",
        ]
    if m.get("verdict_fig2_accuracy_rises_with_confidence"):
        lo, hi = m["hh_acc_top_minus_bottom_quintile_ci95"]
        lines += [
            "",
            f"Most minus least confident fifth (HH): {100 * m['hh_acc_top_minus_bottom_quintile']:+.1f} points "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}]; paper Fig. 2's premise (accuracy rises with confidence): "
            f"{m['verdict_fig2_accuracy_rises_with_confidence']}.",
        ]
    for name, v in (m.get("variants_vs_defaults") or {}).items():
        if v["minus_defaults"] is None:
            continue
        lo, hi = v["minus_defaults_ci95"]
        lines += [
            "",
            f"Variant `{name}` (seeds {v['seeds']}): {_pct(v['accuracy'])}, minus the defaults on the "
            f"same pairs {100 * v['minus_defaults']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]; the "
            f"defaults train {v['defaults_train_time_over_variant']:.2f}x as long.",
        ]
    if plots:
        lines += ["", *[f"![{p.stem}]({os.path.relpath(p, path.parent)})" for p in plots]]
    bars = [f"{k[4:]}: {v}" for k, v in m.items() if k.startswith("bar_")]
    if bars:
        lines += ["", "Bars: " + "; ".join(bars) + "."]
    path.write_text("\n".join(lines) + "\n")
