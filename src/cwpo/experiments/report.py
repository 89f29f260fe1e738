"""``cwpo report``: a markdown report with tables in the paper's layout and PNG plots.

Everything in the report is computed from a results folder written by ``cwpo run``: the
tables, the plots and the sentences that say where the paper's claims held and where not.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from cwpo.atomic_files import read_json, write_text
from cwpo.errors import CWPOError
from cwpo.evaluate.metric_registry import METRICS, headline_metric
from cwpo.experiments.plotting import pyplot, savefig
from cwpo.experiments.report_curves import annotator_study_lines, level_label, plot_grid_curves
from cwpo.experiments.report_evidence import evidence_section, has_gold_rows
from cwpo.hashing import hash_config
from cwpo.outputs import atomic_dir, guard_output, write_manifest
from cwpo.stats import Claim, judge, t_estimate

CLAIMS = [  # (better, worse, the paper's claim)
    ("cw", "human", "CW-DPO beats Human-DPO on the same unlabeled pairs (paper Table 1)"),
    ("cw", "ws", "CW-DPO beats weak labels with weight 1 (paper Table 1)"),
    ("cw", "human100", "CW-DPO on D_u beats Human-DPO on 100% of the labels (paper Table 3)"),
    ("cw", "top30", "confidence weighting beats top-30% filtering (paper Table 4)"),
    ("cw", "top40", "confidence weighting beats top-40% filtering (paper Table 4)"),
    ("cw_ipo", "human_ipo", "CW-IPO beats Human-IPO"),
    ("cw_rdpo", "human_rdpo", "CW-rDPO beats Human-rDPO"),
]


def _read_rows(root: Path) -> list[dict]:
    path = root / "results.jsonl"
    if not path.exists():
        raise CWPOError(
            f"{root} holds no results.jsonl: not a folder written by `cwpo run` (or it has not finished a point)"
        )
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _fmt(mean, std=None) -> str:
    if mean is None:
        return "–"
    return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if std is not None else "")


def _grid_keys(rows: list[dict]) -> list[str]:
    fixed = {"seed", "method", "labels", "weighting", "loss", "title"}
    keys = []
    for k in rows[0]:
        if k in fixed:
            continue
        if "." in k:
            keys.append(k)
    return keys


def _group(rows: list[dict], keys: list[str]) -> dict:
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        # a dict grid value (data.labeled_mix) is grouped under its label, e.g. "harmless=0.9,helpful=0.1"
        point = tuple(level_label(v) if isinstance(v, dict | list) else v for v in (r.get(k) for k in keys))
        groups[point][r["method"]].append(r)
    return groups


def _stats(members: list[dict], metric: str) -> tuple[float | None, float | None, int]:
    vals = [m[metric] for m in members if m.get(metric) is not None]
    if not vals:
        return None, None, 0
    return float(np.mean(vals)), (float(np.std(vals, ddof=1)) if len(vals) > 1 else None), len(vals)


def _write_annotator_report(root: Path, out: Path, rows: list[dict], summary: dict) -> Path:
    """The report of an annotator-only study: quality per grid value, curves, confidence plots."""
    keys = _grid_keys(rows)
    lines = [f"# cwpo report: {summary.get('recipe', root.name)}", ""]
    lines += [
        f"Results folder: `{root.name}`; annotator only (no strong model); {len({r['seed'] for r in rows})} "
        f"seed(s); {len(rows)} runs. Numbers are mean ± std over seeds; accuracies in %, against the "
        "human labels.",
        "",
        "## Weak annotator",
        "",
    ]
    lines += annotator_study_lines(rows, keys) + [""]
    plots = plot_grid_curves(rows, out, ["weak_label_acc", "mean_confidence"], keys) + plot_confidence(
        rows, out
    )
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    report = out / "report.md"
    write_text(report, "\n".join(lines))
    write_manifest(out, "report", {"results_dir": root.name}, hash_config(rows))
    return report


def _annotated_values(rows: list[dict]) -> tuple[np.ndarray, np.ndarray | None]:
    """Confidences and human agreement of the weak labels of every distinct annotation in the results."""
    conf, agree = [], []
    for path in sorted({r["annotated"] for r in rows if r.get("annotated")}):
        if not Path(path).exists():
            continue
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            conf.append(d["confidence"])
            agree.append(d.get("human_agrees"))
    has_agree = conf and all(a is not None for a in agree)
    return np.array(conf), (np.array(agree, dtype=float) if has_agree else None)


def plot_confidence(rows: list[dict], out: Path) -> list[str]:
    plt = pyplot()

    conf, agree = _annotated_values(rows)
    if conf.size == 0:
        return []
    files = []
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bins = np.linspace(0, 1, 21)
    if agree is not None:
        ax.hist(
            [conf[agree == 1], conf[agree == 0]],
            bins=bins,
            stacked=True,
            label=["agrees with human", "disagrees"],
            color=["#4c72b0", "#dd8452"],
        )
        ax.legend()
    else:
        ax.hist(conf, bins=bins, color="#4c72b0")
    ax.set_xlabel("confidence c = 2σ(|Δ|) − 1")
    ax.set_ylabel("pairs")
    ax.set_title("Weak annotator confidence on D_u")
    savefig(fig, out / "confidence_hist.png")
    plt.close(fig)
    files.append("confidence_hist.png")
    if agree is not None:
        edges = np.quantile(conf, np.linspace(0, 1, 6))
        idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, 4)
        accs = [agree[idx == b].mean() if (idx == b).any() else np.nan for b in range(5)]
        centers = [conf[idx == b].mean() if (idx == b).any() else np.nan for b in range(5)]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.bar(range(5), accs, color="#55a868")
        ax.set_xticks(range(5), [f"Q{b + 1}\n(c≈{c:.2f})" for b, c in enumerate(centers)])
        ax.axhline(agree.mean(), color="k", ls="--", lw=1, label=f"all pairs {agree.mean():.2f}")
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy vs human label")
        ax.set_title("Weak-label accuracy by confidence quintile")
        ax.legend()
        savefig(fig, out / "accuracy_by_confidence.png")
        plt.close(fig)
        files.append("accuracy_by_confidence.png")
    return files


def plot_methods(rows: list[dict], out: Path, metric: str, keys: list[str]) -> list[str]:
    plt = pyplot()

    groups = _group(rows, keys)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(methods) * max(1, len(groups)) / 1.5), 3.4))
    width = 0.8 / max(1, len(groups))
    for gi, (gkey, by_method) in enumerate(groups.items()):
        means, stds = [], []
        for m in methods:
            mean, std, _ = _stats(by_method.get(m, []), metric)
            means.append(np.nan if mean is None else 100 * mean)
            stds.append(0 if std is None else 100 * std)
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, gkey, strict=True)) or None
        ax.bar(np.arange(len(methods)) + gi * width, means, width, yerr=stds, capsize=3, label=label)
    ax.set_xticks(np.arange(len(methods)) + width * (len(groups) - 1) / 2, methods, rotation=30)
    ax.axhline(50, color="k", lw=0.8, ls=":")
    ax.set_ylabel(METRICS[metric].axis_label)
    ax.set_title("Methods (mean ± std over seeds)")
    if keys:
        ax.legend(fontsize=8)
    name = f"{metric}_by_method.png"
    savefig(fig, out / name)
    plt.close(fig)
    return [name]


def plot_split_ratio(rows: list[dict], out: Path, metric: str, keys: list[str]) -> list[str]:
    frac_keys = [k for k in keys if k.endswith("labeled_frac")]
    if not frac_keys:
        return []
    plt = pyplot()

    fk = frac_keys[0]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for method in dict.fromkeys(r["method"] for r in rows):
        by_frac = defaultdict(list)
        for r in rows:
            if r["method"] == method and r.get(metric) is not None:
                by_frac[r[fk]].append(r[metric])
        xs = sorted(by_frac)
        ax.errorbar(
            [100 * x for x in xs],
            [100 * np.mean(by_frac[x]) for x in xs],
            yerr=[100 * np.std(by_frac[x]) for x in xs],
            marker="o",
            capsize=3,
            label=method,
        )
    ax.set_xlabel("labeled share D_l (%)")
    ax.set_ylabel(metric)
    ax.set_title("Split-ratio curve")
    ax.legend(fontsize=8)
    savefig(fig, out / "split_ratio.png")
    plt.close(fig)
    return ["split_ratio.png"]


def claims(rows: list[dict], metric: str, keys: list[str]) -> list[str]:
    """One computed sentence per paper claim that the results can test.

    Per grid group, the seed-paired differences of ``metric`` give a Student t estimate
    (:func:`cwpo.stats.t_estimate`); the claims of all groups form one family whose verdicts come
    from :func:`cwpo.stats.judge` (Holm-adjusted). A comparison on one seed has no error estimate:
    it is reported with its direction and left out of the family (never a verdict).
    """
    family: list[Claim] = []
    texts: list[tuple[str, str, str, str, list[float]]] = []  # (text, where, better, worse, diffs)
    single: list[str] = []
    for gkey, by_method in _group(rows, keys).items():
        where = ", ".join(f"{k}={v}" for k, v in zip(keys, gkey, strict=True))
        for better, worse, text in CLAIMS:
            if better not in by_method or worse not in by_method:
                continue
            b = {r["seed"]: r.get(metric) for r in by_method[better]}
            w = {r["seed"]: r.get(metric) for r in by_method[worse]}
            diffs = [
                METRICS[metric].better(b[s], w[s])
                for s in b
                if s in w and b[s] is not None and w[s] is not None
            ]
            label = f"{text}{f' [{where}]' if where else ''}"
            if len(diffs) == 1:
                way = "same direction as" if diffs[0] > 0 else "opposite direction to"
                single.append(
                    f"- {label}: {way} the paper, one seed (no error estimate, no verdict): "
                    f"{better} − {worse} = {100 * diffs[0]:+.1f} points."
                )
            elif diffs:
                family.append(Claim(label, t_estimate(diffs)))
                texts.append((label, where, better, worse, diffs))
    lines = []
    for (label, _where, better, worse, diffs), judged in zip(texts, judge(family), strict=True):
        est = judged["estimate"]
        wins = sum(x > 0 for x in diffs)
        lines.append(
            f"- {label}: {judged['verdict']}: {better} − {worse} = {100 * est['mean']:+.1f} points "
            f"(95% t CI {100 * est['lo']:+.1f} to {100 * est['hi']:+.1f} over {len(diffs)} seeds, "
            f"Holm p {judged['p_holm']:.3g} in a family of {judged['family_size']}; 80%-power MDE "
            f"{100 * est['mde']:.1f}; {better} ahead in {wins}/{len(diffs)} seeds)."
        )
    return lines + single


def write_report(
    results_dir: str | Path, output: str | Path | None = None, preamble: list[str] | None = None
) -> Path:
    """Write ``report.md`` and its PNG plots into ``output`` (default: ``results_dir/report``).

    ``preamble``: markdown lines put right after the header (``cwpo demo`` puts its table there).
    """
    root = Path(results_dir)
    rows = _read_rows(root)
    if not rows:
        raise CWPOError(f"{root}/results.jsonl is empty")
    final = Path(output) if output else root / "report"
    guard_output(final, "report", in_place=True)  # an earlier report is replaced, nothing else
    with atomic_dir(final) as out:  # built beside it, swapped in when complete
        _write_report_into(root, rows, out, preamble)
    return final / "report.md"


def _write_report_into(root: Path, rows: list[dict], out: Path, preamble: list[str] | None) -> Path:
    summary = read_json(root / "summary.json") if (root / "summary.json").exists() else {}
    if all(r["method"] == "annotator" for r in rows):
        return _write_annotator_report(root, out, rows, summary)
    paper = summary.get("paper") or {}
    headline = headline_metric(rows)
    metric, metric_name = headline.name, headline.title
    keys = _grid_keys(rows)
    lines = [f"# cwpo report: {summary.get('recipe', root.name)}", ""]
    lines += [
        f"Results folder: `{root.name}`; track: {summary.get('track', '?')}; "
        f"{len({r['seed'] for r in rows})} seed(s); {len(rows)} runs. Numbers are mean ± std over seeds.",
        "",
        *(preamble or []),
    ]
    # main table
    groups = _group(rows, keys)
    header = ["method", "labels", "weighting", "loss"]
    cols = [
        ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, g, strict=True)) or metric for g in groups
    ]
    lines += [f"## {metric_name}", ""]
    has_paper = bool(paper)
    lines.append("| " + " | ".join(header + cols + (["paper"] if has_paper else [])) + " |")
    lines.append("|" + "---|" * (len(header) + len(cols) + has_paper))
    for method in dict.fromkeys(r["method"] for r in rows):
        first = next(r for r in rows if r["method"] == method)
        cells = [method, first["labels"], first["weighting"], first["loss"]]
        for g in groups.values():
            mean, std, _ = _stats(g.get(method, []), metric)
            cells.append(_fmt(mean, std))
        if has_paper:
            cells.append(str(paper.get(method, "–")))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if has_paper and paper.get("_source"):
        lines += [f"Paper column: {paper['_source']}", ""]
    # annotator table
    lines += [
        "## Weak annotator",
        "",
        "Held-out: the annotator's own held-out slice of D_l. Weak labels vs human: how often its labels"
        " of D_u agree with D_u's human labels (the simulated humans' labels, noisy where the recipe adds"
        " noise; the gold, where there is one, is in the evidence section).",
        "",
        "| grid point | held-out acc | top-30% acc | ECE | weak labels vs human labels of D_u |",
        "|---|---|---|---|---|",
    ]
    for gkey, by_method in groups.items():
        members = next(iter(by_method.values()))
        cells = [", ".join(f"{k}={v}" for k, v in zip(keys, gkey, strict=True)) or "all"]
        for m in ("annotator_eval_acc", "annotator_eval_acc_top30", "annotator_eval_ece", "weak_label_acc"):
            mean, std, _ = _stats(members, m)
            cells.append("–" if mean is None else (f"{mean:.3f}" if m.endswith("ece") else _fmt(mean, std)))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    # claims: paired over prompts and seeds where the evaluations have per-prompt gold scores
    evidence_plots: list[str] = []
    if metric == "gra" and has_gold_rows(rows):
        by_group = {
            ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(keys, gkey, strict=True)): [
                r for members in by_method.values() for r in members
            ]
            for gkey, by_method in groups.items()
        }
        section, evidence_plots = evidence_section(by_group, out)
        lines += section
    else:
        found = claims(rows, metric, keys)
        lines += ["## Where the paper's claims held here", ""]
        lines += found or ["- The results hold no pair of methods that tests a claim of the paper."]
        lines.append("")
    # plots
    plots = evidence_plots + (
        plot_confidence(rows, out)
        + plot_methods(rows, out, metric, keys)
        + plot_split_ratio(rows, out, metric, keys)
        + (
            plot_grid_curves(rows, out, [metric, "weak_label_acc"], keys)
            if keys and "frac" not in keys[0]
            else []
        )
    )
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    report = out / "report.md"
    write_text(report, "\n".join(lines))
    write_manifest(out, "report", {"results_dir": root.name}, hash_config(rows))
    return report
