"""The frontier bench's report, from ``frontier.json`` alone: the claim table and the reward–KL plots.

:func:`claim_lines` is the table the summary page (:mod:`benchmarks.summary.verdicts`) shows first:
per regime, each claim at matched KL and at the tuned points, its verdict as ``analyze`` judged it
(per regime a primary and a secondary Holm family, :func:`cwpo.stats.judge`), the dominance summary over KL levels and
the paper's number. :func:`plot_frontiers` draws, per regime, gold reward and GRA against KL for
every method at its selected learning rate (95% CIs over seeds × prompts).
"""

from __future__ import annotations

from pathlib import Path

NAMES = {
    "human": "Human-DPO",
    "ws": "WS-DPO",
    "cw": "CW-DPO",
    "human100": "Human-DPO on 100%",
    "human_rdpo": "Human-rDPO (true ε)",
    "human_dl": "DPO on D_l alone",
    "top30": "top-30%",
    "top40": "top-40%",
    "shuffled_c": "c shuffled",
    "human_x_c": "human labels × c",
    "human_x_oracle": "human labels × oracle weight",
    "ws_ess": "WS on an ESS-sized subset",
}


def _name(m: str) -> str:
    return NAMES.get(m, m)


def _pts(e: dict, scale: float) -> str:
    return f"{scale * e['mean']:+.1f} [{scale * e['lo']:+.1f}, {scale * e['hi']:+.1f}]"


def _claim_text(name: str) -> tuple[str, str, str]:
    """(a, b, where) of a claim name such as ``cw_vs_human_gra_at_matched_kl``."""
    for where in ("_at_matched_kl", "_at_tuned"):
        if name.endswith(where):
            body = name[: -len(where)]
            a, rest = body.split("_vs_", 1)
            b, metric = rest.rsplit("_", 1)
            label = "GRA" if metric == "gra" else f"gold {metric}"
            return f"{_name(a)} − {_name(b)}, {label}", where[4:].replace("_", " "), a
    return name, "", ""


def _table(r: dict, verdicts: list[dict]) -> list[str]:
    lines = [
        "| claim | where | verdict | difference [95% CI] | Holm p | MDE | over KL levels | paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        what, where, _ = _claim_text(v["name"])
        scale = 100.0 if "GRA" in what else 1.0
        detail = (r.get("matched_kl") or {}).get(v["name"]) or {}
        dom = detail.get("dominance", {})
        over = f"{dom['summary']} ({dom['a_better']}/{dom['levels']} better)" if dom else "–"
        if where == "tuned":  # each side at its own selected snapshot: say how far each moved
            at = (r.get("tuned") or {}).get("test_at_chosen") or {}
            a, b = v["name"][: -len("_at_tuned")].rsplit("_", 1)[0].split("_vs_", 1)
            if a in at and b in at:
                over = f"at unequal KL: {at[a]['kl']['mean']:.2f} vs {at[b]['kl']['mean']:.2f} nats"
        paper = f"{v['paper']:+.1f}" if isinstance(v.get("paper"), int | float) else "–"
        sign = "" if v.get("direction", 1) > 0 else " (expected below CW)"
        lines.append(
            f"| {what}{sign} | {where} | **{v['verdict']}** | {_pts(v['estimate'], scale)} | "
            f"{v['p_holm']:.2g} | {scale * v['estimate']['mde']:.1f} | {over} | {paper} |"
        )
    return lines


def claim_lines(metrics: dict) -> list[str]:
    """Markdown lines: per regime the primary family's table, the secondary one's, and the
    comparisons left without a verdict (too few seeds); or a line saying none exists."""
    regimes = (metrics or {}).get("regimes") or {}
    if not regimes:
        return ["The frontier bench has not run yet: no matched-KL verdict exists."]
    lines = []
    for regime, r in regimes.items():
        primary, secondary = r.get("verdicts") or [], r.get("secondary_verdicts") or []
        lines += [
            f"**{regime}**, primary claims ({len(primary)}, one Holm family fixed in advance; GRA in points)",
            "",
            *(_table(r, primary) if primary else ["No primary claim has every seed yet."]),
            "",
        ]
        if secondary:
            lines += [
                f"Secondary claims ({len(secondary)}, their own Holm family; gold reward in VADER units)",
                "",
                *_table(r, secondary),
                "",
            ]
        descriptive = r.get("descriptive") or {}
        if descriptive:
            lines.append(
                "Without a verdict (too few seeds): "
                + "; ".join(
                    f"{_claim_text(k)[0]} {_claim_text(k)[1]} "
                    f"{_pts(e, 100.0 if k.split('_at_')[0].endswith('_gra') else 1.0)}"
                    for k, e in descriptive.items()
                )
                + "."
            )
            lines.append("")
        chosen = (r.get("tuned") or {}).get("chosen") or {}
        picks = [f"{_name(m)} lr {c['lr']:g} at {c['epochs']:g} ep" for m, c in chosen.items() if c]
        if picks:
            lines += ["Selected on validation prompts: " + "; ".join(picks) + ".", ""]
    return lines


def plot_frontiers(metrics: dict, folder: Path) -> list[Path]:
    """One figure per regime (gold reward and GRA against KL); the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for regime, r in ((metrics or {}).get("regimes") or {}).items():
        curves = {m: pts for m, pts in (r.get("frontier") or {}).items() if pts}
        if not curves:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        for m, pts in sorted(curves.items()):
            kl = [p["kl"]["mean"] for p in pts]
            for ax, key, scale in ((axes[0], "reward", 1.0), (axes[1], "gra", 100.0)):
                y = [scale * p[key]["mean"] for p in pts]
                err = [
                    [scale * (p[key]["mean"] - p[key]["lo"]) for p in pts],
                    [scale * (p[key]["hi"] - p[key]["mean"]) for p in pts],
                ]
                ax.errorbar(kl, y, yerr=err, marker="o", ms=3, capsize=2, label=_name(m))
        axes[0].set_ylabel("gold reward (VADER)")
        axes[1].set_ylabel("GRA vs the SFT model (%)")
        axes[1].axhline(50, color="grey", lw=0.8, ls="--")
        for ax in axes:
            ax.set_xlabel("KL(π‖π_SFT), nats (Monte-Carlo, test prompts)")
        axes[1].legend(fontsize=7)
        seeds = max((p["kl"].get("n_seeds", 1) for pts in curves.values() for p in pts), default=1)
        over = "seeds × prompts" if seeds > 1 else "prompts only (one seed)"
        fig.suptitle(f"Reward–KL frontiers, {regime} (95% CI over {over})")
        fig.tight_layout()
        path = Path(folder) / f"frontier-{regime}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        tmp.replace(path)
        written.append(path)
    return written
