"""Several processes: a last batch that the global batch does not divide is said, once, on rank 0."""

from types import SimpleNamespace

import pytest

from cwpo.align import training_stage
from cwpo.align.training_stage import uneven_last_batch, warn_uneven_last_batch


@pytest.mark.parametrize(
    "n, per_device, world, repeated",
    [(10, 4, 1, 0), (16, 4, 2, 0), (10, 4, 2, 6), (17, 4, 2, 7), (15, 2, 4, 1)],
)
def test_repeated_examples(n, per_device, world, repeated):
    assert uneven_last_batch(n, per_device, world) == repeated


def _trainer(n, per_device, world, rank=0):
    args = SimpleNamespace(per_device_train_batch_size=per_device, world_size=world, process_index=rank)
    return SimpleNamespace(args=args, train_dataset=list(range(n)))


def test_warned_on_rank_0_only_when_uneven(capsys, monkeypatch):
    monkeypatch.setattr(training_stage, "warn", lambda m: print(f"cwpo: warning: {m}"))
    warn_uneven_last_batch(_trainer(10, 4, 2), "align")
    out = capsys.readouterr().out
    assert (
        out.count("\n") == 1
        and "align: 10 training examples" in out
        and "global batch 8 (2 processes)" in out
    )
    assert "repeats up to 6" in out
    for trainer in (_trainer(16, 4, 2), _trainer(10, 4, 1), _trainer(10, 4, 2, rank=1)):
        warn_uneven_last_batch(trainer, "align")
    assert capsys.readouterr().out == ""
