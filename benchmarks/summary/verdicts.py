"""One line per claim of the paper, from the committed results alone.

Reads ``tracks/results/sentiment.json`` (sentiment track v2: noise-free and crowd-like simulated
humans, split curve), ``annotator/results/annotator.json`` (HH-RLHF annotator track) and
``tracks/results/robustness.json`` (poisoned and imbalanced D_l, annotator side) and writes
``summary/report/README.md`` and ``summary/report/regimes.png`` (GRA of every method in both
human regimes, with 95% CIs). Every number comes from those files; a claim whose part has not run
says so. Nothing here trains or samples: re-run it after any bench part. The report's page,
``summary/report/README.md``, is that table, the plots, then the hand-written findings
(``summary/report/findings.md``, appended as written).

    python -m benchmarks.summary.verdicts
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.result_files import REPO, bench_parser
from cwpo.experiments.evidence import CLAIMS

BENCH = REPO / "benchmarks"
REPORT = BENCH / "summary" / "report"
SOURCES = {  # the result files the verdicts read
    "sentiment": BENCH / "tracks" / "results" / "sentiment.json",
    "annotator": BENCH / "annotator" / "results" / "annotator.json",
    "robustness": BENCH / "tracks" / "results" / "robustness.json",
}
REGIMES = {"noise-free humans": "_noisefree", "crowd-like humans (32% flips)": ""}
COLUMNS = [
    "claim",
    "sentiment, noise-free humans",
    "sentiment, crowd-like humans",
    "HH-RLHF annotators",
    "paper",
]
NOISEFREE_CLAIMS = {"cw_gt_human", "cw_gt_ws", "cw_gt_human100"}  # the methods sentiment-v2.yaml runs
# the paper's claims in its order, with the claim keys of cwpo.experiments.evidence
TABLE_CLAIMS = [
    "cw_gt_human",
    "cw_ipo_gt_human_ipo",
    "cw_rdpo_gt_human_rdpo",
    "cw_gt_ws",
    "cw_gt_human100",
    "cw_gt_top30",
    "cw_gt_top40",
]
METHOD_ORDER = ["human", "ws", "cw", "human100", "top30", "top40", "human_ipo", "cw_ipo", "human_rdpo", "cw_rdpo",
                "w_sigmoid", "w_tanh", "w_one_minus_exp", "w_clipped", "w_normalized"]  # fmt: skip


def _load(name: str) -> dict:
    path = SOURCES[name]
    return json.loads(path.read_text(encoding="utf-8")).get("metrics", {}) if path.exists() else {}


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def claim_cell(m: dict, key: str, suffix: str, bold: bool = True) -> str:
    """``verdict: diff [CI] (MDE)`` of one claim in one regime, or why there is none."""
    verdict = m.get(f"verdict_{key}{suffix}")
    if verdict is None:
        return "not run yet"
    h = f"h2h_{key}{suffix}"
    lo, hi = m[f"{h}_gra_diff_ci"]
    shown = f"**{verdict}**" if bold else verdict
    return f"{shown}: {_pts(m[f'{h}_gra_diff'])} [{_pts(lo)}, {_pts(hi)}], MDE {100 * m[f'{h}_mde']:.1f}"


def _quintiles(m: dict, suffix: str) -> str:
    q = m.get(f"annotator_gold_acc{suffix}_by_confidence_quintile")
    return f"{100 * q[0]:.1f}% → {100 * q[-1]:.1f}% (lowest → highest fifth)" if q else "not run yet"


def _weights_cell(m: dict) -> str:
    """The Table 5 verdict, then c against each other weight function (GRA points, CI, MDE)."""
    best = m.get("verdict_c_best_weight")
    if best is None:
        return "not run yet"
    keys = sorted(k[len("verdict_") :] for k in m if k.startswith("verdict_cw_gt_w_"))
    each = [f"vs {k[len('cw_gt_w_') :]} {claim_cell(m, k, '', bold=False)}" for k in keys]
    return f"**{best}**" + (" (" + "; ".join(each) + ")" if each else "")


def claim_rows(sent: dict, ann: dict, rob: dict | None = None) -> list[list[str]]:
    """Rows: claim | sentiment noise-free | sentiment crowd-like | HH-RLHF annotator track | paper."""
    text = {k: (t, p) for k, _, _, t, p in CLAIMS}
    rob = rob or {}
    rows = []
    for k in TABLE_CLAIMS:
        noisefree = claim_cell(sent, k, "_noisefree") if k in NOISEFREE_CLAIMS else "not in this regime"
        rows.append([text[k][0], noisefree, claim_cell(sent, k, ""), "–", text[k][1] or "–"])
    rows.append(["c is the best of the Table 5 weights", "not in this regime", _weights_cell(sent), "–",
                 "c best"])  # fmt: skip
    split = sent.get("split_ratio") or {}
    cells = [
        f"{float(f):.0%}: "
        + (
            claim_cell(v, "cw_gt_human_dl", "", bold=False)
            if "h2h_cw_gt_human_dl_mde" in v
            else v.get("verdict_cw_gt_human_dl", "–")
        )
        for f, v in sorted(split.items())
    ]
    rows.append(["CW-DPO on D_u > DPO on D_l alone at every labelled share (Fig. 3)", "not in this regime",
                 "; ".join(cells) or "not run yet", "–", "CW above"])  # fmt: skip
    fig2 = ann.get("verdict_fig2_accuracy_rises_with_confidence")
    rows.append(["Annotator accuracy rises with its confidence (Fig. 2)", _quintiles(sent, ""),
                 _quintiles(sent, "_crowd"), f"**{fig2}**" if fig2 else "not run yet", "rises"])  # fmt: skip
    t6 = ann.get("verdict_table6_bt_beats_sftdpo")
    rows.append(["BT annotator > SFT+DPO annotator (Table 6)", "–", "–", f"**{t6}**" if t6 else "not run yet",
                 "BT above"])  # fmt: skip
    rows.append(["Poisoned D_l lowers the annotator's agreement with human labels (App. J.8)", "–", "–",
                 _poison_cell(rob), "falls"])  # fmt: skip
    return rows


def _poison_cell(rob: dict) -> str:
    """Per poisoned part: its verdict and the change at its largest level (points, CI, MDE)."""
    cells = []
    for part in ("poison", "targeted"):
        m = rob.get(part) or {}
        change, verdict = m.get("agreement_change_vs_reference"), m.get("verdict_annotator_degrades")
        if not change or verdict is None:
            continue
        level = max(change, key=float)
        c = change[level]
        lo, hi = c["ci"]
        cells.append(
            f"{part} {float(level):.0%}: **{verdict}**: {_pts(c['agreement_change'])} [{_pts(lo)}, {_pts(hi)}], "
            f"MDE {100 * c['mde']:.1f}"
        )
    return "; ".join(cells) or "not run yet"


def render(sent: dict, ann: dict, rob: dict | None = None) -> str:
    head = COLUMNS
    lines = [
        "# The paper's claims on this machine",
        "",
        "Generated by `python -m benchmarks.summary.verdicts` from `tracks/results/sentiment.json`, "
        "`annotator/results/annotator.json` and `tracks/results/robustness.json`; "
        "nothing here is typed. Each cell: verdict, CW minus the baseline in GRA points, its 95% CI "
        "and the minimum detectable effect (MDE) of the comparison. *holds* / *fails* only when the CI "
        "excludes 0; *unresolved* otherwise (the MDE says what the bench could have seen). The App. J.8 "
        "row gives instead the change of the annotator's agreement with the human labels of D_u against "
        "clean D_l, in points, at the largest poisoning level.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in claim_rows(sent, ann, rob)),
        "",
        "Details: [noise-free](../../tracks/report/sentiment-v2/report.md), "
        "[crowd-like](../../tracks/report/sentiment-v2-crowd/report.md), "
        "[split curve](../../tracks/report/sentiment-v2-split/report.md), "
        "[HH-RLHF annotators](../../annotator/results/annotator.md), "
        "[poisoned and imbalanced D_l](../../tracks/report/) "
        "(`tracks/report/robustness-*/report.md`, `tracks/results/robustness.json`).",
        "",
        "![regimes.png](regimes.png)",
        "",
    ]
    return "\n".join(lines)


def plot_regimes(sent: dict, path: Path) -> bool:
    """GRA with 95% CI per method, one bar per human regime; False when no regime has results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHOD_ORDER if any(f"gra_{m}{s}" in sent for s in REGIMES.values())]
    if not methods:
        return False
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(methods)), 3.6))
    width = 0.8 / len(REGIMES)
    for i, (label, s) in enumerate(REGIMES.items()):
        xs, ys, errs = [], [], [[], []]
        for j, m in enumerate(methods):
            if f"gra_{m}{s}" in sent:
                y = 100 * sent[f"gra_{m}{s}"]
                xs.append(j + (i - (len(REGIMES) - 1) / 2) * width)
                ys.append(y)
                errs[0].append(y - 100 * sent[f"gra_{m}{s}_ci_low"])
                errs[1].append(100 * sent[f"gra_{m}{s}_ci_high"] - y)
        if xs:
            ax.bar(xs, ys, width, yerr=errs, capsize=3, label=label)
    ax.axhline(50, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
    ax.set_ylabel("GRA vs the SFT model (%)")
    ax.set_title("Sentiment v2: GRA per method in both human regimes (95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return True


# plots of the studies' own reports shown under the verdicts: (caption, path from REPORT)
PLOTS = [
    ("Sentiment, crowd-like humans: each method's GRA with its 95% CI", "../../tracks/report/sentiment-v2-crowd/gra_ci.png"),
    ("Split curve: CW-DPO on D_u against DPO on D_l alone", "../../tracks/report/sentiment-v2-split/split_ratio.png"),
    ("HH-RLHF annotators: accuracy by confidence", "../../annotator/report/hh-annotator/accuracy_by_confidence.png"),
    ("Poisoned D_l: the weak labels' agreement with the humans", "../../tracks/report/robustness-poison/weak_label_acc_vs_poison_frac.png"),
]  # fmt: skip


def page(sent: dict, ann: dict, rob: dict | None, findings: str) -> str:
    """The report's page: the verdicts, the plots that exist, then the findings as written."""
    plots = [f"![{caption}]({rel})" for caption, rel in PLOTS if (REPORT / rel).exists()]
    return "\n".join([render(sent, ann, rob), *plots, "", findings.strip(), ""])


def main() -> None:
    bench_parser(__doc__).parse_args()
    sent, ann, rob = _load("sentiment"), _load("annotator"), _load("robustness")
    REPORT.mkdir(parents=True, exist_ok=True)
    plot_regimes(sent, REPORT / "regimes.png")
    findings = REPORT / "findings.md"
    out = REPORT / "README.md"
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(
        page(sent, ann, rob, findings.read_text(encoding="utf-8") if findings.exists() else ""),
        encoding="utf-8",
    )
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
