"""Generation on the tiny Llama: determinism, seeds, batching, cache hit, exact resume."""

import pytest

import cwpo.models.loading as loading
from cwpo.errors import ConfigError
from cwpo.evaluate.generation import generate_responses, row_seeds

PROMPTS = ["The movie was", "I think that this film is really", "Hello", "The movie was"]
KW = {"max_new_tokens": 6, "temperature": 1.0, "top_p": 1.0, "seed": 1, "batch_size": 2, "progress": False}


def test_same_settings_and_seed_give_identical_text_without_cache(tiny_causal_lm_dir, tmp_path):
    a = generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path / "c1", **KW)
    b = generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path / "c2", **KW)
    assert a == b and len(a) == 4 and all(isinstance(t, str) and t for t in a)
    assert a[0] != a[3]  # a repeated prompt gets its own stream (copy number in its seed)
    other = generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path / "c3", **{**KW, "seed": 2})
    assert other != a


def test_a_prompt_sample_does_not_depend_on_its_batch(tiny_causal_lm_dir, tmp_path):
    kw = {**KW, "dtype": "float32"}
    together = generate_responses(
        tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path / "a", **{**kw, "batch_size": 4}
    )
    alone = generate_responses(
        tiny_causal_lm_dir, PROMPTS[1:2], cache_dir=tmp_path / "b", **{**kw, "batch_size": 1}
    )
    assert alone[0] == together[1]
    assert row_seeds(["x", "y", "x"], 0)[0] == row_seeds(["x"], 0)[0] != row_seeds(["x", "y", "x"], 0)[2]


def test_tiny_top_p_and_zero_temperature_are_greedy(tiny_causal_lm_dir, tmp_path):
    greedy = generate_responses(
        tiny_causal_lm_dir, PROMPTS[:2], cache_dir=tmp_path, **{**KW, "temperature": 0.0}
    )
    greedy2 = generate_responses(
        tiny_causal_lm_dir, PROMPTS[:2], cache_dir=tmp_path, **{**KW, "temperature": 0.0, "seed": 9}
    )
    nucleus = generate_responses(tiny_causal_lm_dir, PROMPTS[:2], cache_dir=tmp_path, **{**KW, "top_p": 1e-6})
    assert greedy == greedy2 == nucleus


def test_second_call_is_a_cache_hit_that_loads_nothing(tiny_causal_lm_dir, tmp_path, monkeypatch):
    stats = {}
    first = generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path, stats=stats, **KW)
    assert stats["cache_hit"] is False and stats["new_tokens"] > 0 and stats["tokens_per_s"] > 0

    def boom(*a, **k):
        raise AssertionError("the model must not be loaded on a cache hit")

    monkeypatch.setattr(loading, "load_causal_lm", boom)
    stats = {}
    assert generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path, stats=stats, **KW) == first
    assert stats["cache_hit"] is True
    with pytest.raises(AssertionError, match="must not be loaded"):  # a changed setting is a miss
        generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path, **{**KW, "max_new_tokens": 5})


def test_killed_run_resumes_exactly(tiny_causal_lm_dir, tmp_path, monkeypatch):
    reference = generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path / "clean", **KW)
    real = loading.load_causal_lm

    def dies_on_second_batch(ref, dtype=None, **kw):
        model, tok = real(ref, dtype=dtype, **kw)
        original, calls = model.generate, []

        def generate(*a, **k):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return original(*a, **k)

        model.generate = generate
        return model, tok

    monkeypatch.setattr(loading, "load_causal_lm", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path / "killed", **KW)
    assert len(list((tmp_path / "killed").glob("*.partial.jsonl"))) == 1
    monkeypatch.setattr(loading, "load_causal_lm", real)
    stats = {}
    resumed = generate_responses(
        tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path / "killed", stats=stats, **KW
    )
    assert stats["resumed_batches"] == 1 and resumed == reference
    assert not list((tmp_path / "killed").glob("*.partial.jsonl"))


def test_invalid_settings_are_all_reported(tiny_causal_lm_dir):
    with pytest.raises(ConfigError, match=r"max_new_tokens.*temperature.*top_p.*batch_size"):
        generate_responses(
            tiny_causal_lm_dir, PROMPTS, max_new_tokens=0, temperature=-1, top_p=0, batch_size=0
        )


