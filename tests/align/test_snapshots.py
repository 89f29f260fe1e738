"""Policy snapshots along one alignment run (the points of a reward–KL frontier)."""

import torch

from cwpo.align import AlignConfig, align
from cwpo.align.snapshots import SnapshotCallback, snapshot_dir
from cwpo.data.schema import write_pairs
from cwpo.models.loading import load_causal_lm


def test_snapshots_load_as_policies_and_the_last_is_the_final_model(
    tmp_path, labeled_rows, tiny_causal_lm_dir
):
    train = write_pairs(tmp_path / "train.jsonl", labeled_rows[:8])
    cfg = AlignConfig(
        train=str(train), policy=tiny_causal_lm_dir, output=str(tmp_path / "out"), max_steps=3, batch_size=2,
        max_length=64, save_steps=10, lr=1e-2,
    )  # fmt: skip
    align(cfg, callbacks=[SnapshotCallback(tmp_path / "snaps", [1, 3], tiny_causal_lm_dir)])
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == ["step-1", "step-3"]
    first, _ = load_causal_lm(str(snapshot_dir(tmp_path / "snaps", 1)))
    last, _ = load_causal_lm(str(snapshot_dir(tmp_path / "snaps", 3)))
    final, _ = load_causal_lm(str(tmp_path / "out"))
    pairs = list(zip(last.parameters(), final.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in pairs)  # the snapshot at the last step is the final policy
    assert any(not torch.equal(a, b) for a, b in zip(first.parameters(), last.parameters(), strict=True))
