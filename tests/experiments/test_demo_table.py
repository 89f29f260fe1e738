"""The demo's table and sentence are computed from the rows: CIs, head-to-heads, what it cannot show."""

from __future__ import annotations

import json

from cwpo.experiments.demo_table import SCALE_UP, demo_sentence, demo_summary, format_demo_table


def _run(tmp_path, method, gold_policy, seed=0):
    d = tmp_path / f"{method}-{seed}"
    d.mkdir()
    rows = [{"prompt": f"p{i}", "gold_policy": g, "gold_reference": 0.0} for i, g in enumerate(gold_policy)]
    (d / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"method": method, "seed": seed, "eval_dir": str(d)}


def test_table_and_sentence_from_rows(tmp_path):
    n = 60
    rows = [
        _run(tmp_path, "human", [1.0] * 50 + [-1.0] * 10),  # GRA 83%: alignment worked
        _run(tmp_path, "ws", [1.0] * 30 + [-1.0] * 30),  # 50%: not beyond noise
        _run(tmp_path, "cw", [1.0] * 45 + [-1.0] * 15),
    ]
    s = demo_summary(rows, n_boot=200)
    assert abs(s["gra"]["human"]["gra"] - 50 / n) < 1e-9 and s["gra"]["human"]["ci_low"] > 0.5
    assert s["gra"]["ws"]["ci_low"] < 0.5 < s["gra"]["ws"]["ci_high"]
    assert set(s["cw_vs"]) == {"human", "ws"}
    table = format_demo_table(s)
    assert "human" in table and "83.3" in table and "cw beats ws on" in table and "MDE" in table
    sentence = demo_sentence(s)
    assert "Alignment worked here: human, cw" in sentence and "1 seed and 60 test prompts" in sentence
    assert SCALE_UP in sentence


def test_sentence_when_nothing_moved(tmp_path):
    rows = [_run(tmp_path, m, [1.0] * 10 + [-1.0] * 10) for m in ("human", "cw")]
    assert demo_sentence(demo_summary(rows, n_boot=200)).startswith("No method beat the SFT model")
