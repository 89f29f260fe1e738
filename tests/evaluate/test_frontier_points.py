"""One frontier point: the KL estimator, fluency measures and a checkpoint scored on tiny models."""

import math

import pytest
import torch

from cwpo.evaluate.frontier import (
    REFERENCE_SEED_OFFSET,
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


def _token_by_token_logp(model_dir, prompt, drawn):
    """Σ log p of the drawn token ids after the prompt's tokens, one forward pass per token, fp64."""
    from cwpo.evaluate.generation import prompt_token_ids
    from cwpo.models.loading import load_causal_lm

    model, tok = load_causal_lm(model_dir)
    ids = prompt_token_ids(tok, [prompt], False, 512)[0] + drawn
    n_prompt = len(ids) - len(drawn)
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
    from cwpo.evaluate.generation import generate_responses

    kw = {"n_samples": 2, "max_new_tokens": 6, "batch_size": 2, "cache_dir": tmp_path, "seed": 3}
    rows = score_checkpoint(other_tiny_lm, tiny_causal_lm_dir, PROMPTS, **kw)
    assert len(rows) == 4 and {r["sample"] for r in rows} == {0, 1}
    r = rows[0]
    # the log-probs of the policy's own sample (its token ids as drawn), under the policy and the SFT model
    _, drawn = generate_responses(
        other_tiny_lm, [p["prompt"] for p in PROMPTS], seed=3, max_new_tokens=6, batch_size=2, dtype="float32",
        attn_implementation="sdpa", cache_dir=tmp_path / "generations", return_ids=True, progress=False,
    )  # fmt: skip
    assert r["n_tokens"] == len(drawn[0]) and r["finished"] == (len(drawn[0]) < 6)
    assert r["logp"] == pytest.approx(
        _token_by_token_logp(other_tiny_lm, "This movie was", drawn[0]), abs=1e-3
    )
    assert r["logp_ref"] == pytest.approx(
        _token_by_token_logp(tiny_causal_lm_dir, "This movie was", drawn[0]), abs=1e-3
    )
    s = point_summary(rows)
    assert s["kl"] == pytest.approx(kl_estimate(rows)) and s["n_prompts"] == 2
    # the reference against itself: KL exactly 0; its GRA reference is an independent sample
    same = score_checkpoint(tiny_causal_lm_dir, tiny_causal_lm_dir, PROMPTS, **{**kw, "n_samples": 1})
    assert point_summary(same)["kl"] == 0.0
    assert [x["response"] for x in same] != generate_responses(
        tiny_causal_lm_dir, [p["prompt"] for p in PROMPTS], seed=3 + REFERENCE_SEED_OFFSET, max_new_tokens=6,
        batch_size=2, dtype="float32", attn_implementation="sdpa", cache_dir=tmp_path / "generations",
        progress=False,
    )  # fmt: skip
