"""SFT and alignment on two accelerate ranks (gloo, CPU) equal one process with the same global batch.

Same global batch: one process takes 4 examples per step, each rank 2 of the same 4 (accelerate
hands rank r the batches r, r + 2, ... of the one seeded order). The per-step losses (rank 0 logs
their mean over ranks) and the trained adapters must match to float rounding. Dropout is off (its
masks depend on how a batch is split), and the weights vary per pair, so a weighted loss that were
normalised per rank (by its own weight sum, say) would not match.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cwpo.align import AlignConfig, SFTConfig, align, sft
from cwpo.data.schema import write_pairs

STEPS = 3
COMMON = {"max_steps": STEPS, "max_length": 64, "bf16": False, "lora_dropout": 0.0, "lr": 1e-2}
COMMON |= {"warmup_ratio": 0.0, "save_steps": 100}
# the per-device batch is the only difference: 4 on one process, 2 on each of two ranks
SCRIPT = """
import sys
from cwpo.align import AlignConfig, SFTConfig, align, sft
common, train, model, out = {common!r}, {train!r}, {model!r}, {out!r}
s = sft(SFTConfig(train=train, model=model, output=out + "/sft", batch_size=2, **common))
a = align(AlignConfig(train=train, policy=model, output=out + "/align", batch_size=2,
                      weighting="confidence", **common))
print("WORLD", s["world_size"], a["world_size"])
"""


def _steps(folder: Path, key: str = "loss") -> list[float]:
    return [s[key] for s in json.loads((folder / "metrics.json").read_text())["steps"]]


def _assert_same_model(a: Path, b: Path) -> None:
    wa = load_file(str(a / "adapter_model.safetensors"))
    wb = load_file(str(b / "adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-5, rtol=1e-4), k


def test_sft_and_align_on_two_ranks_equal_one_process(
    tmp_path, labeled_rows, tiny_causal_lm_dir, launch_two_ranks
):
    rows = [dict(r, confidence=round(0.05 + 0.08 * i, 3)) for i, r in enumerate(labeled_rows)]
    train = str(write_pairs(tmp_path / "train.jsonl", rows))
    one = tmp_path / "one"
    sft(SFTConfig(train=train, model=tiny_causal_lm_dir, output=str(one / "sft"), batch_size=4, **COMMON))
    align(
        AlignConfig(
            train=train, policy=tiny_causal_lm_dir, output=str(one / "align"), batch_size=4,
            weighting="confidence", **COMMON,
        )
    )  # fmt: skip

    two = tmp_path / "two"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(common=COMMON, train=train, model=tiny_causal_lm_dir, out=str(two)))
    proc = launch_two_ranks(
        [str(script)], timeout=300, cwd=tmp_path, before_retry=lambda: shutil.rmtree(two, ignore_errors=True)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WORLD 2 2" in proc.stdout

    for stage in ("sft", "align"):
        assert _steps(two / stage) == pytest.approx(_steps(one / stage), rel=1e-5), stage
        assert len(_steps(one / stage)) == STEPS
        _assert_same_model(one / stage, two / stage)
    # the logged weights are the global batch's (gathered over ranks), not rank 0's alone
    weights = _steps(two / "align", "weight/mean")
    assert weights == pytest.approx(_steps(one / "align", "weight/mean"), rel=1e-6)
    assert all(0 < w < 1 for w in weights)
