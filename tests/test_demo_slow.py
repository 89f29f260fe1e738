"""The README's main command on the real offline models (slow: minutes; run with -m slow)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~11 min on 2 idle cores, over the default 900 s when they are shared
def test_cwpo_demo_end_to_end(tmp_path, cwpo_cli, noise_in):
    out = tmp_path / "demo"
    proc = cwpo_cli(["demo", "--output", str(out)], timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # no per-step metric dict, weights-loading bar or Python warning in the terminal
    assert noise_in(proc.stdout + proc.stderr) == []
    for method in ("human", "ws", "cw"):
        assert method in proc.stdout
    assert f"log: {tmp_path / 'demo.log'}" in proc.stdout
    assert "step 1: {'loss'" in (tmp_path / "demo.log").read_text()
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == {"human", "ws", "cw"}
    assert all(0 <= r["gra"] <= 1 for r in rows)
    # the table's numbers come with CIs, and the report carries the same table
    assert "95% CI" in proc.stdout and "Weak annotator (MiniLM-L6 BT) vs the gold" in proc.stdout
    report = (out / "report" / "report.md").read_text()
    assert "## The demo's table" in report and "cwpo run configs/cpu/sentiment-v2.yaml" in report
