"""``--output`` never destroys what cwpo did not write, for every stage.

Each CLI case is the probe a user ran: before this guard, ``cwpo data`` replaced the folder
holding its own input (deleting the input file and a README), ``train-annotator`` deleted the
unrelated files of its output folder, and ``data --output pairs.csv`` turned a file into a folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import toy_pairs

from cwpo.cli.main import main
from cwpo.data.schema import write_pairs
from cwpo.errors import CWPOError
from cwpo.outputs import atomic_dir, foreign_files, guard_output, write_manifest


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _data(source, output, *extra) -> int:
    return main(["data", "--source", str(source), "--output", str(output), "--max-tokens", "0", *extra])


def test_data_refuses_the_folder_holding_its_input(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    write_pairs(src / "a.jsonl", toy_pairs())
    (src / "README").write_text("keep\n")
    before = _snapshot(src)
    assert _data(src / "a.jsonl", src) == 2
    assert "not a cwpo `data` output" in _one_error_line(capsys)
    assert _snapshot(src) == before


def test_data_refuses_an_existing_file_and_the_working_folder(tmp_path, capsys, monkeypatch):
    write_pairs(tmp_path / "a.jsonl", toy_pairs())
    target = tmp_path / "pairs.csv"
    target.write_text("mine\n")
    assert _data(tmp_path / "a.jsonl", target) == 2
    assert "existing file" in _one_error_line(capsys)
    assert target.read_text() == "mine\n"
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    assert _data("a.jsonl", ".") == 2
    _one_error_line(capsys)
    assert _snapshot(tmp_path) == before


def test_data_replaces_its_own_output_only_with_overwrite(tmp_path, capsys):
    write_pairs(tmp_path / "a.jsonl", toy_pairs())
    out = tmp_path / "out"
    assert _data(tmp_path / "a.jsonl", out) == 0
    assert _data(tmp_path / "a.jsonl", out) == 0  # same inputs: cached, nothing replaced
    assert "cached" in capsys.readouterr().out
    assert _data(tmp_path / "a.jsonl", out, "--seed", "1") == 2
    assert "--overwrite" in _one_error_line(capsys)
    assert _data(tmp_path / "a.jsonl", out, "--seed", "1", "--overwrite", "true") == 0
    capsys.readouterr()
    (out / "notes.txt").write_text("my notes\n")  # a user's file inside a cwpo output
    assert _data(tmp_path / "a.jsonl", out, "--seed", "2", "--overwrite", "true") == 2
    assert "notes.txt" in _one_error_line(capsys)
    assert (out / "notes.txt").read_text() == "my notes\n"


def test_train_annotator_refuses_a_folder_with_other_files(tmp_path, tiny_encoder_dir, capsys):
    write_pairs(tmp_path / "train.jsonl", toy_pairs(8))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work\n")
    before = _snapshot(out)
    args = ["train-annotator", "--train", str(tmp_path / "train.jsonl"), "--backbone", tiny_encoder_dir]
    assert main([*args, "--output", str(out), "--epochs", "1", "--progress", "false"]) == 2
    assert "not a cwpo `train-annotator` output" in _one_error_line(capsys)
    assert _snapshot(out) == before
    data_out = tmp_path / "data"  # an output of another stage is refused too, with its name
    write_manifest(data_out, "data", {}, "x")
    assert main([*args, "--output", str(data_out), "--epochs", "1"]) == 2
    assert "holds a cwpo `data` output" in _one_error_line(capsys)


def test_annotate_checks_its_output_before_scoring(tmp_path, cli_annotator, capsys, monkeypatch):
    ann, _ = cli_annotator

    import cwpo.annotator.model as model

    def never(*a, **k):
        raise AssertionError("scored before checking --output")

    monkeypatch.setattr(model.Annotator, "margins_from_encoded", never)
    existing_dir = tmp_path / "results"
    existing_dir.mkdir()
    (existing_dir / "x.txt").write_text("x")
    args = ["annotate", "--annotator", str(ann), "--input", str(tmp_path / "u.jsonl"), "--progress", "false"]
    assert main([*args, "--output", str(existing_dir)]) == 2
    assert "existing folder" in _one_error_line(capsys)
    assert not list(tmp_path.glob("*.parts")) and (existing_dir / "x.txt").read_text() == "x"
    foreign = tmp_path / "labels.jsonl"
    foreign.write_text("not cwpo's\n")
    assert main([*args, "--output", str(foreign)]) == 2
    assert "not written by cwpo" in _one_error_line(capsys)
    assert foreign.read_text() == "not cwpo's\n"
    parts = tmp_path / "new.jsonl.parts"  # a folder that merely has the chunk folder's name
    parts.mkdir()
    (parts / "keep.txt").write_text("k")
    assert main([*args, "--output", str(tmp_path / "new.jsonl")]) == 2
    _one_error_line(capsys)
    assert (parts / "keep.txt").read_text() == "k"


@pytest.mark.parametrize("stage", ["sft", "align", "evaluate"])
def test_training_and_evaluate_stages_refuse_foreign_folders(tmp_path, stage, tiny_causal_lm_dir, capsys):
    rows = [dict(r, confidence=0.5) for r in toy_pairs(4)]
    train = str(write_pairs(tmp_path / "t.jsonl", rows))
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.csv").write_text("1,2\n")
    common = ["--output", str(out)]
    if stage == "sft":
        args = ["sft", "--train", train, "--model", tiny_causal_lm_dir, "--max-steps", "1", *common]
    elif stage == "align":
        args = ["align", "--train", train, "--policy", tiny_causal_lm_dir, "--max-steps", "1", *common]
    else:
        prompts = ["--prompts", train, "--pairs", train]
        args = [
            "evaluate",
            "--policy",
            tiny_causal_lm_dir,
            "--reference",
            tiny_causal_lm_dir,
            *prompts,
            *common,
        ]
    assert main(args) == 2
    assert f"not a cwpo `{stage}` output" in _one_error_line(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["data.csv"]


def test_guard_rules(tmp_path):
    assert guard_output(tmp_path / "new", "data") is False
    (tmp_path / "empty").mkdir()
    assert guard_output(tmp_path / "empty", "data") is False
    run = tmp_path / "run"
    write_manifest(run, "run", {}, "k")
    (run / "results.jsonl").write_text("")
    assert guard_output(run, "run", in_place=True) is True  # a run folder continues in place
    with pytest.raises(CWPOError, match="--overwrite"):
        guard_output(run, "run")
    old = tmp_path / "old"  # a manifest without a file list (older cwpo): never replaced
    old.mkdir()
    (old / "manifest.json").write_text('{"stage": "data"}')
    assert foreign_files(old) is None
    with pytest.raises(CWPOError, match="older cwpo"):
        guard_output(old, "data", overwrite=True)


def test_atomic_dir_never_replaces_a_folder_cwpo_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.txt").write_text("a")
    with pytest.raises(CWPOError, match="did not write"), atomic_dir(mine) as tmp:
        (tmp / "b").write_text("b")
    assert (mine / "a.txt").read_text() == "a" and not (mine / "b").exists()
    ours = tmp_path / "ours"
    with atomic_dir(ours) as tmp:
        (tmp / "b").write_text("b")
        write_manifest(tmp, "data", {}, "k")
    with atomic_dir(ours) as tmp:  # cwpo's own folder, every file listed: replaced
        (tmp / "c").write_text("c")
    assert sorted(p.name for p in ours.iterdir()) == ["c"]


def test_hidden_files_are_files_and_empty_folders_are_nothing(tmp_path):
    out = tmp_path / "out"
    write_manifest(out, "data", {}, "k")
    (out / ".env").write_text("SECRET=1\n")  # a user's hidden file is protected like any other
    with pytest.raises(CWPOError, match=".env"):
        guard_output(out, "data", overwrite=True)
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)  # what a run killed before its first file leaves
    assert guard_output(killed, "sft") is False


def test_demo_refuses_a_foreign_folder_in_one_line(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README").write_text("keep\n")
    assert main(["demo", "--output", str(out)]) == 2
    captured = capsys.readouterr()
    assert "not a cwpo `run` output" in _one_error_line_of(captured.err) and captured.out == ""
    assert (out / "README").read_text() == "keep\n"


def _one_error_line_of(err: str) -> str:
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err
