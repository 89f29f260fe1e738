"""Bad annotator folders and questionable successes of train-annotator / annotate."""

from __future__ import annotations

import shutil

import pytest
from annotator_rows import hh_rows

from cwpo.annotator import TrainAnnotatorConfig, train_annotator
from cwpo.annotator.model import Annotator
from cwpo.cli.main import main
from cwpo.data.schema import to_unlabeled, write_pairs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs-data")
    write_pairs(d / "train.jsonl", hh_rows(16))
    write_pairs(d / "one.jsonl", hh_rows(1))
    write_pairs(d / "unlabeled.jsonl", to_unlabeled(hh_rows(20), seed=3))
    long = " ".join(f"word{j}" for j in range(200)) + " {i}"
    write_pairs(d / "long.jsonl", to_unlabeled(hh_rows(3, prompt=long), seed=3))
    return d


@pytest.fixture(scope="module")
def ann_dir(data, tiny_encoder_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ann") / "annotator"
    train_annotator(
        TrainAnnotatorConfig(
            train=str(data / "train.jsonl"),
            output=str(out),
            backbone=tiny_encoder_dir,
            epochs=1,
            batch_size=8,
            max_length=64,
            progress=False,
        )
    )
    return out


def _one_error_line(err: str) -> str:
    """The one line cwpo printed (library progress bars may precede it); no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("cwpo ")]
    assert len(lines) == 1, err
    return lines[0]


def _annotate(ann, inp, out, *extra):
    return main(
        ["annotate", "--annotator", str(ann), "--input", str(inp), "--output", str(out)]
        + ["--progress", "false", *extra]
    )


def test_annotator_without_tokenizer_json_is_refused_before_scoring(ann_dir, data, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(ann_dir, broken)
    (broken / "tokenizer.json").unlink()  # tokenizer_config.json alone loads a 5-token vocabulary
    assert (broken / "tokenizer_config.json").exists() and not (broken / "vocab.txt").exists()
    out = tmp_path / "o.jsonl"
    assert _annotate(broken, data / "unlabeled.jsonl", out) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert f"annotator directory {broken}: tokenizer files are missing" in err, err
    assert not out.exists() and not (tmp_path / "o.jsonl.parts").exists()


def test_annotator_with_another_models_tokenizer_is_refused(
    ann_dir, data, tmp_path, capsys, smollm_tokenizer_dir
):
    broken = tmp_path / "broken"
    shutil.copytree(ann_dir, broken)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{smollm_tokenizer_dir}/{name}", broken / name)  # 49,152 tokens, embedding 30,522
    out = tmp_path / "o.jsonl"
    assert _annotate(broken, data / "unlabeled.jsonl", out) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert "the tokenizer has 49152 tokens but the model's embedding has 30522 rows" in err, err
    assert not out.exists()


def test_train_annotator_on_one_pair_warns_once(data, tiny_encoder_dir, tmp_path, capsys):
    args = ["train-annotator", "--train", str(data / "one.jsonl"), "--backbone", tiny_encoder_dir]
    args += ["--epochs", "1", "--max-length", "48", "--progress", "false"]
    assert main([*args, "--output", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning: train-annotator: only 1 training pair(s)") == 1, captured.err
    assert "warning" not in captured.out


def test_annotate_dropping_every_pair_is_an_error(ann_dir, data, tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    assert _annotate(ann_dir, data / "long.jsonl", out, "--too-long", "drop") == 2
    err = _one_error_line(capsys.readouterr().err)
    assert "--too-long drop dropped all 3 pairs" in err, err
    assert not out.exists() and not (tmp_path / "o.jsonl.parts").exists()
    assert _annotate(ann_dir, data / "long.jsonl", out) == 0  # truncate (the default) labels them
    assert "3 of 3 pairs labeled" in capsys.readouterr().out


def test_resumed_annotate_says_so(ann_dir, data, tmp_path, capsys, monkeypatch):
    original = Annotator.margins_from_encoded
    calls = {"n": 0}

    def dying(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # Ctrl-C while scoring the third chunk
        return original(self, *a, **k)

    out = tmp_path / "o.jsonl"
    monkeypatch.setattr(Annotator, "margins_from_encoded", dying)
    assert _annotate(ann_dir, data / "unlabeled.jsonl", out, "--chunk-size", "5") == 130
    assert "interrupted; completed chunks are kept and a re-run resumes" in capsys.readouterr().err
    monkeypatch.setattr(Annotator, "margins_from_encoded", original)
    assert _annotate(ann_dir, data / "unlabeled.jsonl", out, "--chunk-size", "5") == 0
    assert "resumed: 2 of 4 chunks reused from an interrupted run" in capsys.readouterr().out
    assert _annotate(ann_dir, data / "unlabeled.jsonl", tmp_path / "fresh.jsonl", "--chunk-size", "5") == 0
    assert "chunks reused" not in capsys.readouterr().out
    assert out.read_bytes() == (tmp_path / "fresh.jsonl").read_bytes()


def test_ctrl_c_promises_a_resume_only_where_there_is_one(data, tmp_path, capsys, monkeypatch):
    import cwpo.annotator.train as train_module

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train_annotator", interrupted)
    rc = main(["train-annotator", "--train", str(data / "train.jsonl"), "--output", str(tmp_path / "a")])
    assert rc == 130
    err = capsys.readouterr().err
    assert "cwpo train-annotator: interrupted" in err and "resume" not in err, err