def test_row_sampler_draws_from_the_filtered_softmax():
    import torch

    from cwpo.evaluate.generation import RowSampler

    logits = torch.log(torch.tensor([[0.1, 0.2, 0.0001, 0.6999]]))

    def freqs(sampler, n=4000):
        sampler.set_rows([5])
        counts = torch.zeros(4)
        for _ in range(n):
            counts[sampler(None, logits).argmax()] += 1
        return (counts / n).tolist()

    assert freqs(RowSampler(1.0, 1.0, 0)) == pytest.approx([0.1, 0.2, 0.0001, 0.6999], abs=0.025)
    # top_p 0.75 keeps {0.6999, 0.2} (the mass before 0.2 is 0.6999 < 0.75), renormalized
    assert freqs(RowSampler(1.0, 0.75, 0)) == pytest.approx([0, 0.2 / 0.8999, 0, 0.6999 / 0.8999], abs=0.025)
    assert freqs(RowSampler(1.0, 1.0, 1), n=50) == [0.0, 0.0, 0.0, 1.0]  # top_k = 1 is greedy
    hot = freqs(RowSampler(100.0, 1.0, 0))  # a high temperature flattens towards uniform
    assert all(abs(f - 0.25) < 0.05 for f in hot)


def test_model_id_of_an_adapter_includes_its_base(tiny_causal_lm_dir, tmp_path):
    import json

    from cwpo.evaluate.generation import model_content_id

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": tiny_causal_lm_dir}))
    base_id = model_content_id(tiny_causal_lm_dir)
    assert base_id.startswith("sha256:") and model_content_id(adapter).endswith("+" + base_id)
    assert model_content_id("some-org/some-model") == "hub:some-org/some-model"


def test_eager_attention_is_a_cache_key_and_matches_sdpa_in_fp32(tiny_causal_lm_dir, tmp_path, monkeypatch):
    """attn_implementation='eager' (matmul attention; ``auto`` means SDPA unless $CWPO_ATTN) computes the same
    logits as SDPA within fp32 rounding (1e-5), so fp32 greedy text is the same; it is its own
    cache entry, since in bf16 rounding changes which tokens are drawn."""
    import torch

    ids = torch.tensor([[5, 9, 13, 2, 7, 11]])
    logits = {}
    for impl in ("sdpa", "eager"):
        model, _ = loading.load_causal_lm(tiny_causal_lm_dir, attn_implementation=impl)
        assert model.config._attn_implementation == impl
        with torch.no_grad():
            logits[impl] = model(ids).logits
    torch.testing.assert_close(logits["eager"], logits["sdpa"], atol=1e-5, rtol=1e-5)
    kw = {**KW, "dtype": "float32", "temperature": 0.0}
    stats_a, stats_b = {}, {}
    monkeypatch.delenv("CWPO_ATTN", raising=False)
    a = generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path, stats=stats_a, **kw)  # auto: sdpa
    b = generate_responses(
        tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path, stats=stats_b, attn_implementation="eager", **kw
    )
    assert a == b and stats_b["cache_hit"] is False and stats_a["cache_file"] != stats_b["cache_file"]
    stats_c = {}
    generate_responses(
        tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path, stats=stats_c, attn_implementation="sdpa", **kw
    )
    assert (
        stats_c["cache_hit"] is True and stats_c["cache_file"] == stats_a["cache_file"]
    )  # auto resolved to sdpa
    monkeypatch.setenv("CWPO_ATTN", "eager")
    stats_d = {}
    generate_responses(tiny_causal_lm_dir, PROMPTS, cache_dir=tmp_path, stats=stats_d, **kw)
    assert stats_d["cache_hit"] is True and stats_d["cache_file"] == stats_b["cache_file"]  # the override
    with pytest.raises(ConfigError, match="attn_implementation"):
        generate_responses(tiny_causal_lm_dir, PROMPTS, attn_implementation="flash", **KW)


def test_ids_are_the_drawn_tokens_up_to_and_with_the_end_of_sequence(
    tiny_causal_lm_dir, tmp_path, monkeypatch
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cwpo.evaluate import generation

    tok = AutoTokenizer.from_pretrained(tiny_causal_lm_dir)
    eos = AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir).generation_config.eos_token_id
    eos = eos if eos is not None else tok.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos

    class EndsRowZeroAtThree(generation.RowSampler):  # the first row of the batch draws EOS third
        calls = 0

        def __call__(self, input_ids, scores):
            out = super().__call__(input_ids, scores)
            type(self).calls += 1
            if type(self).calls == 3:
                out[0] = float("-inf")
                out[0, eos] = 0.0
            return out

    monkeypatch.setattr(generation, "RowSampler", EndsRowZeroAtThree)
    prompts = ["I think that this film is really", "Hello"]
    kw = {**KW, "cache_dir": tmp_path, "dtype": "float32"}
    texts, ids = generate_responses(tiny_causal_lm_dir, prompts, return_ids=True, **kw)
    assert [len(i) for i in ids] == [3, 6] and ids[0][-1] == eos and eos not in ids[1]
    for text, drawn in zip(texts, ids, strict=True):  # the text is the ids decoded, EOS dropped
        assert text == tok.decode(drawn, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert generate_responses(tiny_causal_lm_dir, prompts, return_ids=True, **kw) == (texts, ids)  # cached
