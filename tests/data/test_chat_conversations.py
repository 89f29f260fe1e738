"""Multi-turn conversations keep their turns from ``cwpo data`` to SFT, alignment and generation.

A small file in UltraFeedback-binarized's layout (chosen and rejected are whole chats) goes
through the data stage (length filter with SmolLM2's real tokenizer, split), SFT and alignment
with ``chat_template`` on a tiny model, and ``cwpo evaluate --chat-template``: the earlier turns
reach the model as turns of the tokenizer's chat template, and training and generation see the
same prompt tokens.
"""

from __future__ import annotations

import json

import pytest
from tests.conftest import chat_trainer
from transformers import AutoTokenizer

from cwpo.align import AlignConfig, SFTConfig, align, sft
from cwpo.align.align import prepare_rows, training_rows
from cwpo.align.sft import read_sft_rows
from cwpo.atomic_files import write_jsonl
from cwpo.cli.main import main
from cwpo.data.chat import PROMPT_MESSAGES, chat_pair_texts, conversational_demo, row_prompt
from cwpo.data.load import load_pairs
from cwpo.data.prepare import DataConfig, prepare_data
from cwpo.data.schema import read_pairs
from cwpo.errors import DataError
from cwpo.evaluate import generation, preference
from cwpo.evaluate.evaluate import EvalConfig, evaluate
from cwpo.evaluate.generation import prompt_token_ids
from cwpo.models.logprobs import tokenize_pair


def _chat(i: int, answer: str, earlier: str = "Blue.") -> list[dict]:
    return [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": f"Name colour number {i}."},
        {"role": "assistant", "content": earlier},
        {"role": "user", "content": "Another one?"},
        {"role": "assistant", "content": answer},
    ]


def _record(i: int, earlier: str = "Blue.") -> dict:
    return {
        "prompt": f"Name colour number {i}.",
        "prompt_id": f"p{i}",
        "chosen": _chat(i, f"Red, a warm colour {i}.", earlier),
        "rejected": _chat(i, f"No {i}.", earlier),
        "messages": _chat(i, f"Red, a warm colour {i}."),
        "score_chosen": 8.0,
        "score_rejected": 2.0,
    }


def _one_turn(i: int) -> dict:
    ask = {"role": "user", "content": f"Write haiku {i}"}
    return {
        "prompt": f"Write haiku {i}",
        "chosen": [ask, {"role": "assistant", "content": f"Leaves fall {i}"}],
        "rejected": [ask, {"role": "assistant", "content": "No."}],
    }


def test_the_loader_keeps_the_turns_before_the_answer(tmp_path):
    rows = load_pairs(write_jsonl(tmp_path / "ufb.jsonl", [_record(0), _one_turn(1)])).rows
    multi, single = rows
    assert multi[PROMPT_MESSAGES] == _chat(0, "")[:4]
    assert (multi["chosen"], multi["rejected"]) == ("Red, a warm colour 0.", "No 0.")
    # the text prompt is the whole conversation, for the stages that read text
    assert multi["prompt"] == (
        "\n\nSystem: You are terse.\n\nHuman: Name colour number 0.\n\nAssistant: Blue."
        "\n\nHuman: Another one?\n\nAssistant:"
    )
    # one user turn: the row a plain-text data set gives, no messages column
    assert {k: v for k, v in single.items() if k != "source"} == {
        "prompt": "Write haiku 1",
        "chosen": "Leaves fall 1",
        "rejected": "No.",
    }


def test_trl_conversational_layout_and_differing_turns(tmp_path):
    trl = {
        "prompt": _chat(0, "")[:4],
        "chosen": [{"role": "assistant", "content": "Red."}],
        "rejected": [{"role": "assistant", "content": "7"}],
    }
    other = _record(1)
    other["rejected"] = [
        *_chat(1, "")[:2],
        {"role": "user", "content": "Something else"},
        _chat(1, "No.")[-1],
    ]
    result = load_pairs(write_jsonl(tmp_path / "t.jsonl", [trl, other]), "ultrafeedback")
    assert result.rows[0][PROMPT_MESSAGES] == trl["prompt"] and result.rows[0]["chosen"] == "Red."
    assert result.stats["skipped"] == {"context_mismatch": 1}


def test_data_stage_keeps_messages_through_length_filter_and_split(tmp_path, smollm_tokenizer_dir):
    src = write_jsonl(tmp_path / "ufb.jsonl", [_record(i) for i in range(10)])
    out = tmp_path / "data"
    cfg = DataConfig(
        source=str(src), output=str(out), tokenizer=smollm_tokenizer_dir, max_tokens=64, test_frac=0.2
    )
    stats = prepare_data(cfg)
    assert stats["dropped_too_long"] == 0 and stats["after_filters"] == 10
    for name in ("labeled", "unlabeled", "test"):
        for row in read_pairs(out / f"{name}.jsonl"):
            assert row[PROMPT_MESSAGES][1]["content"].startswith("Name colour number")
            assert len(row[PROMPT_MESSAGES]) == 4
    # the length filter counts the whole conversation (46 tokens here), not the first user turn:
    # a long earlier answer drops a pair
    long = [_record(i, earlier="Blue, " * 20 + "blue.") for i in range(5)]
    src2 = write_jsonl(tmp_path / "ufb2.jsonl", long + [_record(i) for i in range(5, 10)])
    cfg2 = DataConfig(**{**vars(cfg), "source": str(src2), "output": str(tmp_path / "d2"), "max_tokens": 50})
    assert prepare_data(cfg2)["dropped_too_long"] == 5


