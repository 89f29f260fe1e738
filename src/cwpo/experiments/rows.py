"""The rows of a run's ``results.jsonl`` (one per grid point and method) and their summary over seeds."""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict

from cwpo.evaluate.metric_registry import METRICS
from cwpo.experiments.cache import Artifact

# the annotator's numbers a results row carries, summarized over seeds beside the evaluation metrics
ANNOTATOR_METRICS = (
    "annotator_eval_acc",
    "annotator_eval_acc_top30",
    "weak_label_acc",
    "annotator_eval_ece",
    "mean_confidence",
)


def seed_summarized() -> list[str]:
    """The columns :func:`summarize` averages over seeds: every registered metric and its subset
    std, then the annotator's numbers."""
    return [
        *(column for m in METRICS.values() for column in (m.name, f"{m.name}_subset_std")),
        *ANNOTATOR_METRICS,
    ]


def flatten_eval(summary: dict) -> dict:
    """The numbers of an evaluation summary (cwpo.evaluate) that results rows carry."""
    out = {}
    for metric in METRICS.values():
        part = summary.get(metric.summary_key) or {}
        if part:
            name = metric.name
            out[name] = part.get(metric.value_key)
            out[f"{name}_subset_std"] = part.get("std")
            out[f"{name}_ci"] = [part.get("ci_low"), part.get("ci_high")]
            out[f"{name}_ties"] = part.get("ties")
            out[f"{name}_n"] = part.get("n")
    return out


def data_stats(data: Artifact) -> dict:
    """The data stage's numbers and short lists of numbers (e.g. the |gold gap| quartiles)."""

    def keep(v) -> bool:
        return isinstance(v, int | float | str) or (
            isinstance(v, list) and len(v) <= 10 and all(isinstance(x, int | float) for x in v)
        )

    return {k: v for k, v in (data.metrics or {}).items() if keep(v)}


def annotator_row(ann: Artifact, labels: Artifact) -> dict:
    m = ann.metrics
    return {
        "annotator_eval_acc": m.get("eval_accuracy"),
        "annotator_eval_acc_top30": m.get("eval_accuracy_top30"),
        "annotator_eval_ece": m.get("eval_ece"),
        "annotator_train_s": m.get("train_time_s"),
        "weak_label_acc": labels.metrics.get("human_agreement", labels.metrics.get("accuracy")),
        "annotator_dir": str(ann.path / "annotator"),
        "annotated": str(labels.path / "annotated.jsonl"),
    }


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def summarize(rows: list[dict], grid_keys: list[str]) -> list[dict]:
    """Mean and std over seeds of every metric, per (grid point without the seed, method)."""
    groups: dict = defaultdict(list)
    for row in rows:  # a grid value may be a dict (data.labeled_mix): grouped by its canonical JSON
        point = tuple((k, json.dumps(row.get(k), sort_keys=True)) for k in grid_keys)
        groups[(point, row["method"])].append(row)
    out = []
    for (_, method), members in groups.items():
        entry = {
            **{k: members[0].get(k) for k in grid_keys},
            "method": method,
            "n_seeds": len(members),
            "seeds": [m["seed"] for m in members],
        }
        for metric in seed_summarized():
            mean, std = _mean_std([m.get(metric) for m in members])
            if mean is not None:
                entry[metric] = mean
                entry[f"{metric}_seed_std"] = std
        out.append(entry)
    return out
