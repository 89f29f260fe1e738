from __future__ import annotations

import json

from cwpo.cli.main import main
from cwpo.data.schema import write_pairs


def test_cli_sft_and_align(tmp_path, labeled_rows, tiny_causal_lm_dir, capsys):
    train = str(write_pairs(tmp_path / "t.jsonl", [dict(r, confidence=0.5) for r in labeled_rows[:4]]))
    sft_dir = tmp_path / "sft"
    assert (
        main(
            [
                "sft",
                "--train",
                train,
                "--model",
                tiny_causal_lm_dir,
                "--output",
                str(sft_dir),
                "--max-steps",
                "1",
                "--batch-size",
                "2",
                "--max-length",
                "64",
            ]
        )
        == 0
    )
    out = tmp_path / "al"
    assert (
        main(
            [
                "align",
                "--train",
                train,
                "--policy",
                str(sft_dir),
                "--output",
                str(out),
                "--loss",
                "rdpo",
                "--weighting",
                "confidence",
                "--max-steps",
                "1",
                "--batch-size",
                "2",
                "--max-length",
                "64",
                "--full",
            ]
        )
        == 0
    )
    assert "confidence" in capsys.readouterr().out
    cfg = json.loads((out / "cwpo_config.json").read_text())
    assert cfg["lora"] is False and cfg["loss"] == "rdpo" and (out / "model.safetensors").exists()


def test_cli_errors_are_one_line(tmp_path, labeled_rows, capsys):
    train = str(write_pairs(tmp_path / "t.jsonl", labeled_rows[:2]))
    assert (
        main(
            ["align", "--train", train, "--policy", "p", "--output", "o", "--beta", "-1", "--epsilon", "0.6"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "beta" in err and "epsilon" in err and len(err.strip().splitlines()) == 1
    assert main(["align", "--train", train, "--policy", "p", "--output", "o", "--rounds", "3"]) == 2
    assert "only apply with --online" in capsys.readouterr().err
