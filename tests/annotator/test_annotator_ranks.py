"""train-annotator on two accelerate ranks (gloo, CPU) equals one process: same losses, same weights.

Each optimizer step's batch is split over the ranks (rank r takes its r-th, r + 2-th, ... pair);
a rank's loss is its pairs' sum over the whole batch's count (tokens for the SFT part of ``dpo``)
and the gradients are summed over the ranks, which is the one-process step: the losses and the
trained annotators' margins match to float rounding. A batch of 5 splits
unevenly (3 and 2), so a rank that averaged over its own pairs would not match. Dropout is off
(its masks depend on the split).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from cwpo.annotator.model import load_annotator
from cwpo.annotator.train import TrainAnnotatorConfig, train_annotator
from cwpo.data.schema import write_pairs
from cwpo.models import resolve_model

SETTINGS = {"epochs": 2, "batch_size": 5, "max_length": 64, "progress": False, "bf16": False}
SCRIPT = """
from cwpo.annotator.model import load_annotator
from cwpo.annotator.train import TrainAnnotatorConfig, train_annotator
runs = {runs!r}
for name, values in runs.items():
    train_annotator(TrainAnnotatorConfig(**values))
"""


@pytest.fixture
def bert_without_dropout(tmp_path) -> str:
    tok = AutoTokenizer.from_pretrained(resolve_model("minilm-l6"))
    config = BertConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=128,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(tmp_path / "bert")
    tok.save_pretrained(tmp_path / "bert")
    return str(tmp_path / "bert")


def _margins(folder, rows) -> torch.Tensor:
    annotator = load_annotator(folder)
    return annotator.score_pairs(
        [r["prompt"] for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows], 8
    )


def _runs(train: str, out, bert: str, llama: str) -> dict:
    return {
        "bt": {**SETTINGS, "train": train, "backbone": bert, "output": str(out / "bt")},
        "dpo": {
            **SETTINGS,
            "train": train,
            "backbone": llama,
            "objective": "dpo",
            "output": str(out / "dpo"),
        },
    }


def test_two_ranks_train_the_one_process_annotator(
    tmp_path, labeled_rows, bert_without_dropout, tiny_causal_lm_dir, launch_two_ranks
):
    train = str(write_pairs(tmp_path / "train.jsonl", labeled_rows[:10]))
    one = _runs(train, tmp_path / "one", bert_without_dropout, tiny_causal_lm_dir)
    for values in one.values():
        train_annotator(TrainAnnotatorConfig(**values))

    two = _runs(train, tmp_path / "two", bert_without_dropout, tiny_causal_lm_dir)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(runs=two))
    proc = launch_two_ranks(
        [str(script)], timeout=300, cwd=tmp_path,
        before_retry=lambda: shutil.rmtree(tmp_path / "two", ignore_errors=True),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    for name in ("bt", "dpo"):
        a, b = (json.loads((tmp_path / r / name / "metrics.json").read_text()) for r in ("one", "two"))
        assert b["processes"] == 2 and a["processes"] == 1
        assert a["train_steps"] == b["train_steps"] == 4
        assert b["epoch_mean_losses"] == pytest.approx(a["epoch_mean_losses"], rel=1e-5), name
        assert b.get("eval_accuracy") == a.get("eval_accuracy")
        # the annotators agree on every margin. (Not every weight to 1e-5: a direction with no
        # gradient at all, e.g. the last LayerNorm's bias under BT, which shifts both scores
        # alike, gets Adam steps of ±lr from rounding noise, which the split changes.)
        ma, mb = (_margins(tmp_path / r / name, labeled_rows[:10]) for r in ("one", "two"))
        assert torch.allclose(ma, mb, atol=1e-5, rtol=1e-4), (name, ma, mb)
        assert ma.abs().max() > 1e-3  # trained: the margins are not all zero
