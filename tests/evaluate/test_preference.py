"""Preference accuracy from the implicit reward β·log(π/πref) on the tiny Llama."""

import pytest
import torch

from cwpo.evaluate.preference import evaluate_preference, pair_implicit_rewards
from cwpo.models.loading import load_causal_lm
from cwpo.models.logprobs import sequence_logprobs


@pytest.fixture(scope="module")
def other_tiny_lm(tiny_causal_lm_dir, tmp_path_factory):
    """The tiny Llama with perturbed weights: a policy that differs from its reference."""
    model, tok = load_causal_lm(tiny_causal_lm_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    out = tmp_path_factory.mktemp("tiny-policy")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def test_policy_equal_to_reference_gives_zero_rewards_and_half_accuracy(tiny_causal_lm_dir, labeled_rows):
    pairs = labeled_rows[:6]
    summary, rows = evaluate_preference(tiny_causal_lm_dir, tiny_causal_lm_dir, pairs, beta=0.1, batch_size=4)
    assert all(
        r["reward_chosen"] == 0.0 and r["reward_rejected"] == 0.0 and r["outcome"] == "tie" for r in rows
    )
    assert summary["accuracy"] == 0.5 and summary["ties"] == 6 and summary["beta"] == 0.1


def test_rewards_are_beta_times_the_log_ratio(tiny_causal_lm_dir, other_tiny_lm, labeled_rows):
    pairs = labeled_rows[:5]
    summary, rows = evaluate_preference(other_tiny_lm, tiny_causal_lm_dir, pairs, beta=0.5, batch_size=2)
    pol, tok = load_causal_lm(other_tiny_lm)
    ref, _ = load_causal_lm(tiny_causal_lm_dir)
    prompts = [p["prompt"] for p in pairs]
    for side in ("chosen", "rejected"):
        ys = [p[side] for p in pairs]
        expected = 0.5 * (sequence_logprobs(pol, tok, prompts, ys) - sequence_logprobs(ref, tok, prompts, ys))
        assert [r[f"reward_{side}"] for r in rows] == pytest.approx(expected.tolist(), abs=1e-4)
    margins = [r["reward_chosen"] - r["reward_rejected"] for r in rows]
    assert all(abs(m) > 1e-4 for m in margins)  # the two models really differ
    correct = sum(m > 0 for m in margins)
    assert summary["accuracy"] == pytest.approx(correct / 5) and summary["wins"] == correct
    assert [r["outcome"] for r in rows] == ["correct" if m > 0 else "wrong" for m in margins]


def test_beta_must_be_positive(tiny_causal_lm_dir, labeled_rows):
    from cwpo.errors import ConfigError

    with pytest.raises(ConfigError, match="beta must be > 0"):
        pair_implicit_rewards(tiny_causal_lm_dir, tiny_causal_lm_dir, labeled_rows, beta=0)


def test_log_probs_are_cached_by_content(
    tiny_causal_lm_dir, other_tiny_lm, labeled_rows, tmp_path, monkeypatch
):
    pairs = labeled_rows[:4]
    cache = tmp_path / "logprobs"
    first, _ = evaluate_preference(other_tiny_lm, tiny_causal_lm_dir, pairs, batch_size=2, cache_dir=cache)
    assert len(list(cache.glob("*.pt"))) == 2  # policy and reference

    import cwpo.models.loading as loading

    def forbidden(*args, **kwargs):
        raise AssertionError("a cached model was loaded again")

    monkeypatch.setattr(loading, "load_causal_lm", forbidden)
    again, _ = evaluate_preference(other_tiny_lm, tiny_causal_lm_dir, pairs, batch_size=2, cache_dir=cache)
    assert again["accuracy"] == first["accuracy"] and again["mean_margin"] == first["mean_margin"]
    with pytest.raises(AssertionError, match="loaded again"):  # other texts: a new key
        evaluate_preference(
            other_tiny_lm, tiny_causal_lm_dir, labeled_rows[4:8], batch_size=2, cache_dir=cache
        )
