"""The metric registry: the evaluation summary, results rows, terminal table and report read it.

A metric added to the registry (here a lower-is-better one, the share of judge answers lost) shows
up in every reader without touching them, and its direction turns the report's paired differences.
"""

from __future__ import annotations

import pytest

from cwpo.evaluate import metric_registry
from cwpo.evaluate.evaluate import summary_markdown
from cwpo.evaluate.metric_registry import METRICS, RegisteredMetric, headline_metric
from cwpo.experiments.report import claims
from cwpo.experiments.rows import flatten_eval, summarize
from cwpo.experiments.tables import format_summary


def _part(name: str, value: float) -> dict:
    return {name: value, "std": 0.01, "ci_low": value - 0.1, "ci_high": value + 0.1, "ties": 1, "n": 40,
            "wins": 20, "losses": 19}  # fmt: skip


LOSS_RATE = RegisteredMetric(
    "loss_rate",
    "judge_losses",
    "loss_rate",
    lambda *a, **k: {},
    title="Judge loss rate (%)",
    label="loss rate",
    axis_label="loss rate (%)",
    eval_label="judge loss rate ({judge_model})",
    higher_is_better=False,
)


def test_registered_metrics_and_directions():
    assert list(METRICS) == ["gra", "pref_acc", "win_rate"]
    assert all(m.higher_is_better for m in METRICS.values())
    assert METRICS["gra"].better(0.6, 0.5) == pytest.approx(0.1)
    assert LOSS_RATE.better(0.2, 0.5) == pytest.approx(0.3)


def test_headline_is_the_first_registered_metric_measured():
    assert headline_metric([{"pref_acc": 0.6}, {"gra": 0.55}]).name == "gra"
    assert headline_metric([{"pref_acc": 0.6, "gra": None}]).name == "pref_acc"
    assert headline_metric([{"win_rate": 0.7}]).name == "win_rate"
    assert headline_metric([{"method": "cw"}]).name == "pref_acc"  # nothing measured


def test_flatten_and_markdown_read_the_registry(monkeypatch):
    summary = {"policy": "p", "reference": "r", "gold": "vader", "judge_model": "j",
               "gra": {**_part("gra", 0.61), "mean_policy": 0.3, "mean_reference": 0.1}, "judge": _part("win_rate", 0.55)}  # fmt: skip
    row = flatten_eval(summary)
    assert (row["gra"], row["win_rate"], row["gra_n"]) == (0.61, 0.55, 40)
    assert "pref_acc" not in row
    md = summary_markdown(summary)
    assert "| GRA (vader) | 61.0 |" in md and "| judge win-rate (j) | 55.0 |" in md
    monkeypatch.setitem(METRICS, "loss_rate", LOSS_RATE)
    summary["judge_losses"] = _part("loss_rate", 0.25)
    assert flatten_eval(summary)["loss_rate"] == 0.25
    assert "| judge loss rate (j) | 25.0 |" in summary_markdown(summary)


def test_a_new_metric_reaches_summaries_tables_and_claims(monkeypatch):
    monkeypatch.setitem(METRICS, "loss_rate", LOSS_RATE)
    monkeypatch.setattr(metric_registry, "FALLBACK_HEADLINE", "loss_rate")
    # lower is better: cw loses 0.2 of its judge comparisons, human 0.5 (three seeds)
    rows = [
        {
            "method": m,
            "seed": s,
            "labels": "weak",
            "weighting": "none",
            "loss": "dpo",
            "loss_rate": v + 0.01 * s,
        }
        for m, v in (("cw", 0.2), ("human", 0.5))
        for s in range(3)
    ]
    groups = summarize(rows, [])
    assert {g["method"]: round(g["loss_rate"], 6) for g in groups} == {"cw": 0.21, "human": 0.51}
    assert "loss rate" in format_summary(groups).splitlines()[0]
    (line,) = [c for c in claims(rows, "loss_rate", []) if c.startswith("- CW-DPO beats Human-DPO")]
    assert "cw − human = +30.0 points" in line  # the direction turns 0.21 − 0.51 into +30 points
