"""Per-prompt evidence from evaluation rows written the way `cwpo evaluate` writes them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cwpo.errors import CWPOError
from cwpo.experiments.evidence import annotator_gold_accuracy, claim_line, evidence, head_to_head, method_gra


def _run(tmp_path, method, seed, gold_policy, gold_ref, prompts=None):
    d = tmp_path / f"{method}-{seed}"
    d.mkdir()
    prompts = prompts or [f"p{i}" for i in range(len(gold_policy))]
    rows = [
        {"prompt": p, "gold_policy": a, "gold_reference": b}
        for p, a, b in zip(prompts, gold_policy, gold_ref, strict=True)
    ]
    (d / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"method": method, "seed": seed, "eval_dir": str(d)}


def test_gra_and_head_to_head_by_hand(tmp_path):
    ref = [0.0, 0.0, 0.0, 0.0]
    rows = [
        _run(tmp_path, "cw", 0, [1.0, 1.0, 0.0, -1.0], ref),  # win win tie loss -> 0.625
        _run(tmp_path, "human", 0, [1.0, -1.0, -1.0, -1.0], ref),  # win loss loss loss -> 0.25
    ]
    g = method_gra(rows, "cw", n_boot=100)
    assert g["gra"] == pytest.approx(0.625) and g["n_prompts"] == 4 and g["ci_low"] <= 0.625 <= g["ci_high"]
    h = head_to_head(rows, "cw", "human", n_boot=100)
    # outcome differences [0, 1, 0.5, 0] -> 0.375; gold: cw vs human [tie, win, win, tie] -> 0.75
    assert h["gra_diff"] == pytest.approx(0.375)
    assert h["win_rate"] == pytest.approx(0.75)
    assert h["gold_diff"] == pytest.approx(np.mean([0, 2, 1, 0]))
    # one seed, 4 prompts: se about sd([0, 1, .5, 0]) / 2 = 0.24, p about 0.12; the verdict needs the
    # family of claims, so head_to_head gives none
    assert h["mde"] > 2.8 * h["gra_diff_se"] * 0.99 and 0.05 < h["p"] < 0.3 and "verdict" not in h


def test_evidence_tests_only_the_claims_present(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(2):
        ref = rng.normal(size=200)
        rows.append(_run(tmp_path, "cw", seed, list(ref + 1.0), list(ref)))  # always wins
        rows.append(_run(tmp_path, "ws", seed, list(ref - 1.0), list(ref)))  # always loses
    ev = evidence(rows, n_boot=200)
    assert set(ev["claims"]) == {"cw_gt_ws"}
    c = ev["claims"]["cw_gt_ws"]
    assert c["verdict"] == "holds" and c["gra_diff"] == pytest.approx(1.0) and c["win_rate"] == 1.0
    assert "holds" in claim_line(c) and "+100.0 GRA points" in claim_line(c)


def test_different_prompts_are_refused(tmp_path):
    rows = [
        _run(tmp_path, "cw", 0, [1.0], [0.0], prompts=["a"]),
        _run(tmp_path, "human", 0, [1.0], [0.0], prompts=["b"]),
    ]
    with pytest.raises(CWPOError, match="different prompts"):
        head_to_head(rows, "cw", "human")


def test_annotator_gold_accuracy_by_hand():
    pairs = [
        {"prompt": f"p{i}", "response_a": "a", "response_b": "b", "gold_a": ga, "gold_b": gb}
        for i, (ga, gb) in enumerate([(1, 0), (1, 0), (0, 1), (0, 1), (0.5, 0.5), (2, 1)])
    ]
    # the annotator picks a, a, a, b, a, b with rising confidence; p4 is a gold tie (left out)
    picks = ["a", "a", "a", "b", "a", "b"]
    annotated = [
        {"prompt": f"p{i}", "chosen": c, "rejected": "b" if c == "a" else "a", "confidence": 0.1 * i}
        for i, c in enumerate(picks)
    ]
    out = annotator_gold_accuracy(annotated, pairs, n_bins=5)
    # correct: p0 yes, p1 yes, p2 no, p3 yes, p5 no -> 3/5, bins in confidence order
    assert out["acc"] == pytest.approx(0.6) and out["n"] == 5
    assert out["by_confidence"] == [1.0, 1.0, 0.0, 1.0, 0.0]
    with pytest.raises(CWPOError, match="not in the pool"):
        annotator_gold_accuracy([{**annotated[0], "prompt": "elsewhere"}], pairs)


def test_evidence_section_lines_and_plots(tmp_path):
    from cwpo.experiments.report_evidence import evidence_section, has_gold_rows

    ref = [0.0] * 6
    rows = [_run(tmp_path, "cw", s, [1.0, 1.0, 1.0, 0.5, -1.0, 1.0], ref) for s in (0, 1)] + [
        _run(tmp_path, "human", s, [1.0, -1.0, -1.0, 0.5, -1.0, 1.0], ref) for s in (0, 1)
    ]
    assert has_gold_rows(rows)
    out = tmp_path / "report"
    out.mkdir()
    lines, plots = evidence_section({"labeled_frac=0.1": rows}, out)
    text = "\n".join(lines)
    assert "### labeled_frac=0.1" in text and "| cw | 83.3 |" in text
    assert "CW-DPO > Human-DPO" in text and "MDE" in text
    assert set(plots) == {"gra_ci.png", "head_to_head.png"}
    (tmp_path / "nogold").mkdir()
    (tmp_path / "nogold" / "rows.jsonl").write_text('{"prompt": "p", "policy_response": "x"}\n')
    assert not has_gold_rows([{"method": "cw", "seed": 0, "eval_dir": str(tmp_path / "nogold")}])
