"""The evidence section of a report: paired CIs, MDEs and a verdict per claim, with plots.

Used for runs whose evaluations carry per-prompt gold scores (the sentiment track): every number
is computed by :mod:`cwpo.experiments.evidence` from the evaluation rows, paired over the same
seeds and prompts. One group per grid point (e.g. per labelled share of a split curve).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cwpo.experiments.evidence import annotator_vs_gold, claim_line, evidence
from cwpo.experiments.plotting import pyplot, savefig


def has_gold_rows(rows: list[dict]) -> bool:
    """True when every row's evaluation has per-prompt gold scores (``eval_dir/rows.jsonl``)."""
    for r in rows:
        path = Path(r.get("eval_dir") or "") / "rows.jsonl"
        if not r.get("eval_dir") or not path.exists():
            return False
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if '"gold_policy"' not in first:
            return False
    return bool(rows)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _plot_gra(results: dict, out: Path) -> str:
    plt = pyplot()
    methods = list(dict.fromkeys(m for ev in results.values() for m in ev["methods"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(methods) * max(1, len(results))), 3.4))
    width = 0.8 / max(1, len(results))
    for gi, (label, ev) in enumerate(results.items()):
        xs, ys, lo, hi = [], [], [], []
        for i, m in enumerate(methods):
            g = ev["methods"].get(m)
            if g:
                xs.append(i + gi * width)
                ys.append(100 * g["gra"])
                lo.append(100 * (g["gra"] - g["ci_low"]))
                hi.append(100 * (g["ci_high"] - g["gra"]))
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, label=label or None)
    ax.set_xticks(np.arange(len(methods)) + width * (len(results) - 1) / 2, methods, rotation=35, ha="right")
    ax.axhline(50, color="k", lw=0.8, ls=":")
    ax.set_ylabel("GRA vs SFT (%), 95% CI")
    ax.set_title("GRA per method (CI over seeds and prompts)")
    if len(results) > 1:
        ax.legend(fontsize=7)
    savefig(fig, out / "gra_ci.png")
    plt.close(fig)
    return "gra_ci.png"


def _plot_h2h(results: dict, out: Path) -> str | None:
    plt = pyplot()
    items = [
        (f"{c['better']}−{c['worse']}" + (f" [{label}]" if label else ""), c)
        for label, ev in results.items()
        for c in ev["claims"].values()
    ]
    if not items:
        return None
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(items) + 1.2))
    for i, (_name, c) in enumerate(items):
        lo, hi = c["gra_diff_ci"]
        ax.plot([100 * lo, 100 * hi], [i, i], color="C0")
        ax.plot([100 * c["gra_diff"]], [i], "o", color="C0")
        ax.plot([-100 * c["mde"], 100 * c["mde"]], [i, i], color="0.8", lw=6, zorder=0)
    ax.set_yticks(range(len(items)), [n for n, _ in items], fontsize=7)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("GRA difference (points), 95% CI; grey: ± MDE (80% power)")
    ax.set_title("Head-to-head, paired over seeds and prompts")
    savefig(fig, out / "head_to_head.png")
    plt.close(fig)
    return "head_to_head.png"


def _plot_annotator(by_group: dict, out: Path) -> str | None:
    plt = pyplot()
    curves = {label: per_seed for label, per_seed in by_group.items() if per_seed}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, per_seed in curves.items():
        bins = np.array([v["by_confidence"] for v in per_seed.values()])
        ax.plot(range(1, bins.shape[1] + 1), 100 * bins.mean(axis=0), marker="o", label=label or None)
    ax.axhline(50, color="k", lw=0.8, ls=":")
    ax.set_xlabel("confidence quintile (1 = least confident)")
    ax.set_ylabel("weak label = gold (%)")
    ax.set_title("Weak annotator against the gold on D_u")
    if len(curves) > 1:
        ax.legend(fontsize=7)
    savefig(fig, out / "annotator_gold_by_confidence.png")
    plt.close(fig)
    return "annotator_gold_by_confidence.png"


def evidence_section(groups: dict[str, list[dict]], out: Path) -> tuple[list[str], list[str]]:
    """Markdown lines and plot files for ``{group label: rows}`` (label "" for a run without a grid)."""
    results = {label: evidence(rows) for label, rows in groups.items()}
    annot = {label: annotator_vs_gold(rows) for label, rows in groups.items()}
    lines = [
        "## Evidence: GRA with 95% CIs, paired head-to-heads, MDE and verdicts",
        "",
        "Every interval is a crossed bootstrap over seeds × test prompts (the prompts are shared by the "
        "seeds), never narrower than the Student t interval over seed means; a comparison is paired "
        "(same seeds, same prompts, same SFT reference responses). MDE: the difference the run detects "
        "with 80% power at 5% (two-sided). The claims of each group form one family: a verdict is "
        "*holds* / *fails* only when the Holm-adjusted p-value is below 0.05 (in / against the claimed "
        "direction), otherwise *unresolved* (`cwpo.stats`).",
        "",
    ]
    for label, ev in results.items():
        if label:
            lines += [f"### {label}", ""]
        lines += ["| method | GRA % | 95% CI | seeds | prompts |", "|---|---|---|---|---|"]
        for m, g in ev["methods"].items():
            if g:
                lines.append(
                    f"| {m} | {_pct(g['gra'])} | {_pct(g['ci_low'])}-{_pct(g['ci_high'])} | "
                    f"{g['n_seeds']} | {g['n_prompts']} |"
                )
        lines.append("")
        per_seed = annot.get(label) or {}
        if per_seed:
            accs = [v["acc"] for v in per_seed.values()]
            quint = np.mean([v["by_confidence"] for v in per_seed.values()], axis=0)
            lines += [
                f"Weak annotator against the gold on the gold-decided pairs of D_u: {_pct(float(np.mean(accs)))}% "
                f"(per seed {', '.join(_pct(a) for a in accs)}); by confidence quintile, lowest first: "
                f"{' / '.join(_pct(q) for q in quint)}%.",
                "",
            ]
        claims = [claim_line(c) for c in ev["claims"].values()]
        lines += claims or ["- No pair of methods here tests a claim of the paper."]
        lines.append("")
    plots = [_plot_gra(results, out)]
    plots += [p for p in (_plot_h2h(results, out), _plot_annotator(annot, out)) if p]
    return lines, plots
