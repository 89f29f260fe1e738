"""Training, saving, loading and labelling with tiny models (seconds each)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from annotator_rows import hh_rows

from cwpo.annotator import TrainAnnotatorConfig, annotate, encode_pairs, load_annotator, train_annotator
from cwpo.annotator.model import Annotator
from cwpo.annotator.score import label_rows
from cwpo.data.schema import to_unlabeled, write_pairs
from cwpo.errors import ConfigError, CWPOError, ModelNotFoundError


def _rows(n=12):
    return hh_rows(n, ids=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("annot-data")
    write_pairs(d / "train.jsonl", _rows(16))
    write_pairs(d / "eval.jsonl", _rows(8))
    write_pairs(d / "unlabeled.jsonl", to_unlabeled(_rows(20), seed=3))
    return d


def _train(data, out, backbone, objective="bt", **kw):
    cfg = TrainAnnotatorConfig(
        train=str(data / "train.jsonl"),
        output=str(out),
        backbone=backbone,
        objective=objective,
        eval=str(data / "eval.jsonl"),
        epochs=kw.pop("epochs", 3),
        batch_size=4,
        lr=kw.pop("lr", 1e-3),
        max_length=kw.pop("max_length", 64),
        progress=False,
        **kw,
    )
    return train_annotator(cfg)


@pytest.fixture(scope="module")
def bt_dir(data, tiny_encoder_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bt") / "annotator"
    _train(data, out, tiny_encoder_dir, calibrate=True, calibration_frac=0.25, epochs=4)
    return out


def test_bt_annotator_trains_and_saves(bt_dir):
    meta = json.loads((bt_dir / "annotator.json").read_text())
    metrics = json.loads((bt_dir / "metrics.json").read_text())
    manifest = json.loads((bt_dir / "manifest.json").read_text())
    assert meta["objective"] == "bt" and meta["max_length"] == 64
    assert meta["temperature"] == metrics["temperature"] > 0
    assert manifest["stage"] == "train-annotator" and manifest["config"]["objective"] == "bt"
    assert metrics["n_train"] == 12  # 16 minus the 25% calibration slice
    first, *_, last = metrics["epoch_mean_losses"]
    assert last < first  # it learns the obvious preference (long kind answers)
    assert metrics["eval"]["n"] == 8 and sum(metrics["eval"]["confidence_histogram"]) == 8
    assert set(metrics["calibration_slice"]) == {"before", "after"}
    assert (
        metrics["calibration_slice"]["after"]["nll"] <= metrics["calibration_slice"]["before"]["nll"] + 1e-9
    )


def test_score_pairs_is_antisymmetric_and_deterministic(bt_dir):
    ann = load_annotator(bt_dir)
    rows = _rows(5)
    p, c, r = [x["prompt"] for x in rows], [x["chosen"] for x in rows], [x["rejected"] for x in rows]
    m1 = ann.score_pairs(p, c, r)
    assert m1.shape == (5,) and m1.dtype == torch.float32
    torch.testing.assert_close(ann.score_pairs(p, r, c), -m1)
    torch.testing.assert_close(load_annotator(bt_dir).score_pairs(p, c, r), m1, rtol=0, atol=0)


def test_pairrm_and_dpo_objectives(data, tiny_encoder_dir, tiny_causal_lm_dir, tmp_path):
    rows = _rows(4)
    p, c, r = [x["prompt"] for x in rows], [x["chosen"] for x in rows], [x["rejected"] for x in rows]
    m = _train(data, tmp_path / "pairrm", tiny_encoder_dir, "pairrm", epochs=1)
    assert m["objective"] == "pairrm" and "eval" in m
    ann = load_annotator(tmp_path / "pairrm")
    torch.testing.assert_close(ann.score_pairs(p, r, c), -ann.score_pairs(p, c, r))

    m = _train(data, tmp_path / "dpo", tiny_causal_lm_dir, "dpo", epochs=2, lr=5e-3, sft_epochs=1)
    assert m["sft_steps"] == 4 and m["train_steps"] == 8
    assert (tmp_path / "dpo" / "reference" / "config.json").exists()
    ann = load_annotator(tmp_path / "dpo")
    margins = ann.score_pairs(p, c, r)
    # trained on these pairs, the policy gives the chosen (kind, long) answer the higher implicit
    # reward: every margin chosen - rejected is positive, and swapping the responses negates it
    assert torch.isfinite(margins).all() and (margins > 0).all(), margins
    torch.testing.assert_close(ann.score_pairs(p, r, c), -margins)
    # the implicit reward is β·(log π − log π_ref): swapping policy and reference negates it
    swapped = Annotator("dpo", ann.reference, ann.tokenizer, 64, reference=ann.model, beta=ann.beta)
    torch.testing.assert_close(swapped.score_pairs(p, c, r), -margins)
    # the implicit reward is β·(log π − log π_ref): with the reference as policy it is exactly 0
    same = Annotator("dpo", ann.reference, ann.tokenizer, 64, reference=ann.reference)
    assert same.score_pairs(p, c, r).abs().max() == 0


def test_config_errors_are_listed_together():
    with pytest.raises(ConfigError) as e:
        TrainAnnotatorConfig(train="", output="", epochs=0, lr=-1)
    for word in ("train", "output", "epochs", "lr"):
        assert word in str(e.value)


def test_label_assignment():
    rows = [
        {"prompt": "x", "response_a": "A", "response_b": "B", "human_label": "a"},
        {"prompt": "x", "response_a": "A", "response_b": "B", "human_label": "a"},
        {"prompt": "x", "response_a": "A", "response_b": "B", "extra": 7},
    ]
    out = label_rows(rows, torch.tensor([1.0, -2.0, 0.0]))
    assert [(o["chosen"], o["rejected"]) for o in out] == [("A", "B"), ("B", "A"), ("A", "B")]
    assert [o["margin"] for o in out] == [1.0, 2.0, 0.0]
    assert out[0]["confidence"] == pytest.approx(0.462117, abs=1e-6)
    assert out[1]["confidence"] == pytest.approx(0.761594, abs=1e-6)
    assert [o.get("human_agrees") for o in out] == [True, False, None]
    assert out[2]["extra"] == 7 and "human_label" in out[0]


def test_annotate_labels_agree_with_score_pairs(bt_dir, data, tmp_path):
    out = tmp_path / "labeled.jsonl"
    stats = annotate(bt_dir, data / "unlabeled.jsonl", out, chunk_size=6, batch_size=4, progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    src = [json.loads(line) for line in (data / "unlabeled.jsonl").read_text().splitlines()]
    assert stats["n_output"] == len(rows) == 20 and stats["n_human_labels"] == 20
    margins = load_annotator(bt_dir).score_pairs(
        [s["prompt"] for s in src], [s["response_a"] for s in src], [s["response_b"] for s in src]
    )
    for s, o, m in zip(src, rows, margins.tolist(), strict=True):
        assert o["id"] == s["id"] and o["margin"] >= 0 and 0 <= o["confidence"] < 1
        assert o["chosen"] == (s["response_a"] if m >= 0 else s["response_b"])
        assert o["margin"] == pytest.approx(abs(m), rel=1e-5, abs=1e-6)
        assert o["human_agrees"] == ((m >= 0) == (s["human_label"] == "a"))
    assert not (tmp_path / "labeled.jsonl.parts").exists()
    # a second call with the same inputs reuses the result
    assert annotate(bt_dir, data / "unlabeled.jsonl", out, chunk_size=6, batch_size=4, progress=False)[
        "cached"
    ]


def test_annotate_labeled_input_treats_chosen_as_a(bt_dir, data, tmp_path):
    out = tmp_path / "o.jsonl"
    stats = annotate(bt_dir, data / "eval.jsonl", out, progress=False)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    metrics = json.loads((bt_dir / "metrics.json").read_text())
    assert stats["human_agreement"] == pytest.approx(metrics["eval"]["accuracy"], abs=1e-9)
    assert all(r["human_label"] == "a" for r in rows)


def test_resume_after_kill_gives_identical_rows(bt_dir, data, tmp_path, monkeypatch):
    full = tmp_path / "full.jsonl"
    annotate(bt_dir, data / "unlabeled.jsonl", full, chunk_size=3, batch_size=4, progress=False)

    calls = {"n": 0}
    original = Annotator.margins_from_encoded

    def dying(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed while scoring the third chunk
        return original(self, *a, **k)

    out = tmp_path / "resumed.jsonl"
    monkeypatch.setattr(Annotator, "margins_from_encoded", dying)
    with pytest.raises(KeyboardInterrupt):
        annotate(bt_dir, data / "unlabeled.jsonl", out, chunk_size=3, batch_size=4, progress=False)
    assert not out.exists()
    assert len(list((tmp_path / "resumed.jsonl.parts").glob("chunk-*.json"))) == 2
    monkeypatch.setattr(Annotator, "margins_from_encoded", original)
    stats = annotate(bt_dir, data / "unlabeled.jsonl", out, chunk_size=3, batch_size=4, progress=False)
    assert stats["pairs_scored_here"] == 20 - 6  # the two finished chunks were not redone
    assert out.read_bytes() == full.read_bytes()


def test_stale_parts_from_other_settings_are_discarded(bt_dir, data, tmp_path):
    out = tmp_path / "o.jsonl"
    parts = tmp_path / "o.jsonl.parts"
    parts.mkdir()
    (parts / "meta.json").write_text(json.dumps({"key": "something else"}))
    (parts / "chunk-000000.json").write_text(
        json.dumps({"rows": [{"bogus": 1}], "truncated": 0, "dropped_too_long": 0})
    )
    annotate(bt_dir, data / "unlabeled.jsonl", out, chunk_size=6, progress=False)
    assert all("bogus" not in line for line in out.read_text().splitlines())


def test_nan_scores_are_never_written(bt_dir, data, tmp_path, monkeypatch):
    def nan_margins(self, enc, *a, **k):
        m = torch.zeros(len(enc))
        m[1] = float("nan")
        return m

    monkeypatch.setattr(Annotator, "margins_from_encoded", nan_margins)
    out = tmp_path / "o.jsonl"
    with pytest.raises(CWPOError, match=r"non-finite scores .*row\(s\) \[2\]"):
        annotate(bt_dir, data / "unlabeled.jsonl", out, chunk_size=50, progress=False)
    assert not out.exists()


def test_too_long_pairs_truncated_or_dropped(bt_dir, data, tmp_path):
    ann = load_annotator(bt_dir)
    long_prompt = "\n\nHuman: " + " ".join(f"word{i}" for i in range(200)) + " END\n\nAssistant:"
    enc = encode_pairs(ann.tokenizer, "bt", [long_prompt, "hi"], [" yes", " ok"], [" no", " no"], 64)
    assert enc.truncated == [True, False]
    assert max(len(s) for s in enc.seq_a + enc.seq_b) <= 64
    tail = ann.tokenizer(" END\n\nAssistant: yes", add_special_tokens=False)["input_ids"]
    assert enc.seq_a[0][-1 - len(tail) : -1] == tail  # prompt cut from the left, response intact

    rows = _rows(5)
    rows[1]["prompt"] = long_prompt
    rows[3]["prompt"] = long_prompt
    write_pairs(tmp_path / "in.jsonl", rows)
    s1 = annotate(bt_dir, tmp_path / "in.jsonl", tmp_path / "t.jsonl", progress=False)
    assert (s1["n_output"], s1["truncated"], s1["dropped_too_long"]) == (5, 2, 0)
    s2 = annotate(bt_dir, tmp_path / "in.jsonl", tmp_path / "d.jsonl", too_long="drop", progress=False)
    assert (s2["n_output"], s2["truncated"], s2["dropped_too_long"]) == (3, 0, 2)
    kept = [json.loads(line)["id"] for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert kept == [0, 2, 4]


@pytest.mark.parametrize(
    "remove, message",
    [
        ("annotator.json", "annotator.json is missing"),
        ("config.json", "config.json is missing"),
        ("model.safetensors", "no model weights"),
        ("tokenizer.json+tokenizer_config.json+vocab.txt", "tokenizer files"),
    ],
)
def test_annotator_dir_with_missing_files(bt_dir, data, tmp_path, remove, message):
    broken = tmp_path / "broken"
    shutil.copytree(bt_dir, broken)
    for name in remove.split("+"):
        (broken / name).unlink(missing_ok=True)
    with pytest.raises(ModelNotFoundError, match=message):
        load_annotator(broken)
    with pytest.raises(ModelNotFoundError, match=message):
        annotate(broken, data / "unlabeled.jsonl", tmp_path / "o.jsonl", progress=False)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        load_annotator(tmp_path / "nowhere")


def test_cli_train_and_annotate(data, tiny_encoder_dir, tmp_path, capsys):
    from cwpo.cli.main import main

    ann = tmp_path / "ann"
    rc = main(
        [
            "train-annotator",
            "--train",
            str(data / "train.jsonl"),
            "--output",
            str(ann),
            "--backbone",
            tiny_encoder_dir,
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--max-length",
            "48",
            "--progress",
            "false",
        ]
    )
    assert rc == 0 and (ann / "annotator.json").exists()
    rc = main(
        [
            "annotate",
            "--annotator",
            str(ann),
            "--input",
            str(data / "unlabeled.jsonl"),
            "--output",
            str(tmp_path / "o.jsonl"),
            "--progress",
            "false",
        ]
    )
    assert rc == 0 and "20 of 20 pairs labeled" in capsys.readouterr().out
    rc = main(
        [
            "annotate",
            "--annotator",
            str(tmp_path / "nope"),
            "--input",
            str(data / "unlabeled.jsonl"),
            "--output",
            str(tmp_path / "x.jsonl"),
        ]
    )
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_two_processes_write_the_same_rows(bt_dir, data, tmp_path, launch_two_ranks):
    """Two accelerate ranks (see conftest.launch_two_ranks): each scores its chunks, rank 0 merges."""
    single = tmp_path / "single.jsonl"
    annotate(bt_dir, data / "unlabeled.jsonl", single, chunk_size=3, batch_size=4, progress=False)
    multi = tmp_path / "multi.jsonl"
    cwpo = Path(sys.executable).parent / "cwpo"
    cmd = [
        str(cwpo),
        "annotate",
        "--annotator",
        str(bt_dir),
        "--input",
        str(data / "unlabeled.jsonl"),
        "--output",
        str(multi),
        "--chunk-size",
        "3",
        "--batch-size",
        "4",
        "--progress",
        "false",
    ]
    proc = launch_two_ranks(cmd, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads((tmp_path / "multi.jsonl.stats.json").read_text())
    assert stats["processes"] == 2 and stats["pairs_scored_here"] < 20  # rank 0 did only its share
    assert multi.read_bytes() == single.read_bytes()
