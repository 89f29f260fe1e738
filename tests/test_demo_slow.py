"""The README's main command on the real offline models (slow: minutes; run with -m slow)."""

from __future__ import annotations

import json

import pytest

from cwpo.cli.main import main


@pytest.mark.slow
def test_cwpo_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    for method in ("human", "ws", "cw"):
        assert method in text
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == {"human", "ws", "cw"}
    assert all(0 <= r["pref_acc"] <= 1 for r in rows)
    assert (out / "report" / "report.md").exists()
