from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cwpo.align.online import OnlineConfig, online_align
from cwpo.atomic_files import write_jsonl
from cwpo.errors import ConfigError, DataError


class FakeScorer:
    """Prefers the longer response; margin = (len(a) − len(b)) / 10. Records its calls."""

    def __init__(self):
        self.calls = 0

    def score_pairs(self, prompts, a, b):
        self.calls += 1
        assert len(prompts) == len(a) == len(b)
        return torch.tensor([(len(x) - len(y)) / 10 for x, y in zip(a, b, strict=True)])


def test_online_rounds(tmp_path, tiny_causal_lm_dir):
    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"prompt": f"\n\nHuman: tell me {i}\n\nAssistant:"} for i in range(5)]
    )
    scorer = FakeScorer()
    cfg = OnlineConfig(
        prompts=str(prompts),
        policy=tiny_causal_lm_dir,
        output=str(tmp_path / "on"),
        rounds=2,
        prompts_per_round=2,
        max_new_tokens=6,
        lr=1e-2,
    )
    res = online_align(cfg, annotator=scorer)
    assert scorer.calls == 2 and res["rounds"] == 2
    steps = json.loads((Path(res["output"]) / "metrics.json").read_text())["steps"]
    assert len(steps) == 2 and all(0 <= s["weight/mean"] < 1 for s in steps)
    assert all(torch.isfinite(torch.tensor(s["loss"])) for s in steps)
    from cwpo.models.loading import load_causal_lm

    model, _ = load_causal_lm(res["output"])  # adapter on the policy folder
    assert model is not None


def test_online_errors(tmp_path):
    bad = write_jsonl(tmp_path / "b.jsonl", [{"text": "x"}])
    from cwpo.align.online import read_prompts

    with pytest.raises(DataError, match="prompt"):
        read_prompts(str(bad))
    with pytest.raises(ConfigError, match="beta"):
        OnlineConfig(prompts="p", policy="x", output="o", beta=-1.0)
