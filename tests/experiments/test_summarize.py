"""cwpo.experiments.rows.summarize: mean and std over seeds per grid point and method."""

import pytest

from cwpo.experiments.rows import summarize


def test_dict_grid_values_are_grouped_and_kept():
    """data.labeled_mix takes dicts (robustness-imbalanced.yaml); they crashed the summary."""
    mixes = [None, {"harmless": 1.0}, {"helpful": 0.1, "harmless": 0.9}]
    rows = []
    for seed in (0, 1):
        for i, mix in enumerate(mixes):
            # the same mix written in another key order by the second seed is the same point
            value = dict(reversed(list(mix.items()))) if mix and seed else mix
            rows.append(
                {
                    "seed": seed,
                    "method": "annotator",
                    "data.labeled_mix": value,
                    "weak_label_acc": 0.5 + i / 10 + seed / 100,
                }
            )
    out = summarize(rows, ["data.labeled_mix"])
    assert [e["data.labeled_mix"] for e in out] == mixes
    assert [e["n_seeds"] for e in out] == [2, 2, 2]
    assert [e["weak_label_acc"] for e in out] == pytest.approx([0.505, 0.605, 0.705])


def test_report_groups_dict_grid_values_by_their_label():
    from cwpo.experiments.report import _group

    rows = [
        {"seed": s, "method": m, "data.labeled_mix": mix}
        for s in (0, 1)
        for m in ("ws", "cw")
        for mix in (None, {"harmless": 0.9, "helpful": 0.1})
    ]
    rows.append({"seed": 2, "method": "cw", "data.labeled_mix": {"helpful": 0.1, "harmless": 0.9}})
    groups = _group(rows, ["data.labeled_mix"])
    assert list(groups) == [(None,), ("harmless=0.9,helpful=0.1",)]
    assert {m: len(v) for m, v in groups[("harmless=0.9,helpful=0.1",)].items()} == {"ws": 2, "cw": 3}
