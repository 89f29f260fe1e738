"""Content-hash caching of pipeline stages.

A stage's key is the sha256 of its name, its config and the keys of the artifacts it reads
(which are themselves content keys), so a re-run with the same inputs redoes nothing and a
changed input never reuses a stale artifact. Each stage writes into a temporary folder that
replaces ``stages/<name>-<key>`` only when complete: an interrupted run restarts the unfinished
stage and reuses every finished one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cwpo.io import atomic_dir, hash_config, read_json, write_manifest

log = logging.getLogger("cwpo.run")


@dataclass(frozen=True)
class Artifact:
    """A finished stage output: its folder, its content key and its metrics."""

    path: Path
    key: str
    metrics: dict
    cached: bool


def stage_key(name: str, config: dict, inputs: dict[str, str]) -> str:
    return hash_config({"stage": name, "config": config, "inputs": inputs})


def run_stage(
    root: str | Path,
    name: str,
    config: dict,
    inputs: dict[str, Artifact],
    fn: Callable[[Path, Path], dict],
    label: str | None = None,
) -> Artifact:
    """Run ``fn(out_dir, work_dir) -> metrics`` unless a stage with the same key is complete.

    ``work_dir`` persists across interruptions (for a stage's own checkpoints) and is removed
    once the stage completes.
    """
    root = Path(root)
    key = stage_key(name, config, {k: v.key for k, v in inputs.items()})
    folder = root / "stages" / f"{name}-{key[:16]}"
    manifest = folder / "manifest.json"
    if manifest.exists():
        data = read_json(manifest)
        if data.get("inputs_hash") == key:
            log.info("stage %s: cached (%s)", label or name, folder)
            return Artifact(folder, key, data.get("metrics", {}), cached=True)
    work = root / "work" / f"{name}-{key[:16]}"
    work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    log.info("stage %s: running -> %s", label or name, folder)
    with atomic_dir(folder) as tmp:
        metrics = fn(tmp, work) or {}
        metrics = {**metrics, "stage_seconds": round(time.time() - start, 2)}
        write_manifest(
            tmp, name, {"config": config, "inputs": {k: str(v.path) for k, v in inputs.items()}}, key, metrics
        )
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return Artifact(folder, key, metrics, cached=False)
