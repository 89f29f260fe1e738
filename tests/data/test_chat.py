"""Chat data end to end: training and generation feed a chat model the same prompt tokens.

SmolLM2's real tokenizer and chat template (ChatML) on a tiny model: the prompt tokens TRL puts
before the chosen and rejected responses of a conversational training row are exactly the tokens
``cwpo evaluate --chat-template`` generates from, for a one-turn text prompt and a multi-turn
message list alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import chat_trainer
from transformers import AutoTokenizer

from cwpo.align import AlignConfig, SFTConfig, align, sft
from cwpo.align.align import training_rows
from cwpo.data.chat import conversational_pair
from cwpo.data.schema import write_pairs
from cwpo.errors import ConfigError
from cwpo.evaluate.generation import prompt_token_ids

PROMPTS = [
    "What is a cat?",
    [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one?"},
    ],
]


def test_training_and_generation_see_the_same_prompt_tokens(tmp_path, tiny_causal_lm_dir):
    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    assert "<|im_start|>" in tok.chat_template  # the real SmolLM2 (ChatML) template
    rows = [{"prompt": p, "chosen": " A kind answer.", "rejected": " No.", "weight": 0.5} for p in PROMPTS]
    trainer = chat_trainer(tmp_path, tiny_causal_lm_dir, rows)
    for i, prompt in enumerate(PROMPTS):
        trained = trainer.train_dataset[i]["prompt_ids"]
        generated = prompt_token_ids(tok, [prompt], chat_template=True, max_prompt_length=256)[0]
        assert trained == generated
        text = tok.decode(trained)
        assert text.endswith("<|im_start|>assistant\n")  # the answer follows the assistant header
        assert tok.decode(trainer.train_dataset[i]["chosen_ids"]).startswith("A kind answer.<|im_end|>")
    assert text.count("<|im_start|>user") == 2  # the multi-turn prompt kept its turns


def test_chat_rows_keep_their_messages_and_columns():
    row = conversational_pair({"prompt": PROMPTS[1], "chosen": " Red.", "rejected": " 7", "weight": 0.3})
    assert row["prompt"] == PROMPTS[1] and row["weight"] == 0.3
    assert row["chosen"] == [{"role": "assistant", "content": "Red."}]
    plain = [{"prompt": "x", "chosen": " a", "rejected": " b"}]
    assert training_rows(plain, chat_template=False) == plain


def test_sft_and_align_train_on_chat_messages(tmp_path, labeled_rows, tiny_causal_lm_dir):
    train = str(write_pairs(tmp_path / "t.jsonl", [dict(r, confidence=0.5) for r in labeled_rows[:4]]))
    common = {"train": train, "max_steps": 1, "batch_size": 2, "max_length": 96, "chat_template": True}
    s = sft(SFTConfig(**common, model=tiny_causal_lm_dir, output=str(tmp_path / "sft")))
    a = align(AlignConfig(**common, policy=s["output"], output=str(tmp_path / "al"), weighting="confidence"))
    assert s["global_step"] == a["global_step"] == 1
    saved = json.loads((Path(a["output"]) / "cwpo_config.json").read_text())
    assert saved["chat_template"] is True


def test_a_model_without_a_chat_template_is_refused_before_any_work(
    tmp_path, labeled_rows, tiny_causal_lm_dir
):
    import shutil

    plain = tmp_path / "no-template"
    shutil.copytree(tiny_causal_lm_dir, plain)
    cfg_path = plain / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(cfg))
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    train = str(write_pairs(tmp_path / "t.jsonl", labeled_rows[:2]))
    out = tmp_path / "o"
    with pytest.raises(ConfigError, match="has no chat template"):
        sft(SFTConfig(train=train, model=str(plain), output=str(out), chat_template=True))
    assert not out.exists()


def test_a_recipe_uses_one_chat_template_for_every_stage():
    from cwpo.experiments.recipe import Recipe, validate

    data = {"source": "pairs.jsonl"}
    same = Recipe(
        data=data,
        sft={"chat_template": True},
        align={"chat_template": True},
        evaluate={"chat_template": True},
    )
    assert validate(same) == []
    mixed = Recipe(data=data, sft={"chat_template": True}, evaluate={"chat_template": False})
    assert any("chat_template must be the same in sft, align and evaluate" in e for e in validate(mixed))
