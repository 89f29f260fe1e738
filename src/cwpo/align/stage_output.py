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
import tempfile
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

from cwpo.atomic_files import read_json, write_json
from cwpo.errors import ConfigError
from cwpo.hashing import hash_config, sha256_path
from cwpo.models import resolve_model
from cwpo.models.adapter_base import ADAPTER_CONFIG, record_base
from cwpo.outputs import MANIFEST, clear_output, write_manifest

CHECKPOINTS = "checkpoints"
RUN_CONFIG = "cwpo_config.json"  # not config.json: a full model folder has its own
TRACKING_LOGS = "runs"  # the TensorBoard callback's folder under the Trainer's output_dir
EVENTS_PREFIX = "events.out.tfevents."


def _only_tracking_logs(ckpt_dir: Path) -> bool:
    """True when ``ckpt_dir`` holds TensorBoard event files only (a run killed before its first
    checkpoint): nothing there to resume, and nothing but cwpo's own logs to remove."""
    files = [f for f in ckpt_dir.rglob("*") if not f.is_dir()]
    logs = ckpt_dir / TRACKING_LOGS
    return bool(files) and all(f.is_relative_to(logs) and f.name.startswith(EVENTS_PREFIX) for f in files)


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


def checkpoint_to_resume(output_dir: Path, resume: bool, stage: str, overwrite: bool = False) -> str | None:
    """Check ``output_dir`` before any work; return the checkpoint to resume from, if any.

    An interrupted run (checkpoints, no manifest) continues with ``resume`` and is otherwise
    refused. Anything else follows :func:`cwpo.outputs.guard_output`: a new or empty folder is used,
    an earlier output of ``stage`` is removed first only with ``overwrite`` (and only when every
    file in it is one cwpo wrote), and a folder cwpo did not write is never touched.
    """
    ckpt_dir = output_dir / CHECKPOINTS
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if last:
        manifest = output_dir / MANIFEST
        found = read_json(manifest).get("stage") if manifest.exists() else stage
        if found != stage:
            raise ConfigError(
                f"{output_dir} holds a cwpo `{found}` output, not `{stage}`: choose another --output"
            )
        if resume:
            return last
        if not overwrite:
            raise ConfigError(
                f"{output_dir} holds checkpoints of an earlier run ({Path(last).name}); pass --resume to continue "
                "it, --overwrite to start again, or choose another --output"
            )
        if not manifest.exists():  # an interrupted run: only cwpo's checkpoints, no file list yet
            shutil.rmtree(ckpt_dir)
    elif ckpt_dir.is_dir() and not (output_dir / MANIFEST).exists() and _only_tracking_logs(ckpt_dir):
        shutil.rmtree(ckpt_dir)
    clear_output(output_dir, stage, overwrite=overwrite)
    return None


def inputs_hash(train: str, model_ref: str) -> str:
    """Content hash of the training file and the starting model (a hub id is hashed by name)."""
    resolved = resolve_model(model_ref)
    model_hash = sha256_path(resolved) if Path(resolved).exists() else resolved
    return hash_config({"train": sha256_path(train), "model": model_hash})


def save_final(
    trainer, output_dir: Path, base_path: str, cfg_dict: dict, stage: str, metrics: dict, ihash: str
):
    """Save model + tokenizer into ``output_dir`` (main process only), then metrics, config and manifest.

    The model is written into a temporary folder and its files moved into place; ``manifest.json``
    is written last. An adapter records ``base_path``, the model it was trained from, as an absolute
    folder or hub id with a fingerprint (:func:`cwpo.models.adapter_base.record_base`): loading it
    then reproduces the trained policy exactly, from any working folder.
    """
    if not trainer.is_world_process_zero():
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model.", suffix=".tmp", dir=output_dir))
    try:
        trainer.save_model(str(tmp))
        if (tmp / ADAPTER_CONFIG).exists():
            record_base(tmp, base_path, final_dir=output_dir)
        (tmp / "training_args.bin").unlink(missing_ok=True)
        for f in tmp.iterdir():
            if f.is_file():
                os.replace(f, output_dir / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    keep_tracking_logs(output_dir)
    write_json(output_dir / "metrics.json", metrics)
    write_json(output_dir / RUN_CONFIG, cfg_dict)
    write_manifest(output_dir, stage, cfg_dict, ihash, metrics.get("summary", {}))
