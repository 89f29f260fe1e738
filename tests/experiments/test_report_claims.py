"""The report's sentences about the paper's claims are computed, and honest about noise."""

from __future__ import annotations

from cwpo.experiments.report import claims


def rows(values: dict[str, list[float]]) -> list[dict]:
    return [{"seed": s, "method": m, "gra": v} for m, vs in values.items() for s, v in enumerate(vs)]


def test_clear_win_over_seeds_is_held():
    (line,) = claims(rows({"cw": [0.60, 0.62, 0.61], "human": [0.50, 0.51, 0.50]}), "gra", [])
    assert ": held:" in line and "+10.7 points" in line and "3/3 seeds" in line


def test_small_or_mixed_difference_is_within_noise():
    (line,) = claims(rows({"cw": [0.60, 0.45, 0.55], "human": [0.50, 0.55, 0.52]}), "gra", [])
    assert "within noise" in line


def test_reversal_beyond_noise_and_single_seed():
    (line,) = claims(rows({"cw": [0.40, 0.41, 0.40], "ws": [0.50, 0.52, 0.51]}), "gra", [])
    assert "did not hold (reversed beyond noise)" in line
    (line,) = claims(rows({"cw": [0.55], "human": [0.50]}), "gra", [])
    assert "one seed (no error estimate)" in line and "held:" not in line
