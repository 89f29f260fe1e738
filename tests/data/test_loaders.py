"""Every loader on files written in exactly the layouts it reads, plus the real HH-RLHF files."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cwpo.data import HH_SUBSETS, load_pairs, read_pairs, write_pairs
from cwpo.errors import DataError


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


PAIRS = [
    {"prompt": "Q1?", "chosen": " good one", "rejected": " bad one", "id": 1},
    {"prompt": "Q2?", "chosen": " good two", "rejected": " bad two", "id": 2},
]


@pytest.mark.parametrize("subset,files", [(s, len(d)) for s, d in HH_SUBSETS.items()])
def test_hh_rlhf_real_subsets(hh_dir, subset, files):
    result = load_pairs(hh_dir, subset=subset)
    assert result.kind == "labeled"
    assert len(result.stats["per_file"]) == files
    row = result.rows[0]
    assert row["prompt"].endswith("\n\nAssistant:")
    assert row["chosen"] and row["rejected"] and row["chosen"] != row["rejected"]
    # every pair read is either loaded or skipped with a reason
    total = sum(result.stats["per_file"].values()) + sum(result.stats["skipped"].values())
    base = {"harmless": 2312, "helpful": 2354, "hh": 2312 + 2354}  # the paper's subsets: -base folders
    expected = {**base, "helpful-all": 2354 + 1137 + 2749, "hh-all": 8552}[subset]
    assert total == expected


def test_hh_rlhf_skips_and_counts_real_quirks(hh_dir):
    stats = load_pairs(hh_dir, subset="helpful-all").stats
    assert stats["skipped"]["identical"] == 36  # the data README's count (the three helpful folders)
    assert stats["skipped"]["context_mismatch"] > 0
    assert any("row" in e for e in stats["skipped_examples"])


def test_hh_rlhf_single_file_and_strict(tmp_path):
    good = {
        "chosen": "\n\nHuman: hi\n\nAssistant: hello there",
        "rejected": "\n\nHuman: hi\n\nAssistant: go away",
    }
    mismatch = {"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: HO\n\nAssistant: b"}
    f = write_jsonl(tmp_path / "hh.jsonl", [good, mismatch, good])
    result = load_pairs(f, format="hh-rlhf")
    assert [r["chosen"] for r in result.rows] == [" hello there"] * 2
    assert result.rows[0]["prompt"] == "\n\nHuman: hi\n\nAssistant:"
    assert result.stats["skipped"] == {"context_mismatch": 1}
    with pytest.raises(DataError, match=r"hh.jsonl, row 2: .*context"):
        load_pairs(f, format="hh-rlhf", strict=True)


def test_hh_rlhf_gz_detected_automatically(tmp_path):
    rec = {"chosen": "\n\nHuman: x\n\nAssistant: yes", "rejected": "\n\nHuman: x\n\nAssistant: no"}
    f = tmp_path / "t.jsonl.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(json.dumps(rec) + "\n")
    assert load_pairs(f).rows[0]["chosen"] == " yes"


@pytest.mark.parametrize("ext", ["jsonl", "json", "csv", "parquet"])
def test_generic_formats(tmp_path, ext):
    f = tmp_path / f"pairs.{ext}"
    if ext == "jsonl":
        write_jsonl(f, PAIRS)
    elif ext == "json":
        f.write_text(json.dumps(PAIRS))
    elif ext == "csv":
        f.write_text("prompt,chosen,rejected,id\nQ1?, good one, bad one,1\nQ2?, good two, bad two,2\n")
    else:
        pq.write_table(pa.Table.from_pylist(PAIRS), f)
    result = load_pairs(f)
    assert result.kind == "labeled"
    assert [r["prompt"] for r in result.rows] == ["Q1?", "Q2?"]
    assert result.rows[1]["chosen"] == " good two"
    assert "id" in result.rows[0]  # extra columns are kept


def test_column_map_and_unlabeled(tmp_path):
    f = write_jsonl(tmp_path / "q.jsonl", [{"question": "Q?", "good": "yes", "bad": "no"}])
    row = load_pairs(f, column_map={"prompt": "question", "chosen": "good", "rejected": "bad"}).rows[0]
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("Q?", "yes", "no")
    g = write_jsonl(tmp_path / "u.jsonl", [{"prompt": "Q", "response_a": "a", "response_b": "b"}])
    assert load_pairs(g).kind == "unlabeled"


def test_ultrafeedback_layout(tmp_path):
    rec = {
        "prompt": "Write a haiku",
        "prompt_id": "p1",
        "chosen": [
            {"role": "user", "content": "Write a haiku"},
            {"role": "assistant", "content": "Leaves fall"},
        ],
        "rejected": [{"role": "user", "content": "Write a haiku"}, {"role": "assistant", "content": "No."}],
        "messages": [],
        "score_chosen": 8.0,
        "score_rejected": 2.0,
    }
    pq.write_table(pa.Table.from_pylist([rec]), tmp_path / "ufb.parquet")
    row = load_pairs(tmp_path / "ufb.parquet").rows[0]
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("Write a haiku", "Leaves fall", "No.")
    assert row["score_chosen"] == 8.0


def test_tldr_layout(tmp_path):
    rec = {
        "info": {"id": "t1", "post": "My cat sleeps all day.", "title": "Cat", "subreddit": "cats"},
        "summaries": [{"text": "cat sleeps", "policy": "a"}, {"text": "dog barks", "policy": "b"}],
        "choice": 0,
        "worker": "w",
    }
    row = load_pairs(write_jsonl(tmp_path / "tldr.jsonl", [rec])).rows[0]
    assert row["prompt"] == "SUBREDDIT: r/cats\nTITLE: Cat\nPOST: My cat sleeps all day.\nTL;DR:"
    assert (row["chosen"], row["rejected"]) == (" cat sleeps", " dog barks")


def test_shp_layout(tmp_path):
    recs = [
        {
            "post_id": "a",
            "domain": "askscience",
            "history": "Why is the sky blue?",
            "human_ref_A": "Rayleigh",
            "human_ref_B": "magic",
            "labels": 1,
            "score_ratio": 3.0,
        },
        {
            "post_id": "b",
            "domain": "askscience",
            "history": "Why?",
            "human_ref_A": "dunno",
            "human_ref_B": "because",
            "labels": 0,
            "score_ratio": 2.0,
        },
    ]
    rows = load_pairs(write_jsonl(tmp_path / "shp.jsonl", recs), format="shp").rows
    assert rows[0]["chosen"] == " Rayleigh" and rows[0]["rejected"] == " magic"
    assert rows[1]["chosen"] == " because"
    assert rows[0]["prompt"].startswith("POST: Why is the sky blue?")


def test_hub_id_unreachable_offline_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="cannot load hub dataset 'nobody-here/no-such-set'.*local"):
        load_pairs("nobody-here/no-such-set")


# ---- bad input: clear errors naming file and row, or skipped and counted ----


def test_missing_column_is_fatal_and_named(tmp_path):
    f = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Q", "chosen": "a", "rejectd": "b"}])
    with pytest.raises(DataError, match=r"bad.jsonl, row 1: .*\['rejected'\].*column map"):
        load_pairs(f)


def test_empty_response_skipped_or_strict(tmp_path):
    f = write_jsonl(
        tmp_path / "e.jsonl", [PAIRS[0], {"prompt": "Q", "chosen": "  ", "rejected": "b"}, PAIRS[1]]
    )
    result = load_pairs(f)
    assert len(result.rows) == 2 and result.stats["skipped"] == {"empty_response": 1}
    assert "e.jsonl, row 2" in result.stats["skipped_examples"][0]
    with pytest.raises(DataError, match=r"e.jsonl, row 2: empty response in column 'chosen'"):
        load_pairs(f, strict=True)


def test_null_and_nan_responses(tmp_path):
    f = tmp_path / "n.parquet"
    pq.write_table(
        pa.Table.from_pylist([PAIRS[0], {"prompt": "Q", "chosen": None, "rejected": "b", "id": 3}]), f
    )
    assert load_pairs(f).stats["skipped"] == {"empty_response": 1}
    g = tmp_path / "nan.json"
    g.write_text(
        '[{"prompt": "Q", "chosen": NaN, "rejected": "b"}, {"prompt": "Q", "chosen": "a", "rejected": "b"}]'
    )
    assert load_pairs(g).stats["skipped"] == {"empty_response": 1}


def test_identical_pair_skipped_and_counted(tmp_path):
    f = write_jsonl(tmp_path / "i.jsonl", [PAIRS[0], {"prompt": "Q", "chosen": "same", "rejected": "same"}])
    result = load_pairs(f)
    assert len(result.rows) == 1 and result.stats["skipped"] == {"identical": 1}


def test_malformed_json_names_row(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text(json.dumps(PAIRS[0]) + "\n" + '{"prompt": "Q", "chosen": \n')
    with pytest.raises(DataError, match=r"m.jsonl, row 2: malformed JSON"):
        load_pairs(f)


def test_non_utf8_names_row(tmp_path):
    f = tmp_path / "u.jsonl"
    f.write_bytes(
        json.dumps(PAIRS[0]).encode() + b"\n" + b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n'
    )
    with pytest.raises(DataError, match=r"u.jsonl, row 2: not UTF-8"):
        load_pairs(f)


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.json", "empty.csv"])
def test_empty_file(tmp_path, name):
    f = tmp_path / name
    f.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_pairs(f)


def test_all_rows_invalid_is_an_error(tmp_path):
    f = write_jsonl(tmp_path / "x.jsonl", [{"prompt": "Q", "chosen": "s", "rejected": "s"}])
    with pytest.raises(DataError, match="no valid pairs"):
        load_pairs(f)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="unknown format"):
        load_pairs(tmp_path, format="xml")
    with pytest.raises(DataError, match="no such file"):
        load_pairs(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="file type"):
        (tmp_path / "a.txt").write_text("x")
        load_pairs(tmp_path / "a.txt")


def test_write_read_roundtrip_jsonl_and_parquet(tmp_path):
    for name in ("p.jsonl", "p.parquet"):
        write_pairs(tmp_path / name, PAIRS)
        assert read_pairs(tmp_path / name) == PAIRS


def test_read_pairs_validates(tmp_path):
    f = write_jsonl(tmp_path / "r.jsonl", [PAIRS[0], {"prompt": "Q", "chosen": "", "rejected": "x"}])
    with pytest.raises(DataError, match=r"r.jsonl, row 2: empty response"):
        read_pairs(f)
    g = write_jsonl(tmp_path / "s.jsonl", [{"a": 1}])
    with pytest.raises(DataError, match="neither labeled"):
        read_pairs(g)
