"""Gold rewards: vader, a tiny sequence-classification RM saved from config, module:function, errors."""

import math

import pytest

from cwpo.errors import ConfigError, ModelNotFoundError
from cwpo.evaluate.gold import get_gold, hh_messages


def test_vader_scores_the_response_sentiment():
    gold = get_gold("vader")
    good, bad, neutral = gold(
        ["The film", "The film", "x"],
        [" was wonderful and moving, I loved it.", " was awful, boring and bad.", " is a film"],
    )
    assert good > 0.5 and bad < -0.5 and neutral == 0.0
    assert gold.describe()["gold"] == "vader"


def test_reward_model_folder_batched_equals_one_by_one(tiny_rm_dir):
    gold = get_gold(tiny_rm_dir, batch_size=2)
    prompts = [
        "\n\nHuman: hi?\n\nAssistant:",
        "\n\nHuman: a much longer question about cooking pasta?\n\nAssistant:",
        "x",
    ]
    responses = [" hello", " boil water, add salt, cook for nine minutes", " y"]
    batched = gold(prompts, responses)
    single = [gold([p], [r])[0] for p, r in zip(prompts, responses, strict=True)]
    assert len(batched) == 3 and all(math.isfinite(s) for s in batched)
    assert batched == pytest.approx(single, abs=1e-5)
    assert len(set(batched)) == 3  # the model really looks at the input
    assert gold.describe()["text_format"] == "pair"  # MiniLM's tokenizer has no chat template


def test_callable_gold(tmp_path, monkeypatch):
    (tmp_path / "my_gold.py").write_text(
        "def length(prompts, responses):\n    return [len(r) for r in responses]\n"
        "def broken(prompts, responses):\n    return [1.0]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert get_gold("my_gold:length")(["p", "p"], ["ab", "abcd"]) == [2.0, 4.0]
    with pytest.raises(ConfigError, match="returned 1 scores for 2 responses"):
        get_gold("my_gold:broken")(["p", "p"], ["a", "b"])
    with pytest.raises(ConfigError, match="has no attribute 'nope'"):
        get_gold("my_gold:nope")
    with pytest.raises(ConfigError, match="cannot import module 'not_a_module_xyz'"):
        get_gold("not_a_module_xyz:fn")


def test_missing_gold_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"gold reward model path not found: .*no-rm.*'vader'"):
        get_gold(str(tmp_path / "no-rm"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="holds no config.json"):
        get_gold(str(tmp_path / "empty"))


def test_unknown_gold_name_names_the_alternatives():
    with pytest.raises(ConfigError, match=r"unknown gold reward 'sentiment'.*'vader'.*module:function"):
        get_gold("sentiment")


def test_unreachable_hub_id_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="cannot reach hub model 'nobody-xyz/no-such-rm'.*vader"):
        get_gold("nobody-xyz/no-such-rm")


def test_hh_messages_splits_turns():
    msgs = hh_messages("\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how are you?\n\nAssistant:", " fine")
    assert msgs == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you?"},
        {"role": "assistant", "content": "fine"},
    ]
    assert hh_messages("The movie was", " great") == [
        {"role": "user", "content": "The movie was"},
        {"role": "assistant", "content": "great"},
    ]
