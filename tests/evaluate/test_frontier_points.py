"""One frontier point: the KL estimator, fluency measures and a checkpoint scored on tiny models."""

import math

import pytest
import torch

from cwpo.evaluate.frontier import (
    distinct_n,
    kl_estimate,
    log_ratios,
    point_summary,
    score_checkpoint,
    sft_perplexity,
)


def test_kl_is_the_mean_over_prompts_of_the_mean_log_ratio_over_samples():
    rows = [
        {"prompt_id": 1, "logp": -3.0, "logp_ref": -5.0},  # +2
        {"prompt_id": 1, "logp": -4.0, "logp_ref": -4.0},  # 0   -> prompt 1: 1.0
        {"prompt_id": 2, "logp": -1.0, "logp_ref": -1.5},  # +0.5 -> prompt 2: 0.5
    ]
    assert kl_estimate(rows) == pytest.approx((1.0 + 0.5) / 2)
    assert log_ratios([-3.0, -1.0], [-5.0, -1.5]) == [2.0, 0.5]
    with pytest.raises(ValueError):
        log_ratios([1.0], [1.0, 2.0])


def test_distinct_n_and_perplexity_by_hand():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # (a b), (b a), (a b)
    assert distinct_n(["a"], 2) == 0.0
    rows = [{"logp_ref": -2.0, "n_tokens": 1}, {"logp_ref": -4.0, "n_tokens": 3}]
    assert sft_perplexity(rows) == pytest.approx(math.exp(6 / 4))


def _token_by_token_logp(model_dir, prompt, response):
    """log p(response | prompt) one token at a time, without batching or padding."""
    from cwpo.models.loading import load_causal_lm
    from cwpo.models.logprobs import tokenize_pair

    model, tok = load_causal_lm(model_dir)
    ids, n_prompt = tokenize_pair(tok, prompt, response, 128)
    total = 0.0
    with torch.no_grad():
        for j in range(n_prompt, len(ids)):
            logits = model(input_ids=torch.tensor([ids[:j]])).logits[0, -1].double()
            total += torch.log_softmax(logits, -1)[ids[j]].item()
    return total


@pytest.fixture(scope="module")
def other_tiny_lm(tiny_causal_lm_dir, tmp_path_factory):
    """The tiny model with perturbed weights: a policy that differs from its reference."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_causal_lm_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    out = tmp_path_factory.mktemp("tiny-policy")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_causal_lm_dir).save_pretrained(out)
    return str(out)


PROMPTS = [{"id": 7, "prompt": "This movie was"}, {"id": 9, "prompt": "I watched it and"}]


def test_a_checkpoint_scored_on_tiny_models(tiny_causal_lm_dir, other_tiny_lm, tmp_path):
    kw = {"n_samples": 2, "max_new_tokens": 6, "batch_size": 2, "cache_dir": tmp_path, "seed": 3}
    rows = score_checkpoint(other_tiny_lm, tiny_causal_lm_dir, PROMPTS, **kw)
    assert len(rows) == 4 and {r["sample"] for r in rows} == {0, 1}
    r = rows[0]
    # the log-probs of the policy's own sample, under the policy and the SFT model, token by token
    assert r["logp"] == pytest.approx(
        _token_by_token_logp(other_tiny_lm, "This movie was", r["response"]), abs=1e-3
    )
    assert r["logp_ref"] == pytest.approx(
        _token_by_token_logp(tiny_causal_lm_dir, "This movie was", r["response"]), abs=1e-3
    )
    s = point_summary(rows)
    assert s["kl"] == pytest.approx(kl_estimate(rows)) and s["n_prompts"] == 2
    # the reference against itself: identical samples, KL exactly 0, every prompt a tie
    same = score_checkpoint(tiny_causal_lm_dir, tiny_causal_lm_dir, PROMPTS, **{**kw, "n_samples": 1})
    s0 = point_summary(same)
    assert s0["kl"] == 0.0 and s0["gra"] == 0.5 and s0["second_gra"] == 0.5
