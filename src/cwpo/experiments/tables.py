"""Plain-text tables for the terminal."""

from __future__ import annotations

from cwpo.evaluate.metric_registry import headline_metric


def format_summary(groups: list[dict]) -> str:
    """One line per (grid point, method): the main metric, mean ± std over seeds, and the accuracy of
    the weak labels on D_u against the human (or gold) labels, the number the method's labels rest on."""
    if not groups:
        return "(no results)"
    headline = headline_metric(groups)
    metric, label = headline.name, headline.label
    keys = [k for k in groups[0] if "." in k]
    lines = []
    head = " ".join(f"{k.split('.')[-1]:>12s}" for k in keys)
    lines.append(f"{head} {'method':>10s} {label:>16s} {'seeds':>5s} {'weak-label acc':>14s}")
    for g in groups:
        point = " ".join(f"{g.get(k)!s:>12s}" for k in keys)
        val = g.get(metric)
        std = g.get(f"{metric}_seed_std")
        cell = "–" if val is None else f"{100 * val:5.1f}" + (f" ± {100 * std:4.1f}" if std else "")
        acc = g.get("weak_label_acc")
        acc_cell = "–" if acc is None else f"{100 * acc:5.1f}"
        lines.append(f"{point} {g['method']:>10s} {cell:>16s} {g['n_seeds']:>5d} {acc_cell:>14s}")
    return "\n".join(lines)
