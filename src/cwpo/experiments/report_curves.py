"""Report sections for studies over one grid setting (e.g. a poisoned or imbalanced D_l).

A curve is a metric against the values of one grid key (``data.poison_frac``,
``data.labeled_mix``, ...), one line per method, mean ± std over seeds. Annotator-only studies
(``annotator_only: true``: no strong model) get a table of the annotator's quality per value.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from cwpo.experiments.plotting import pyplot, savefig

ANNOTATOR_COLUMNS = (  # (row key, column title, is a share shown in %)
    ("annotator_eval_acc", "held-out acc", True),
    ("annotator_eval_acc_top30", "top-30% acc", True),
    ("weak_label_acc", "weak-label acc on D_u", True),
    ("mean_confidence", "mean confidence on D_u", False),
    ("annotator_eval_ece", "ECE", False),
)


def level_label(value) -> str:
    if isinstance(value, dict):
        # sorted: the same mix written in another key order is the same level (as in rows.summarize)
        return ",".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(value.items())
        )
    return "random" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _by_value(rows: list[dict], key: str, metric: str, method: str | None = None) -> dict:
    out: dict = defaultdict(list)
    for r in rows:
        if (method is None or r["method"] == method) and r.get(metric) is not None:
            out[level_label(r.get(key))].append(float(r[metric]))
    return out


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def annotator_study_lines(rows: list[dict], keys: list[str]) -> list[str]:
    """A markdown table: the annotator's quality per grid value (mean ± std over seeds)."""
    key = keys[0] if keys else None
    values = list(dict.fromkeys(level_label(r.get(key)) for r in rows)) if key else ["all"]
    title = key.split(".")[-1] if key else "grid point"
    lines = ["| " + " | ".join([title, "seeds"] + [c[1] for c in ANNOTATOR_COLUMNS]) + " |"]
    lines.append("|" + "---|" * (2 + len(ANNOTATOR_COLUMNS)))
    for v in values:
        members = [r for r in rows if (level_label(r.get(key)) if key else "all") == v]
        cells = [v, str(len({r["seed"] for r in members}))]
        for metric, _, share in ANNOTATOR_COLUMNS:
            vals = [float(r[metric]) for r in members if r.get(metric) is not None]
            if not vals:
                cells.append("–")
                continue
            mean, std = _mean_std(vals)
            scale, fmt = (100, "{:.1f}") if share else (1, "{:.3f}")
            cells.append(
                fmt.format(scale * mean) + (f" ± {fmt.format(scale * std)}" if std is not None else "")
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot_grid_curves(rows: list[dict], out: Path, metrics: list[str], keys: list[str]) -> list[str]:
    """``<metric>_vs_<key>.png`` per metric: one line per method over the values of the first grid key."""
    if not keys:
        return []
    plt = pyplot()

    key = keys[0]
    values = list(dict.fromkeys(level_label(r.get(key)) for r in rows))
    numeric = all(_is_number(v) for v in values)
    xs = [float(v) for v in values] if numeric else list(range(len(values)))
    files = []
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(5.2, 3.3))
        drawn = False
        for method in dict.fromkeys(r["method"] for r in rows):
            by_value = _by_value(rows, key, metric, method)
            pts = [(x, *_mean_std(by_value[v])) for x, v in zip(xs, values, strict=True) if by_value.get(v)]
            if not pts:
                continue
            drawn = True
            ax.errorbar(
                [p[0] for p in pts],
                [100 * p[1] for p in pts],
                yerr=[100 * (p[2] or 0) for p in pts],
                marker="o",
                capsize=3,
                label=method,
            )
        if not drawn:
            plt.close(fig)
            continue
        if not numeric:
            ax.set_xticks(xs, values, rotation=20, fontsize=8)
        ax.set_xlabel(key.split(".")[-1])
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"{metric} against {key.split('.')[-1]} (mean ± std over seeds)", fontsize=9)
        ax.legend(fontsize=8)
        name = f"{metric}_vs_{key.split('.')[-1]}.png"
        savefig(fig, out / name)
        plt.close(fig)
        files.append(name)
    return files


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
