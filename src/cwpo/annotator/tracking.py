"""TensorBoard scalars of ``cwpo train-annotator``, whose training loop is its own (not a Trainer).

``report_to: tensorboard`` (or ``all``) writes the step losses (``sft/loss`` of the dpo objective's
SFT, ``train/loss``), the held-out validation curve (``val/loss``, ``val/accuracy`` at the step
ending each epoch) and the final ``eval/*`` metrics into ``OUTPUT/runs/train-annotator``, next to
the annotator, when training ends (the folder is written whole, like the rest of the output).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cwpo.tracking import report_targets

TRACKERS = ("tensorboard",)
RUN_NAME = "train-annotator"


def annotator_report_to_errors(report_to: str | list[str]) -> list[str]:
    """One message for a tracker the annotator's loop cannot write, or a missing TensorBoard."""
    names = [n for n in report_targets(report_to) if n != "all"]
    other = [n for n in names if n not in TRACKERS]
    if other:
        return [
            f"report_to: train-annotator writes TensorBoard only (its own training loop), not "
            f"{', '.join(other)}; use none or tensorboard"
        ]
    if report_targets(report_to) and importlib.util.find_spec("tensorboard") is None:
        return ["report_to: tensorboard is not installed (pip install tensorboard)"]
    return []


def write_scalars(
    folder: Path, sft_losses: list[float], losses: list[float], steps_per_epoch: int, metrics: dict
) -> Path:
    """Write the run's scalars as TensorBoard events under ``folder/runs``; return the run folder."""
    from torch.utils.tensorboard import SummaryWriter

    run = Path(folder) / "runs" / RUN_NAME
    writer = SummaryWriter(str(run))
    try:
        for step, value in enumerate(sft_losses, 1):
            writer.add_scalar("sft/loss", value, step)
        for step, value in enumerate(losses, 1):
            writer.add_scalar("train/loss", value, step)
        for point in metrics.get("val_curve") or []:
            for name in ("loss", "accuracy"):
                writer.add_scalar(f"val/{name}", point[name], point["epoch"] * steps_per_epoch)
        for name in ("eval_accuracy", "eval_accuracy_top30", "eval_ece"):
            if name in metrics:
                writer.add_scalar(f"eval/{name.removeprefix('eval_')}", metrics[name], len(losses))
    finally:
        writer.close()
    return run
