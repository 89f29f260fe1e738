"""What `cwpo sft` trains on: demonstrations or the chosen side of pairs."""

from __future__ import annotations

import json

import pytest

from cwpo.align.sft import read_sft_rows
from cwpo.errors import DataError


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_demonstrations_prompt_completion_and_prompt_chosen(tmp_path):
    rows, source = read_sft_rows(
        str(_write(tmp_path / "d.jsonl", [{"prompt": "A film", "completion": " so good"}]))
    )
    assert rows == [{"prompt": "A film", "completion": " so good"}] and source == "demonstrations"
    rows, _ = read_sft_rows(str(_write(tmp_path / "c.jsonl", [{"prompt": "A film", "chosen": " so good"}])))
    assert rows[0]["completion"] == " so good"


def test_pairs_train_on_chosen_and_human_labels(tmp_path):
    rows, source = read_sft_rows(
        str(_write(tmp_path / "p.jsonl", [{"prompt": "Q", "chosen": " y", "rejected": " n"}]))
    )
    assert rows == [{"prompt": "Q", "completion": " y"}] and source == "file"
    u = _write(
        tmp_path / "u.jsonl", [{"prompt": "Q", "response_a": " n", "response_b": " y", "human_label": "b"}]
    )
    rows, source = read_sft_rows(str(u))
    assert rows == [{"prompt": "Q", "completion": " y"}] and source == "human"


def test_bad_demonstrations_name_the_row(tmp_path):
    with pytest.raises(DataError, match=r"d.jsonl, row 2: empty 'completion'"):
        read_sft_rows(
            str(
                _write(
                    tmp_path / "d.jsonl",
                    [{"prompt": "a", "completion": "b"}, {"prompt": "a", "completion": " "}],
                )
            )
        )
    with pytest.raises(DataError, match=r"row 1: column 'prompt' must be text"):
        read_sft_rows(str(_write(tmp_path / "e.jsonl", [{"prompt": None, "completion": "b"}])))
