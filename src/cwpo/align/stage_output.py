"""The output folder of a training stage: resume or refuse before any work, save when done.

The folder holds the model itself (a LoRA adapter whose ``base_model_name_or_path`` is the absolute
folder or hub id it was trained from, checked on loading through ``base_model.json``, or a full
model), its tokenizer, ``metrics.json``, ``cwpo_config.json``
and ``manifest.json`` (written last: its presence means the folder is complete), plus
``checkpoints/`` for resuming and, with ``report_to: tensorboard``, the TensorBoard events in
``runs/`` (written under ``checkpoints/runs/`` while training, moved beside the model at the end).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

from cwpo.atomic_files import write_json
from cwpo.console import rank
from cwpo.errors import ConfigError
from cwpo.hashing import hash_config, sha256_path
from cwpo.models import resolve_model
from cwpo.models.adapter_base import ADAPTER_CONFIG, record_base
from cwpo.outputs import (
    SCRATCH_MARK,
    guard_output,
    make_scratch,
    remove_scratch,
    scratch_info,
    swap_into_place,
    write_manifest,
)

CHECKPOINTS = "checkpoints"
RUN_CONFIG = "cwpo_config.json"  # not config.json: a full model folder has its own
TRACKING_LOGS = "runs"  # the TensorBoard callback's folder under the Trainer's output_dir


def keep_tracking_logs(output_dir: Path) -> None:
    """Move the TensorBoard runs of ``checkpoints/runs/`` to ``runs/`` beside the model (one
    sub-folder per run, a resumed run adds its own), so they outlive the checkpoints."""
    src = output_dir / CHECKPOINTS / TRACKING_LOGS
    if not src.is_dir():
        return
    dst = output_dir / TRACKING_LOGS
    dst.mkdir(exist_ok=True)
    for run in sorted(src.iterdir()):
        target = dst / run.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        shutil.move(str(run), str(target))
    src.rmdir()


def work_folder(output_dir: Path) -> Path:
    """The scratch folder a training run writes in beside ``output_dir`` (a fixed name, so that
    ``--resume`` finds its checkpoints); cwpo's own by its mark (:func:`cwpo.outputs.scratch_info`)."""
    output_dir = Path(os.path.abspath(output_dir))
    return output_dir.parent / f".{output_dir.name}.cwpo-training"


def checkpoint_to_resume(
    output_dir: Path, resume: bool, stage: str, overwrite: bool = False
) -> tuple[Path, str | None]:
    """Check ``output_dir`` before any work; return the folder to train in and the checkpoint to
    resume from, if any.

    Training happens in :func:`work_folder` (its checkpoints too), which replaces ``output_dir``
    only when the model is saved (:func:`cwpo.outputs.swap_into_place`). ``output_dir`` itself
    follows :func:`cwpo.outputs.guard_output`: new or empty is used, an earlier output of ``stage``
    is replaced only with ``overwrite`` (and only when every file in it is one cwpo wrote), anything
    else is refused before anything is deleted. The checkpoints of an interrupted run continue with
    ``resume``, are discarded with ``overwrite``, and are otherwise a refusal.
    """
    output_dir = Path(os.path.abspath(output_dir))
    work = work_folder(output_dir)
    info = scratch_info(work)
    if (work.exists() or work.is_symlink()) and (
        info is None or info.get("for") != output_dir.name or info.get("stage") != stage
    ):
        raise ConfigError(
            f"{work} (where cwpo keeps the checkpoints of `{stage} --output {output_dir.name}`) exists and "
            "is not cwpo's: move it away"
        )
    ckpt_dir = work / CHECKPOINTS
    last = get_last_checkpoint(str(ckpt_dir)) if info is not None and ckpt_dir.is_dir() else None
    if resume and not last and not overwrite and guard_output(output_dir, stage, in_place=True):
        raise ConfigError(
            f"--output {output_dir} is a finished `{stage}` output: there is nothing to resume; pass "
            "--overwrite to train it again, or choose another --output"
        )
    guard_output(output_dir, stage, overwrite=overwrite or bool(resume and last))
    if last and resume:
        return work, last
    if last and not overwrite:
        raise ConfigError(
            f"{work} holds checkpoints of an interrupted `{stage}` run ({Path(last).name}) for --output "
            f"{output_dir.name}; pass --resume to continue it, --overwrite to start again"
        )
    if info is not None and rank() == 0:
        remove_scratch(work)  # cwpo's scratch of a run that is not continued
    folder = make_scratch(output_dir, purpose=f"{stage} training", name=work.name)
    write_json(folder / SCRATCH_MARK, {**(scratch_info(folder) or {}), "stage": stage})
    return folder, None


def inputs_hash(train: str, model_ref: str) -> str:
    """Content hash of the training file and the starting model (a hub id is hashed by name)."""
    resolved = resolve_model(model_ref)
    model_hash = sha256_path(resolved) if Path(resolved).exists() else resolved
    return hash_config({"train": sha256_path(train), "model": model_hash})


def save_final(
    trainer,
    work_dir: Path,
    output_dir: Path,
    base_path: str,
    cfg_dict: dict,
    stage: str,
    metrics: dict,
    ihash: str,
):
    """Save model + tokenizer, metrics, config and manifest into ``work_dir`` (main process only),
    then put it in place of ``output_dir`` in one step (:func:`cwpo.outputs.swap_into_place`).

    ``manifest.json`` is written last. An adapter records ``base_path``, the model it was trained
    from, as an absolute folder or hub id with a fingerprint
    (:func:`cwpo.models.adapter_base.record_base`): loading it then reproduces the trained policy
    exactly, from any working folder.
    """
    if not trainer.is_world_process_zero():
        return
    trainer.save_model(str(work_dir))
    if (work_dir / ADAPTER_CONFIG).exists():
        record_base(work_dir, base_path, final_dir=output_dir)
    (work_dir / "training_args.bin").unlink(missing_ok=True)
    keep_tracking_logs(work_dir)
    write_json(work_dir / "metrics.json", metrics)
    write_json(work_dir / RUN_CONFIG, cfg_dict)
    write_manifest(work_dir, stage, cfg_dict, ihash, metrics.get("summary", {}))
    swap_into_place(work_dir, output_dir)
