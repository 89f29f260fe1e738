"""The data stage end to end through the CLI: files, counts, caching, atomicity, errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cwpo.cli.main import main
from cwpo.data import read_pairs
from cwpo.data.prepare import DataConfig, prepare_data
from cwpo.errors import ConfigError


def test_cli_data_on_real_hh_harmless(hh_dir, tmp_path, capsys):
    out = tmp_path / "harmless"
    argv = ["data", "--source", str(hh_dir), "--subset", "harmless", "--output", str(out)]
    argv += ["--limit", "300", "--max-tokens", "256"]
    rc = main(argv)
    assert rc == 0
    text = capsys.readouterr().out
    assert "loaded 300 pairs" in text and "over 256 tokens" in text and "labeled:" in text
    stats = json.loads((out / "stats.json").read_text())
    files = stats["files"]
    assert (
        files["labeled"] + files["unlabeled"] + files["test"]
        == stats["after_filters"]
        == 300 - stats["dropped_too_long"]
    )
    assert len(read_pairs(out / "unlabeled.jsonl")) == files["unlabeled"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "data" and manifest["config"]["labeled_frac"] == 0.3
    # a re-run with the same inputs does nothing
    assert main(argv) == 0
    assert "cached" in capsys.readouterr().out


def test_changed_setting_is_not_served_from_cache(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": "no"}) + "\n" for i in range(20))
    )
    out = tmp_path / "out"
    cfg = DataConfig(source=str(src), output=str(out), max_tokens=0)
    assert prepare_data(cfg)["cached"] is False
    assert prepare_data(cfg)["cached"] is True
    changed = DataConfig(source=str(src), output=str(out), max_tokens=0, seed=3, overwrite=True)
    assert prepare_data(changed)["cached"] is False
    src.write_text(src.read_text() + json.dumps({"prompt": "new", "chosen": "y", "rejected": "n"}) + "\n")
    stats = prepare_data(dataclasses.replace(cfg, overwrite=True))
    assert stats["cached"] is False and stats["loaded"] == 21


def test_parquet_output_and_no_split(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": "no"}) + "\n" for i in range(5))
    )
    stats = prepare_data(
        DataConfig(
            source=str(src), output=str(tmp_path / "o"), max_tokens=0, no_split=True, file_format="parquet"
        )
    )
    assert stats["files"] == {"pairs": 5}
    assert len(read_pairs(tmp_path / "o" / "pairs.parquet")) == 5


def test_failure_leaves_previous_output_intact(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": "no"}) + "\n" for i in range(10))
    )
    out = tmp_path / "out"
    prepare_data(DataConfig(source=str(src), output=str(out), max_tokens=0))
    before = sorted(p.name for p in out.iterdir())
    src.write_text(src.read_text() + "{broken\n")
    with pytest.raises(Exception, match="malformed JSON"):
        prepare_data(DataConfig(source=str(src), output=str(out), max_tokens=0, overwrite=True))
    assert sorted(p.name for p in out.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temporary folder left


def test_config_errors_listed_at_once():
    with pytest.raises(ConfigError) as e:
        DataConfig(source="", output="", labeled_frac=2, test_frac=-1)
    msg = str(e.value)
    assert "source is required" in msg and "labeled_frac" in msg and "test_frac" in msg


def test_cli_error_is_one_line_exit_2(tmp_path, capsys):
    rc = main(
        [
            "data",
            "--source",
            str(tmp_path / "missing.jsonl"),
            "--output",
            str(tmp_path / "o"),
            "--max-tokens",
            "0",
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("cwpo data: error:") and "missing.jsonl" in err


def test_yaml_config_with_flag_override(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": "no"}) + "\n" for i in range(20))
    )
    cfg = tmp_path / "data.yaml"
    cfg.write_text(
        f"source: {src}\noutput: {tmp_path / 'o'}\nmax_tokens: 0\nlabeled_frac: 0.5\ntest_frac: 0.0\n"
    )
    assert main(["data", "--config", str(cfg), "--labeled-frac", "0.25"]) == 0
    assert json.loads((tmp_path / "o" / "stats.json").read_text())["files"]["labeled"] == 5
    cfg.write_text(f"source: {src}\noutput: {tmp_path / 'o'}\nbogus: 1\n")
    assert main(["data", "--config", str(cfg)]) == 2


def test_max_pairs_is_a_seeded_sample(tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": "no"}) + "\n" for i in range(50))
    )
    a = prepare_data(
        DataConfig(source=str(src), output=str(tmp_path / "a"), max_tokens=0, max_pairs=20, no_split=True)
    )
    prepare_data(
        DataConfig(source=str(src), output=str(tmp_path / "b"), max_tokens=0, max_pairs=20, no_split=True)
    )
    assert a["subsampled_from"] == 50 and a["files"] == {"pairs": 20}
    assert read_pairs(tmp_path / "a" / "pairs.jsonl") == read_pairs(tmp_path / "b" / "pairs.jsonl")
    with pytest.raises(ConfigError, match="max_pairs"):
        DataConfig(source="x", output="y", max_pairs=0)


def test_embedded_slice_is_loadable_by_name(tmp_path):
    from cwpo.data import load_pairs
    from cwpo.errors import DataError

    result = load_pairs("cwpo:hh-rlhf-slice")
    assert result.kind == "labeled" and len(result.rows) > 700
    assert len(result.stats["per_file"]) == 2  # harmless-base and helpful-base
    with pytest.raises(DataError, match="no embedded data set 'nope'"):
        load_pairs("cwpo:nope")


def test_poisoned_and_imbalanced_labeled_set_from_the_cli(tmp_path, hh_dir):
    out = tmp_path / "d"
    args = ["data", "--source", str(hh_dir), "--subset", "hh", "--max-tokens", "0", "--max-pairs", "600"]
    args += ["--labeled-mix", "harmless=0.9,helpful=0.1", "--poison-frac", "0.2", "--output", str(out)]
    assert main(args) == 0
    stats = json.loads((out / "stats.json").read_text())
    labeled = read_pairs(out / "labeled.jsonl")
    n = len(labeled)
    assert stats["poisoned"] == round(0.2 * n) == sum(bool(r.get("poisoned")) for r in labeled)
    assert stats["labeled_subsets"]["harmless"] == round(0.9 * n)
    unlabeled = read_pairs(out / "unlabeled.jsonl")
    assert {"harmless" in r["source"] for r in unlabeled} == {True, False}
    assert main([*args[:-2], "--poison-subset", "neither", "--output", str(tmp_path / "e")]) == 2


def test_repeated_pairs_are_reported_and_kept_in_one_split(tmp_path, capsys):
    src = tmp_path / "p.jsonl"
    rows = [{"prompt": f"q{i}", "chosen": f"yes {i}", "rejected": "no"} for i in range(30)]
    rows += [rows[3]] * 4 + [rows[8]]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert main(["data", "--source", str(src), "--output", str(out), "--max-tokens", "0"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"cwpo: warning: {src}: 5 rows repeat another row's pair (same prompt and responses; "
        "2 pairs occur more than once): each pair's copies are kept in one split"
    ]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["duplicate_pairs"] == {"repeated_pairs": 2, "extra_copies": 5}
    prompts = {
        name: [r["prompt"] for r in read_pairs(out / f"{name}.jsonl")]
        for name in ("labeled", "unlabeled", "test")
    }
    assert sum(p.count("q3") for p in prompts.values()) == 5
    assert len([name for name, p in prompts.items() if "q3" in p]) == 1
    assert len([name for name, p in prompts.items() if "q8" in p]) == 1