def test_bad_prompt_messages_are_one_line_and_exit_2(tmp_path, capsys):
    bad = {
        "prompt": "x",
        "chosen": "a",
        "rejected": "b",
        PROMPT_MESSAGES: [{"role": "robot", "content": "hi"}],
    }
    path = write_jsonl(tmp_path / "bad.jsonl", [bad])
    with pytest.raises(DataError, match="'prompt_messages' message 0 must be"):
        read_pairs(path)
    code = main(["align", "--train", str(path), "--policy", "x", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "bad.jsonl, row 1" in err and "prompt_messages" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


def test_training_and_generation_see_every_turn_as_the_same_tokens(tmp_path, tiny_causal_lm_dir):
    rows = load_pairs(write_jsonl(tmp_path / "ufb.jsonl", [_record(0)])).rows
    rows = [dict(rows[0], weight=1.0)]
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    trainer = chat_trainer(tmp_path, tiny_causal_lm_dir, rows)
    trained = trainer.train_dataset[0]["prompt_ids"]
    assert (
        trained == prompt_token_ids(tok, [row_prompt(rows[0])], chat_template=True, max_prompt_length=256)[0]
    )
    # preference accuracy scores the response tokens TRL trained on, after the same prompt
    head, chosen = chat_pair_texts(tok, row_prompt(rows[0]), rows[0]["chosen"])
    ids, start = tokenize_pair(tok, head, chosen, 256)
    assert ids[:start] == trained and ids[start:] == trainer.train_dataset[0]["chosen_ids"]
    text = tok.decode(trained)
    assert "<|im_start|>system\nYou are terse.<|im_end|>" in text
    assert text.count("<|im_start|>user") == 2 and "<|im_start|>assistant\nBlue.<|im_end|>" in text
    # without the template, the trainer reads the transcript and no messages column
    plain = training_rows(rows, chat_template=False)[0]
    assert PROMPT_MESSAGES not in plain and plain["prompt"] == rows[0]["prompt"]


def test_sft_align_and_evaluate_carry_the_turns(tmp_path, tiny_causal_lm_dir, monkeypatch):
    rows = load_pairs(write_jsonl(tmp_path / "ufb.jsonl", [_record(i) for i in range(4)])).rows
    train = write_jsonl(tmp_path / "train.jsonl", [dict(r, confidence=0.7) for r in rows])
    sft_rows, _ = read_sft_rows(str(train))
    assert sft_rows[0][PROMPT_MESSAGES] == rows[0][PROMPT_MESSAGES]
    common = {"train": str(train), "max_steps": 1, "batch_size": 2, "max_length": 128, "chat_template": True}
    s = sft(SFTConfig(**common, model=tiny_causal_lm_dir, output=str(tmp_path / "sft")))
    a = align(AlignConfig(**common, policy=s["output"], output=str(tmp_path / "al"), weighting="confidence"))
    assert s["global_step"] == a["global_step"] == 1
    # what the trainers were handed: the turns as the prompt's messages
    assert conversational_demo(sft_rows[0])["prompt"] == rows[0][PROMPT_MESSAGES]
    pairs, _ = prepare_rows(AlignConfig(**common, policy=s["output"], output=str(tmp_path / "x")))
    assert training_rows(pairs, chat_template=True)[0]["prompt"] == rows[0][PROMPT_MESSAGES]

    seen, scored = [], []
    real = generation.prompt_token_ids
    monkeypatch.setattr(
        generation, "prompt_token_ids", lambda tok, ps, *a: seen.extend(ps) or real(tok, ps, *a)
    )
    real_lp = preference.cached_sequence_logprobs
    monkeypatch.setattr(
        preference,
        "cached_sequence_logprobs",
        lambda m, ps, rs, **k: scored.extend(ps) or real_lp(m, ps, rs, **k),
    )
    out = tmp_path / "eval"
    cfg = EvalConfig(
        policy=a["output"], reference=s["output"], prompts=str(train), pairs=str(train), gold="vader", output=str(out),
        max_new_tokens=3, batch_size=4, n_boot=10, chat_template=True, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    evaluate(cfg, progress=False)
    assert seen[:4] == [r[PROMPT_MESSAGES] for r in rows]  # the turns, not the transcript
    assert scored[0].startswith("<|im_start|>system\nYou are terse.<|im_end|>")  # preference accuracy
    first = json.loads((out / "rows.jsonl").read_text().splitlines()[0])
    assert first["prompt"] == rows[0]["prompt"]
