"""The CW-DPO weighted loss is unchanged under FSDP2 sharding (two gloo CPU ranks vs one process).

accelerate 1.15 shards only on GPUs (on CPU ranks its FSDP config falls back to DDP), so this test
shards with PyTorch's ``fully_shard`` directly, layer by layer as accelerate's
``TRANSFORMER_BASED_WRAP`` does, and computes the loss with cwpo's own ``preference_loss`` and
``weighted_mean``: each rank takes half of the batch, FSDP averages the gradients over the ranks,
and loss and gradients must equal one unsharded process on the whole batch.
"""

import re
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("fsdp_weighted_loss_worker.py")


def _value(name: str, text: str) -> float:
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def test_fsdp_two_ranks_weighted_loss_and_gradients_equal_one_process(tiny_causal_lm_dir, launch_two_ranks):
    proc = launch_two_ranks([str(WORKER), tiny_causal_lm_dir], timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _value("LOSS_FSDP", proc.stdout) == pytest.approx(_value("LOSS_ONE", proc.stdout), abs=1e-6)
    assert _value("GRAD_SCALE", proc.stdout) > 1e-2  # the gradients compared are not all zero
    assert _value("MAX_GRAD_DIFF", proc.stdout) < 1e-6
