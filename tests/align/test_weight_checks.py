"""Weights that would silently change what is learned are refused, in the CLI and in the trainer."""

from __future__ import annotations

import math

import pytest
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig

from cwpo.align.trainer import WeightedDPOTrainer
from cwpo.cli.main import main
from cwpo.data.schema import write_pairs
from cwpo.errors import ConfigError, DataError

ROWS = [
    {"prompt": f"\n\nHuman: question {i}?\n\nAssistant:", "chosen": f" answer {i}", "rejected": " no"}
    for i in range(4)
]


@pytest.fixture(scope="module")
def parts(tiny_causal_lm_dir, tmp_path_factory):
    args = DPOConfig(
        output_dir=str(tmp_path_factory.mktemp("w")),
        loss_type=["sigmoid"],
        use_cpu=True,
        bf16=False,
        report_to="none",
        max_length=64,
        per_device_train_batch_size=2,
    )
    return {
        "model": AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir),
        "args": args,
        "processing_class": AutoTokenizer.from_pretrained(tiny_causal_lm_dir),
    }


def _with(weights):
    return Dataset.from_list([dict(r, weight=w) for r, w in zip(ROWS, weights, strict=True)])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (
            [1.0, 0.5, math.nan, 1.0],
            r"train_dataset, row 3: column 'weight' must be a finite number >= 0, got nan",
        ),
        (
            [1.0, -0.5, 1.0, 1.0],
            r"train_dataset, row 2: column 'weight' must be a finite number >= 0, got -0.5",
        ),
        ([1.0, 1.0, 1.0, math.inf], r"train_dataset, row 4: .* got inf"),
        ([0.0, 0.0, 0.0, 0.0], r"train_dataset: every 'weight' is 0: .*nothing learned"),
    ],
)
def test_trainer_refuses_weights_that_change_the_objective(parts, weights, message):
    with pytest.raises(DataError, match=message):
        WeightedDPOTrainer(train_dataset=_with(weights), **parts)


def test_trainer_refuses_a_dataset_without_a_weight_column(parts):
    with pytest.raises(
        ConfigError, match=r"train_dataset has no 'weight' column .*1.0 everywhere is plain DPO"
    ):
        WeightedDPOTrainer(train_dataset=Dataset.from_list(ROWS), **parts)
    with pytest.raises(ConfigError, match=r"eval_dataset\['held'\] has no 'weight' column"):
        WeightedDPOTrainer(
            train_dataset=_with([1.0] * 4), eval_dataset={"held": Dataset.from_list(ROWS)}, **parts
        )


def test_collator_refuses_rows_without_a_valid_weight(parts):
    """What an IterableDataset (no column list to check up front) meets at its first batch."""
    trainer = WeightedDPOTrainer(train_dataset=_with([1.0, 0.5, 0.0, 2.0]), **parts)
    collate = trainer.data_collator
    good = [trainer.train_dataset[i] for i in range(2)]
    assert collate(good)["weight"].tolist() == [1.0, 0.5]
    missing = [good[0], {k: v for k, v in good[1].items() if k != "weight"}]
    with pytest.raises(ConfigError, match="a batch row has no 'weight' column"):
        collate(missing)
    with pytest.raises(DataError, match=r"batch, row 2: .* got nan"):
        collate([good[0], dict(good[1], weight=math.nan)])


def _align(tmp_path, policy, rows, weighting="confidence"):
    train = str(write_pairs(tmp_path / "t.jsonl", rows))
    args = ["align", "--train", train, "--policy", policy, "--output", str(tmp_path / "al")]
    return main(
        args + ["--weighting", weighting, "--max-steps", "1", "--batch-size", "2", "--max-length", "64"]
    )


def test_cli_refuses_a_weighting_that_gives_every_pair_weight_zero(tmp_path, tiny_causal_lm_dir, capsys):
    rc = _align(tmp_path, tiny_causal_lm_dir, [dict(r, confidence=0.0) for r in ROWS])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "t.jsonl: weighting 'confidence' (tanh(|d|/2)) gives every pair weight 0" in err[0]
    assert not (tmp_path / "al").exists()


def test_cli_refuses_a_weighting_without_its_column(tmp_path, tiny_causal_lm_dir, capsys):
    rc = _align(tmp_path, tiny_causal_lm_dir, ROWS, weighting="sigmoid(|d|)")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "needs a 'confidence' or 'margin' column" in err[0], err
