"""One line per claim of the paper, from the committed results alone.

Reads ``tracks/results/sentiment.json`` (sentiment track v2: noise-free and crowd-like simulated
humans, split curve), ``annotator/results/annotator.json`` (HH-RLHF annotator track) and
``tracks/results/robustness.json`` (poisoned and imbalanced D_l, annotator side) and writes
``summary/report/README.md`` and ``summary/report/regimes.png`` (GRA of every method in both
human regimes, with 95% CIs). Every number comes from those files; a claim whose part has not run
says so. Nothing here trains or samples: re-run it after any bench part.

Every verdict on the page comes from the one verdict rule (:func:`cwpo.stats.judge`), applied
here to the whole table: every claim with a stored estimate (difference, standard error, degrees
of freedom, p-value) is one member of a single family, Holm-adjusted together, so a cell's verdict
can be stricter than its own report's (whose family is that report's claims). A result without a
stored estimate (the noise-free sentiment part: its runs were never archived) is shown as not
re-scorable and takes no part in the family. The report's page,
``summary/report/README.md``, is that table, the plots, then the hand-written findings
(``summary/report/findings.md``, appended as written).

    python -m benchmarks.summary.verdicts
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.frontier.render import claim_lines
from benchmarks.result_files import REPO, bench_parser
from cwpo.experiments.evidence import CLAIMS
from cwpo.stats import Claim, Estimate, judge

BENCH = REPO / "benchmarks"
REPORT = BENCH / "summary" / "report"
SOURCES = {  # the result files the verdicts read
    "sentiment": BENCH / "tracks" / "results" / "sentiment.json",
    "annotator": BENCH / "annotator" / "results" / "annotator.json",
    "robustness": BENCH / "tracks" / "results" / "robustness.json",
    "frontier": BENCH / "frontier" / "results" / "frontier.json",
}
FRONTIER_REPORT = BENCH / "frontier" / "report"
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


class Family:
    """The claims of the page, judged together once (one Holm family)."""

    def __init__(self):
        self.claims: list[Claim] = []
        self.judged: dict[str, dict] = {}

    def add(self, name: str, estimate: dict | None, direction: int = 1) -> None:
        if estimate is not None:
            self.claims.append(Claim(name, Estimate(**estimate), direction))

    def judge(self) -> None:
        self.judged = {j["name"]: j for j in judge(self.claims)}

    def verdict(self, name: str) -> dict | None:
        return self.judged.get(name)


def claim_cell(m: dict, key: str, suffix: str, family: Family, bold: bool = True) -> str:
    """``verdict: diff [CI], Holm p, MDE`` of one claim in one regime, or why there is none."""
    h = f"h2h_{key}{suffix}"
    if f"{h}_gra_diff" not in m:
        return "not run yet"
    judged = family.verdict(f"{key}{suffix}")
    if judged is None:
        return "not re-scorable (runs not archived)"
    lo, hi = m[f"{h}_gra_diff_ci"]
    shown = f"**{judged['verdict']}**" if bold else judged["verdict"]
    return (
        f"{shown}: {_pts(m[f'{h}_gra_diff'])} [{_pts(lo)}, {_pts(hi)}], Holm p {judged['p_holm']:.2g}, "
        f"MDE {100 * m[f'{h}_mde']:.1f}"
    )


def build_family(sent: dict, ann: dict, rob: dict) -> Family:
    """Every claim of the table that has a stored estimate, judged as one family."""
    family = Family()
    for key in [
        *TABLE_CLAIMS,
        *sorted(k[len("verdict_") :] for k in sent if k.startswith("verdict_cw_gt_w_")),
    ]:
        for suffix in ("", "_noisefree"):
            family.add(f"{key}{suffix}", sent.get(f"h2h_{key}{suffix}_estimate"))
    for frac, v in sorted((sent.get("split_ratio") or {}).items()):
        family.add(f"cw_gt_human_dl@{frac}", v.get("h2h_cw_gt_human_dl_estimate"))
    family.add("fig2_hh", ann.get("hh_acc_top_minus_bottom_quintile_estimate"))
    family.add("table6_hh", ann.get("smollm_bt_minus_sftdpo_estimate"))
    for part in ("poison", "targeted"):
        change = (rob.get(part) or {}).get("agreement_change_vs_reference") or {}
        if change:
            family.add(f"poison_{part}", change[max(change, key=float)].get("estimate"), direction=-1)
    family.judge()
    return family


def _quintiles(m: dict, suffix: str) -> str:
    q = m.get(f"annotator_gold_acc{suffix}_by_confidence_quintile")
    return f"{100 * q[0]:.1f}% → {100 * q[-1]:.1f}% (lowest → highest fifth)" if q else "not run yet"


def _weights_cell(m: dict, family: Family) -> str:
    """c against each other weight function (a conjunction: c is best only if every claim holds)."""
    keys = sorted(k[len("verdict_") :] for k in m if k.startswith("verdict_cw_gt_w_"))
    if not keys:
        return "not run yet"
    verdicts = [(family.verdict(k) or {}).get("verdict") for k in keys]
    best = (
        "fails" if "fails" in verdicts else "holds" if all(v == "holds" for v in verdicts) else "unresolved"
    )
    each = [f"vs {k[len('cw_gt_w_') :]} {claim_cell(m, k, '', family, bold=False)}" for k in keys]
    return f"**{best}** (" + "; ".join(each) + ")"


def _judged_cell(family: Family, name: str) -> str:
    judged = family.verdict(name)
    return f"**{judged['verdict']}** (Holm p {judged['p_holm']:.2g})" if judged else "not run yet"


def claim_rows(
    sent: dict, ann: dict, rob: dict | None = None, family: Family | None = None
) -> list[list[str]]:
    """Rows: claim | sentiment noise-free | sentiment crowd-like | HH-RLHF annotator track | paper."""
    text = {k: (t, p) for k, _, _, t, p in CLAIMS}
    rob = rob or {}
    family = family or build_family(sent, ann, rob)
    rows = []
    for k in TABLE_CLAIMS:
        noisefree = (
            claim_cell(sent, k, "_noisefree", family) if k in NOISEFREE_CLAIMS else "not in this regime"
        )
        rows.append([text[k][0], noisefree, claim_cell(sent, k, "", family), "–", text[k][1] or "–"])
    rows.append(["c is the best of the Table 5 weights", "not in this regime", _weights_cell(sent, family), "–",
                 "c best"])  # fmt: skip
    split = sent.get("split_ratio") or {}
    cells = []
    for f, v in sorted(split.items()):
        judged = family.verdict(f"cw_gt_human_dl@{f}")
        if judged is None:
            cells.append(f"{float(f):.0%}: not re-scorable")
            continue
        lo, hi = v["h2h_cw_gt_human_dl_gra_diff_ci"]
        cells.append(
            f"{float(f):.0%}: {judged['verdict']}: {_pts(v['h2h_cw_gt_human_dl_gra_diff'])} [{_pts(lo)}, {_pts(hi)}], "
            f"Holm p {judged['p_holm']:.2g}"
        )
    rows.append(["CW-DPO on D_u > DPO on D_l alone at every labelled share (Fig. 3)", "not in this regime",
                 "; ".join(cells) or "not run yet", "–", "CW above"])  # fmt: skip
    rows.append(["Annotator accuracy rises with its confidence (Fig. 2)", _quintiles(sent, ""),
                 _quintiles(sent, "_crowd"), _judged_cell(family, "fig2_hh"), "rises"])  # fmt: skip
    rows.append(["BT annotator > SFT+DPO annotator (Table 6)", "–", "–", _judged_cell(family, "table6_hh"),
                 "BT above"])  # fmt: skip
    rows.append(["Poisoned D_l lowers the annotator's agreement with human labels (App. J.8)", "–", "–",
                 _poison_cell(rob, family), "falls"])  # fmt: skip
    return rows


def _poison_cell(rob: dict, family: Family) -> str:
    """Per poisoned part: its verdict and the change at its largest level (points, CI, MDE)."""
    cells = []
    for part in ("poison", "targeted"):
        change = (rob.get(part) or {}).get("agreement_change_vs_reference")
        judged = family.verdict(f"poison_{part}")
        if not change or judged is None:
            continue
        level = max(change, key=float)
        c = change[level]
        lo, hi = c["ci"]
        cells.append(
            f"{part} {float(level):.0%}: **{judged['verdict']}**: {_pts(c['agreement_change'])} "
            f"[{_pts(lo)}, {_pts(hi)}], Holm p {judged['p_holm']:.2g}, MDE {100 * c['mde']:.1f}"
        )
    return "; ".join(cells) or "not run yet"


def frontier_section(front: dict | None) -> list[str]:
    """The matched-KL verdicts of the frontier bench (per regime a primary and a secondary Holm
    family), and its plots."""
    plots = sorted(FRONTIER_REPORT.glob("frontier-*.png")) if (front or {}).get("regimes") else []
    return [
        "## At matched KL, every method tuned by one rule (the frontier bench)",
        "",
        "From `frontier/results/frontier.json` (`python -m benchmarks.frontier.analyze`): each claim's "
        "difference at the KL levels both methods reach (mean over the levels) and at each method's "
        "selected point (validation prompts), 95% CI from the seeds × test prompts variance components "
        "(t on Satterthwaite's df), "
        "verdicts by `cwpo.stats.judge`, per regime one Holm family of the primary claims (fixed in "
        "advance) and one of the rest. Design, power and hours: "
        "[the frontier report](../../frontier/report/README.md).",
        "",
        *claim_lines(front or {}),
        *(f"![{p.stem}](../../frontier/report/{p.name})" for p in plots),
        "",
        "## The old bench: one untuned epoch, GRA against the SFT model",
        "",
    ]


def render(sent: dict, ann: dict, rob: dict | None = None, front: dict | None = None) -> str:
    head = COLUMNS
    family = build_family(sent, ann, rob or {})
    lines = [
        "# The paper's claims on this machine",
        "",
        *frontier_section(front),
        "Generated by `python -m benchmarks.summary.verdicts` from `tracks/results/sentiment.json`, "
        "`annotator/results/annotator.json` and `tracks/results/robustness.json`; "
        "nothing here is typed. Each cell: verdict, CW minus the baseline in GRA points, its 95% CI "
        "(crossed bootstrap over seeds × test prompts, never narrower than Student t over the seeds), "
        f"the Holm-adjusted p-value over the {len(family.claims)} claims of this table, and the "
        "difference the comparison detects with 80% power (MDE). *holds* / *fails* only when the "
        "Holm-adjusted p is below 0.05 (in / against the claimed direction), *unresolved* otherwise "
        "(`cwpo.stats`). The App. J.8 row gives instead the change of the annotator's agreement with "
        "the human labels of D_u against clean D_l, in points, at the largest poisoning level.",
        "",
        "**Read these as the old bench's set-up, not as the method's effect.** Every method trained one "
        "untuned epoch at one learning rate; GRA is measured against the SFT model with no KL reported, "
        "and the methods moved very different distances from it. The reward–KL frontier bench "
        "(`benchmarks/frontier/`) re-tests these claims at matched KL with every method tuned by the same "
        "rule; its plan and hours are in [its report](../../frontier/report/README.md). The noise-free "
        "part's runs were never archived, so its numbers cannot be re-scored and take no part here.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(r) + " |" for r in claim_rows(sent, ann, rob, family)),
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


def page(sent: dict, ann: dict, rob: dict | None, findings: str, front: dict | None = None) -> str:
    """The report's page: the verdicts, the plots that exist, then the findings as written."""
    plots = [f"![{caption}]({rel})" for caption, rel in PLOTS if (REPORT / rel).exists()]
    return "\n".join([render(sent, ann, rob, front), *plots, "", findings.strip(), ""])


def main() -> None:
    bench_parser(__doc__).parse_args()
    sent, ann, rob, front = (_load(k) for k in ("sentiment", "annotator", "robustness", "frontier"))
    REPORT.mkdir(parents=True, exist_ok=True)
    plot_regimes(sent, REPORT / "regimes.png")
    findings = REPORT / "findings.md"
    out = REPORT / "README.md"
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text(
        page(sent, ann, rob, findings.read_text(encoding="utf-8") if findings.exists() else "", front),
        encoding="utf-8",
    )
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
