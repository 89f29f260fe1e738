"""Policy snapshots at chosen optimizer steps, for reward–KL frontiers along one training run.

:class:`SnapshotCallback` saves the trainable model (a LoRA adapter, or the full model) into
``<folder>/step-<N>`` when the Trainer finishes step N, with the adapter's base recorded as the
final model's is (:func:`cwpo.models.adapter_base.record_base`), so each snapshot loads as a
policy on its own. A snapshot already on disk (a resumed run) is left as it is; one is written
into a temporary folder and renamed, so a killed run never leaves half a snapshot.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from transformers import TrainerCallback

from cwpo.models.adapter_base import ADAPTER_CONFIG, record_base


def snapshot_dir(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step-{step}"


class SnapshotCallback(TrainerCallback):
    def __init__(self, folder: str | Path, steps: Iterable[int], base_path: str):
        self.folder, self.steps, self.base_path = Path(folder), {int(s) for s in steps}, str(base_path)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if step not in self.steps or not state.is_world_process_zero or model is None:
            return
        final = snapshot_dir(self.folder, step)
        if final.exists():
            return
        tmp = self.folder / f".step-{step}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp))
        if (tmp / ADAPTER_CONFIG).exists():
            record_base(tmp, self.base_path, final_dir=final)
        tmp.rename(final)
