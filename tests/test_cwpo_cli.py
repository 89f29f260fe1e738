"""The console script: every stage listed, errors as one line, recipes validated without work."""

from __future__ import annotations

import subprocess
import sys

from cwpo.cli.main import COMMANDS, main


def test_help_lists_every_stage():
    out = subprocess.run(
        [sys.executable, "-m", "cwpo.cli.main", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in COMMANDS:
        assert name in out, name


def test_every_stage_has_help(capsys):
    for name in COMMANDS:
        try:
            main([name, "--help"])
        except SystemExit as e:
            assert e.code == 0
        assert capsys.readouterr().out.startswith(f"usage: cwpo {name}")


def test_run_validate_and_report_errors(tmp_path, capsys):
    assert main(["run", "demo", "--validate"]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["run", "no-such-recipe"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "results.jsonl" in capsys.readouterr().err


def test_run_under_a_launcher_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """Every rank would run the whole pipeline and wait on the others' stage locks (a deadlock)."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["run", "demo", "--output", str(tmp_path / "r")]) == 2
    assert "does not run under accelerate launch" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_models_list(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m-instruct" in out and "minilm-l6" in out
