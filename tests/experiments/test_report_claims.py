"""The report's sentences about the paper's claims come from the one verdict rule (cwpo.stats)."""

from __future__ import annotations

from cwpo.experiments.report import claims


def rows(values: dict[str, list[float]]) -> list[dict]:
    return [{"seed": s, "method": m, "gra": v} for m, vs in values.items() for s, v in enumerate(vs)]


def test_clear_win_over_seeds_holds():
    # seed diffs 0.10, 0.11, 0.11: mean 0.10667, sd 0.005774, t = 32 on 2 df: p = 0.00098
    (line,) = claims(rows({"cw": [0.60, 0.62, 0.61], "human": [0.50, 0.51, 0.50]}), "gra", [])
    assert ": holds:" in line and "+10.7 points" in line and "3/3 seeds" in line
    assert "Holm p 0.000975" in line and "family of 1" in line


def test_mixed_difference_is_unresolved():
    (line,) = claims(rows({"cw": [0.60, 0.45, 0.55], "human": [0.50, 0.55, 0.52]}), "gra", [])
    assert ": unresolved:" in line


def test_reversal_fails_and_single_seed_has_no_verdict():
    (line,) = claims(rows({"cw": [0.40, 0.41, 0.40], "ws": [0.50, 0.52, 0.51]}), "gra", [])
    assert ": fails:" in line
    (line,) = claims(rows({"cw": [0.55], "human": [0.50]}), "gra", [])
    assert "one seed (no error estimate, no verdict)" in line and "holds" not in line


def test_claims_of_a_report_are_one_holm_family():
    # alone, cw - human (p = 0.0287 on 2 df) holds; beside a null claim its Holm p doubles: unresolved
    alone = {"cw": [0.60, 0.63, 0.62], "human": [0.50, 0.50, 0.55]}
    (line,) = claims(rows(alone), "gra", [])
    assert ": holds:" in line
    both = {**alone, "ws": [0.60, 0.64, 0.61]}
    lines = claims(rows(both), "gra", [])
    assert len(lines) == 2 and all("family of 2" in x for x in lines)
    assert lines[0].startswith("- CW-DPO beats Human-DPO") and ": unresolved:" in lines[0]
