"""The causal-LM (dpo) annotator reads a conversation through the chat template; encoders read text.

A tiny Llama with SmolLM2's real tokenizer and chat template, trained and applied on multi-turn
pairs in UltraFeedback's layout: the prompt tokens it scores are the ones the strong model is
trained on and generates from, and the annotated file keeps the conversation's turns.
"""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from cwpo.annotator import TrainAnnotatorConfig, annotate, load_annotator, train_annotator
from cwpo.annotator.encoding import encode_pairs
from cwpo.atomic_files import write_jsonl
from cwpo.cli.main import main
from cwpo.data.chat import PROMPT_MESSAGES, row_prompt
from cwpo.data.load import load_pairs
from cwpo.data.schema import read_pairs, to_unlabeled, write_pairs
from cwpo.errors import ConfigError
from cwpo.evaluate.generation import prompt_token_ids


def _record(i: int) -> dict:
    turns = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": f"Name colour number {i}."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one?"},
    ]
    return {
        "prompt": turns[1]["content"],
        "chosen": [*turns, {"role": "assistant", "content": f"Red, a warm colour {i}."}],
        "rejected": [*turns, {"role": "assistant", "content": f"No {i}."}],
    }


@pytest.fixture(scope="module")
def chat_pairs(tmp_path_factory):
    d = tmp_path_factory.mktemp("chat-pairs")
    rows = load_pairs(write_jsonl(d / "ufb.jsonl", [_record(i) for i in range(8)])).rows
    write_pairs(d / "train.jsonl", rows)
    write_pairs(d / "unlabeled.jsonl", to_unlabeled(rows, seed=1))
    return d, rows


def _config(d, out, backbone, **kw) -> TrainAnnotatorConfig:
    return TrainAnnotatorConfig(
        train=str(d / "train.jsonl"), output=str(out), backbone=backbone, objective="dpo", epochs=1,
        sft_epochs=0, batch_size=4, max_length=128, progress=False, **kw,
    )  # fmt: skip


def test_dpo_annotator_scores_the_chat_prompt_tokens(chat_pairs, tiny_causal_lm_dir, tmp_path):
    d, rows = chat_pairs
    train_annotator(_config(d, tmp_path / "ann", tiny_causal_lm_dir, chat_template=True))
    ann = load_annotator(tmp_path / "ann")
    assert ann.chat_template is True
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    enc = ann.encode([row_prompt(rows[0])], [rows[0]["chosen"]], [rows[0]["rejected"]])
    prompt = enc.seq_a[0][: enc.start_a[0]]
    # the very prompt tokens the strong model is trained on and generates from
    assert (
        prompt
        == prompt_token_ids(tok, [rows[0][PROMPT_MESSAGES]], chat_template=True, max_prompt_length=128)[0]
    )
    # the response as TRL trains it: the assistant turn, closed by the template's end-of-turn
    assert tok.decode(enc.seq_a[0][enc.start_a[0] :]) == rows[0]["chosen"] + "<|im_end|>\n"
    out = tmp_path / "annotated.jsonl"
    annotate(tmp_path / "ann", d / "unlabeled.jsonl", out, progress=False)
    labeled = read_pairs(out)
    assert [r[PROMPT_MESSAGES] for r in labeled] == [r[PROMPT_MESSAGES] for r in rows]
    # annotate scored the turns through the template, as the annotator was trained
    direct = ann.score_pairs(
        [row_prompt(r) for r in labeled], [r["chosen"] for r in labeled], [r["rejected"] for r in labeled]
    )
    assert [r["margin"] for r in labeled] == pytest.approx(direct.abs().tolist(), abs=1e-6)


def test_without_the_template_the_annotator_reads_the_transcript(chat_pairs, tiny_causal_lm_dir, tmp_path):
    d, rows = chat_pairs
    train_annotator(_config(d, tmp_path / "plain", tiny_causal_lm_dir))
    meta = json.loads((tmp_path / "plain" / "annotator.json").read_text())
    assert "chat_template" not in meta  # an annotator folder as before: same bytes, same cache keys
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    enc = encode_pairs(tok, "dpo", [row_prompt(rows[0])], [" a"], [" b"], 128)
    assert tok.decode(enc.seq_a[0][: enc.start_a[0]]) == rows[0]["prompt"]  # the transcript


def test_chat_template_is_refused_for_encoders_in_one_line(chat_pairs, tmp_path, capsys):
    d, _ = chat_pairs
    with pytest.raises(ConfigError, match="chat_template applies to the dpo objective"):
        TrainAnnotatorConfig(train=str(d / "train.jsonl"), output=str(tmp_path / "o"), chat_template=True)
    args = ["train-annotator", "--train", str(d / "train.jsonl"), "--output", str(tmp_path / "o")]
    assert main([*args, "--chat-template"]) == 2
    err = capsys.readouterr().err
    assert "bt/pairrm encoders read the plain-text prompt" in err and "Traceback" not in err
