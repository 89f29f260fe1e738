"""Wrong types in a stage's YAML or flags name the field and the expected type."""

from __future__ import annotations

import pytest

from cwpo.cli.main import main
from cwpo.config import build_config
from cwpo.errors import ConfigError


@pytest.mark.parametrize(
    "stage, yaml_text, needles",
    [
        (
            "align",
            "train: t.jsonl\npolicy: p\noutput: o\nmax_steps: ten\nlr: fast\n",
            ["max_steps: expected an integer", "'ten'", "lr: expected a number", "'fast'"],
        ),
        ("sft", "train: t.jsonl\nmodel: m\noutput: o\nmax_steps: ten\n", ["max_steps: expected an integer"]),
        ("data", "source: s.jsonl\noutput: o\nlabeled_frac: abc\n", ["labeled_frac: expected a number"]),
        (
            "train-annotator",
            "train: t.jsonl\noutput: o\nepochs: [1, 2]\ncalibrate: maybe\n",
            ["epochs: expected an integer", "calibrate: expected a boolean"],
        ),
        (
            "annotate",
            "annotator: a\ninput: i.jsonl\noutput: o.jsonl\nbatch_size: big\n",
            ["batch_size: expected an integer"],
        ),
        (
            "evaluate",
            "policy: p\nreference: r\nprompts: p.jsonl\noutput: o\ntemperature: hot\n",
            ["temperature: expected a number"],
        ),
    ],
)
def test_stage_yaml_with_wrong_types_names_every_field(stage, yaml_text, needles, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml_text)
    assert main([stage, "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "not supported" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert str(cfg) in err  # where: the YAML file


def test_yaml_strings_that_are_plainly_numbers_are_converted():
    from cwpo.align.align import AlignConfig
    from cwpo.config import coerce

    # PyYAML reads `lr: 1e-5` as a string (YAML 1.1 wants a dot): that is a number, not an error
    cfg = build_config(
        AlignConfig,
        {"train": "t", "policy": "p", "output": "o", "lr": "1e-5", "max_steps": "10", "lora": "no"},
    )
    assert (cfg.lr, cfg.max_steps, cfg.lora) == (1e-5, 10, False)
    values, errors = coerce(AlignConfig, {"tau": None, "max_steps": 2.0, "seed": True, "loss": "dpo"})
    assert values["max_steps"] == 2 and values["tau"] is None
    epochs = coerce(AlignConfig, {"epochs": 1})[0]["epochs"]
    assert epochs == 1 and type(epochs) is int  # unchanged: a recipe's stage cache key stays the same
    assert errors == ["seed: expected an integer, got bool True"]
    with pytest.raises(ConfigError, match="max_steps: expected an integer or null, got float 2.5"):
        build_config(AlignConfig, {"train": "t", "policy": "p", "output": "o", "max_steps": 2.5})
