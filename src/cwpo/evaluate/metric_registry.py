"""The evaluation metrics as data: where each is found, how it is aggregated, which way is better.

:data:`METRICS` is the one list that the evaluation summary (``summary.md``), the results rows
(:func:`cwpo.experiments.rows.flatten_eval`, ``summarize``), the terminal table and the report read;
none of them names a metric. Each entry says where its value sits in the evaluation summary,
the pure function that aggregates its per-item outcomes (:mod:`cwpo.evaluate.metrics`), its labels
and its direction. A new metric is its function plus one entry here (and the evaluation step
that produces its inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cwpo.evaluate.metrics import gra, preference_accuracy, win_rate


@dataclass(frozen=True)
class RegisteredMetric:
    """An evaluation metric.

    ``name`` is its column in a results row; its value is ``summary[summary_key][value_key]`` of an
    evaluation summary, computed by ``function``. ``eval_label`` is its row label in the
    evaluation's ``summary.md`` (formatted with the summary's fields), ``label`` its terminal-table
    column, ``axis_label`` its plot axis and ``title`` its report heading.
    """

    name: str
    summary_key: str
    value_key: str
    function: Callable[..., dict]
    title: str
    label: str
    axis_label: str
    eval_label: str
    higher_is_better: bool = True
    aggregation: str = "mean of per-item outcomes (win 1, tie 0.5, loss 0); over seeds mean ± std"

    def value(self, summary: dict) -> float | None:
        """The metric's value in an evaluation summary (None when it was not measured)."""
        return (summary.get(self.summary_key) or {}).get(self.value_key)

    def better(self, a: float, b: float) -> float:
        """How much ``a`` is better than ``b`` (> 0: better), whatever the metric's direction."""
        return a - b if self.higher_is_better else b - a


METRICS: dict[str, RegisteredMetric] = {
    m.name: m
    for m in (
        RegisteredMetric(
            "gra",
            "gra",
            "gra",
            gra,
            title="Gold Reward Accuracy vs the SFT model (%)",
            label="GRA vs SFT",
            axis_label="GRA vs SFT (%)",
            eval_label="GRA ({gold})",
        ),
        RegisteredMetric(
            "pref_acc",
            "preference_accuracy",
            "accuracy",
            preference_accuracy,
            title="Preference accuracy on held-out human pairs (%)",
            label="pref. accuracy",
            axis_label="preference accuracy (%)",
            eval_label="preference accuracy (β={beta})",
        ),
        RegisteredMetric(
            "win_rate",
            "judge",
            "win_rate",
            win_rate,
            title="LLM-judge win-rate of the policy (%)",
            label="judge win-rate",
            axis_label="judge win-rate (%)",
            eval_label="judge win-rate ({judge_model})",
        ),
    )
}
# a run that measured none of them reports preference accuracy (as "–")
FALLBACK_HEADLINE = "pref_acc"


def headline_metric(rows: Iterable[dict]) -> RegisteredMetric:
    """The first registered metric that some row has a value for: the one a report leads with."""
    rows = list(rows)
    for metric in METRICS.values():
        if any(r.get(metric.name) is not None for r in rows):
            return metric
    return METRICS[FALLBACK_HEADLINE]
