"""Messages and provenance of the data stage name the real place."""

from __future__ import annotations

import json

from cwpo.cli.main import main
from cwpo.data.load import load_pairs

PAIR = '{"prompt": "p %d", "chosen": "a kind answer %d", "rejected": "no %d"}\n'


def test_malformed_json_names_the_real_column(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    truncated = '{"prompt": "x", "chosen": "y",'  # 30 characters: the error is at column 31
    bad.write_text(PAIR % (0, 0, 0) + truncated + "\n" + PAIR % (1, 1, 1))
    assert main(["data", "--source", str(bad), "--output", str(tmp_path / "o"), "--max-tokens", "0"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}, row 2: malformed JSON" in err and "(column 31)" in err, err
    bad.write_text('{"prompt": "x", "chosen": nope}\n')
    assert main(["data", "--source", str(bad), "--output", str(tmp_path / "o"), "--max-tokens", "0"]) == 2
    assert "row 1: malformed JSON: Expecting value (column 27)" in capsys.readouterr().err


def test_single_file_source_in_the_current_folder_has_no_leading_slash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "name.jsonl").write_text("".join(PAIR % (i, i, i) for i in range(20)))
    assert [r["source"] for r in load_pairs("name.jsonl").rows][:1] == ["name.jsonl"]
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "x.jsonl").write_text(PAIR % (0, 0, 0))
    assert load_pairs(sub / "x.jsonl").rows[0]["source"] == "sub/x.jsonl"  # folder/file as before
    assert main(["data", "--source", "name.jsonl", "--output", "out", "--max-tokens", "0"]) == 0
    written = [p for p in (tmp_path / "out").iterdir() if p.is_file()]
    assert written
    for path in written:
        assert '"/name.jsonl"' not in path.read_text(), path
    rows = [json.loads(line) for line in (tmp_path / "out" / "labeled.jsonl").read_text().splitlines()]
    assert {r.get("source") for r in rows} == {"name.jsonl"}
