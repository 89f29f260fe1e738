"""HH-RLHF first-turn prompts for the sentiment track: format, dedup, fixed disjoint splits."""

from __future__ import annotations

import pytest

from cwpo.data.hh_prompts import first_turn, hh_prompts
from cwpo.errors import ConfigError
from cwpo.experiments.sentiment import SentimentConfig, pair_prompts
from cwpo.experiments.sentiment import test_prompts as eval_prompts


def test_first_turn():
    assert first_turn("\n\nHuman: Hi there?\n\nAssistant: Hello.\n\nHuman: more") == "Hi there?"
    assert first_turn("no human turn") is None and first_turn("\n\nHuman:   \n\nAssistant: x") is None


def test_slice_prompts_are_distinct_and_in_hh_format():
    rows = hh_prompts("cwpo:hh-rlhf-slice", max_words=32)
    texts = [r["prompt"] for r in rows]
    assert len(texts) == len(set(texts)) > 700
    assert all(t.startswith("\n\nHuman: ") and t.endswith("\n\nAssistant:") for t in texts)
    assert hh_prompts("cwpo:hh-rlhf-slice", max_words=32) == rows  # the order is fixed
    assert len(hh_prompts("cwpo:hh-rlhf-slice", max_words=5)) < len(rows)


def test_test_val_and_pool_prompts_are_disjoint_and_fixed_across_seeds():
    cfg = SentimentConfig(
        prompt_source="cwpo:hh-rlhf-slice",
        n_sft_texts=0,
        n_prompts=100,
        n_test_prompts=50,
        n_val_prompts=20,
        eval_set="test",
    )
    test = {p["prompt"] for p in eval_prompts(cfg, seed=0)}
    assert test == {p["prompt"] for p in eval_prompts(cfg, seed=3)} and len(test) == 50
    val = {p["prompt"] for p in eval_prompts(SentimentConfig(**{**cfg.__dict__, "eval_set": "val"}), seed=0)}
    pool0, pool1 = ({p["prompt"] for p in pair_prompts(cfg, s)} for s in (0, 1))
    assert len(val) == 20 and len(pool0) == 100 and pool0 != pool1
    assert not (test & val) and not (test & pool0) and not (val & pool0) and not (test & pool1)


def test_hh_prompts_need_a_fixed_split_and_no_sft_texts():
    with pytest.raises(ConfigError, match="eval_set"):
        SentimentConfig(prompt_source="cwpo:hh-rlhf-slice", n_sft_texts=0)
    with pytest.raises(ConfigError, match="n_sft_texts"):
        SentimentConfig(prompt_source="cwpo:hh-rlhf-slice", eval_set="test")
