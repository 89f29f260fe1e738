"""benchmarks/tracks/robustness.py: the paired change of the weak labels' agreement against the clean level."""

import json
from pathlib import Path

import pytest

from benchmarks.summary import verdicts
from benchmarks.tracks import robustness


def _annotated(path: Path, agrees: list[bool], swap: bool = False) -> str:
    """An annotated D_u file; ``swap`` writes each pair with its responses the other way round (the
    weak label decides which is ``chosen``), which must not break the pairing."""
    rows = []
    for i, a in enumerate(agrees):
        pair = (f"good {i}", f"bad {i}")
        chosen, rejected = pair[::-1] if swap else pair
        rows.append({"prompt": f"p{i}", "chosen": chosen, "rejected": rejected, "human_agrees": a})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _rows(tmp_path, clean: list[list[bool]], poisoned: list[list[bool]]) -> list[dict]:
    rows = []
    for seed, (c, p) in enumerate(zip(clean, poisoned, strict=True)):
        rows.append(
            {"seed": seed, "data.poison_frac": 0.0, "annotated": _annotated(tmp_path / f"c{seed}", c)}
        )
        path = _annotated(tmp_path / f"p{seed}", p, swap=True)
        rows.append({"seed": seed, "data.poison_frac": 0.4, "annotated": path})
    return rows


def test_change_is_paired_by_seed_and_pair_and_its_verdict_follows_the_ci(tmp_path):
    n = 400
    clean = [[i % 10 < 6 for i in range(n)] for _ in range(3)]  # 60% agreement
    worse = [[i % 10 < 4 for i in range(n)] for _ in range(3)]  # 40%: each pair right only if it was
    change = robustness.change_vs_reference(_rows(tmp_path, clean, worse), "data.poison_frac", 0.0)
    c = change["0.4"]
    assert c["agreement_change"] == pytest.approx(-0.2)
    assert c["n_seeds"] == 3 and c["n_pairs"] == n and c["reference"] == "0"
    assert c["ci"][1] < 0 and c["mde"] > 2.8 * c["se"]  # 80% power on 2 df: (4.30 + 1.06) se
    assert c["estimate"]["method"] == "crossed bootstrap over seeds x prompts"
    assert robustness.degradation_verdict(change) == "holds"
    same = robustness.change_vs_reference(_rows(tmp_path, clean, clean), "data.poison_frac", 0.0)
    assert same["0.4"]["agreement_change"] == 0 and robustness.degradation_verdict(same) == "unresolved"
    better = robustness.change_vs_reference(_rows(tmp_path, worse, clean), "data.poison_frac", 0.0)
    assert robustness.degradation_verdict(better) == "fails"
    assert robustness.degradation_verdict({}) is None


def _estimate(mean: float, se: float, df: int = 2) -> dict:
    from cwpo.stats import _p_value, mde

    return {"mean": mean, "lo": mean - 4.3 * se, "hi": mean + 4.3 * se, "se": se, "df": df,
            "p": _p_value(mean, se, df), "mde": mde(se, df), "n_seeds": df + 1, "n_prompts": 400,
            "method": "crossed bootstrap over seeds x prompts", "level": 0.95}  # fmt: skip


def test_verdicts_show_the_poison_change_at_the_largest_level():
    change = {
        "0.1": {
            "agreement_change": -0.01,
            "ci": [-0.03, 0.01],
            "mde": 0.02,
            "estimate": _estimate(-0.01, 0.01),
        },
        "0.4": {
            "agreement_change": -0.1,
            "ci": [-0.14, -0.06],
            "mde": 0.04,
            "estimate": _estimate(-0.1, 0.005),
        },
    }
    rob = {"poison": {"agreement_change_vs_reference": change}}
    family = verdicts.build_family({}, {}, rob)
    # the claimed direction is a drop: t = 20 on 2 df, p = 0.0025, a family of one
    assert (
        verdicts._poison_cell(rob, family)
        == "poison 40%: **holds**: -10.0 [-14.0, -6.0], Holm p 0.0025, MDE 4.0"
    )
    assert verdicts._poison_cell({}, family) == "not run yet"
    row = verdicts.claim_rows({}, {}, rob)[-1]
    assert row[0].startswith("Poisoned D_l") and row[3] == verdicts._poison_cell(rob, family)


def test_the_page_judges_its_claims_as_one_holm_family():
    rob = {"poison": {"agreement_change_vs_reference": {"0.4": {"agreement_change": -0.1, "ci": [-0.2, 0.0],
                                                                 "mde": 0.1, "estimate": _estimate(-0.1, 0.025)}}}}  # fmt: skip
    alone = verdicts.build_family({}, {}, rob)  # t = 4 on 2 df: p = 0.057 -> unresolved even alone
    assert alone.verdict("poison_poison")["verdict"] == "unresolved"
    rob["poison"]["agreement_change_vs_reference"]["0.4"]["estimate"] = _estimate(-0.1, 0.01)  # p = 0.0099
    assert verdicts.build_family({}, {}, rob).verdict("poison_poison")["verdict"] == "holds"
    ann = {"hh_acc_top_minus_bottom_quintile_estimate": _estimate(0.01, 0.1),
           "smollm_bt_minus_sftdpo_estimate": _estimate(0.0, 0.1)}  # fmt: skip
    three = verdicts.build_family({}, ann, rob)  # beside two null claims: Holm p = 3 x 0.0099 = 0.03
    assert three.verdict("poison_poison")["p_holm"] == pytest.approx(
        3 * rob["poison"]["agreement_change_vs_reference"]["0.4"]["estimate"]["p"]
    )
    assert len(three.claims) == 3
    # a sentiment claim without a stored estimate (runs not archived) is shown, never judged
    sent = {"h2h_cw_gt_human_noisefree_gra_diff": 0.12, "h2h_cw_gt_human_noisefree_gra_diff_ci": [0.07, 0.17],
            "h2h_cw_gt_human_noisefree_mde": 0.05, "verdict_cw_gt_human_noisefree": "holds"}  # fmt: skip
    fam = verdicts.build_family(sent, {}, {})
    assert (
        verdicts.claim_cell(sent, "cw_gt_human", "_noisefree", fam) == "not re-scorable (runs not archived)"
    )
