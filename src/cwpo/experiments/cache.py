"""Content-hash caching of pipeline stages.

A stage's key is the sha256 of its name, its config and the keys of the artifacts it reads
(which are themselves content keys), so a re-run with the same inputs redoes nothing and a
changed input never reuses a stale artifact. Each stage writes into a temporary folder that
replaces ``stages/<name>-<key>`` only when complete: an interrupted run restarts the unfinished
stage and reuses every finished one.

Several runs may share one cache folder at the same time: a stage is computed under an exclusive
lock on ``locks/<name>-<key>.lock``, so a second run that needs the same stage waits for the first
and then reuses its result instead of computing it again into the same scratch folder.

A stage folder may have been copied with some of its files left out (its model weights, say, by a
tool that keeps a cache small enough to move): it then holds :data:`LEFT_OUT`, the list of those
files. It still counts as cached for every stage that needs only its manifest, metrics and the
files it kept; a stage that would have to be computed from it stops with one line instead of
loading files that are not there. A stage whose every output was left out because computing it
again takes seconds (``"recompute": true`` in that list: a data split, say) is computed again, same
key, the first time a run meets it; a cache-only look (``run_recipe(cache_only=True)``) counts it
as cached.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cwpo.atomic_files import read_json, write_json
from cwpo.console import STAGE_WHAT, stage_line
from cwpo.errors import CWPOError
from cwpo.hashing import hash_config
from cwpo.outputs import MANIFEST, atomic_dir, write_manifest

log = logging.getLogger("cwpo.run")

# in a stage folder: the files left out of it (``{"dropped": [relative paths], "recompute": bool}``)
LEFT_OUT = "ARCHIVED.json"

# set by run_recipe(cache_only=True): a stage that is not cached is not computed (see StageNotCached)
CACHE_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("cwpo_cache_only", default=False)


class StageNotCached(Exception):
    """Raised instead of computing a stage when only cached stages may be read (an interim look)."""


@dataclass(frozen=True)
class Artifact:
    """A finished stage output: its folder, its content key and its metrics."""

    path: Path
    key: str
    metrics: dict
    cached: bool


def stage_key(name: str, config: dict, inputs: dict[str, str]) -> str:
    return hash_config({"stage": name, "config": config, "inputs": inputs})


@contextlib.contextmanager
def _stage_lock(path: Path, label: str) -> Iterator[None]:
    """An exclusive advisory lock (``fcntl.flock``) held while a stage is checked and computed.

    Released by the OS when the process dies, so a killed run never leaves a stale lock. Where
    ``fcntl`` does not exist (Windows) stages are not locked: use one run per cache folder there.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("stage %s: another run is computing it; waiting for %s", label, path)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cached(folder: Path, key: str) -> Artifact | None:
    manifest = folder / "manifest.json"
    if manifest.exists():
        data = read_json(manifest)
        if data.get("inputs_hash") == key:
            return Artifact(folder, key, data.get("metrics", {}), cached=True)
    return None


def _to_recompute(folder: Path) -> bool:
    """A stage whose outputs were left out to be computed again when a run meets it."""
    marker = folder / LEFT_OUT
    return marker.exists() and bool(read_json(marker).get("recompute")) and not CACHE_ONLY.get()


def _own_marker(folder: Path) -> None:
    """List the stub's :data:`LEFT_OUT` marker among the manifest's files (the archive tool wrote
    it), so that the recomputed stage may replace the whole stub."""
    manifest = read_json(folder / MANIFEST)
    files = manifest.get("files")
    if isinstance(files, list) and LEFT_OUT not in files:
        write_json(folder / MANIFEST, {**manifest, "files": [*files, LEFT_OUT]})


def check_inputs(stage: str, inputs: dict[str, Artifact]) -> None:
    """Refuse to compute ``stage`` from an input stage whose files were left out (:data:`LEFT_OUT`)."""
    for what, art in inputs.items():
        if (Path(art.path) / LEFT_OUT).exists():
            raise CWPOError(
                f"stage {stage} needs the {what} stage {art.path}, which was copied without its model "
                f"or data files ({LEFT_OUT}): delete that folder to compute it again"
            )


def run_stage(
    root: str | Path,
    name: str,
    config: dict,
    inputs: dict[str, Artifact],
    fn: Callable[[Path, Path], dict],
    label: str | None = None,
    what: str | None = None,
) -> Artifact:
    """Run ``fn(out_dir, work_dir) -> metrics`` unless a stage with the same key is complete.

    ``work_dir`` persists across interruptions (for a stage's own checkpoints) and is removed
    once the stage completes. Either way one stage line reports it (``label``, ``what`` it does
    (default: :data:`cwpo.console.STAGE_WHAT` of ``name``), its duration or ``cached``).
    """
    what = what if what is not None else STAGE_WHAT.get(name, "")
    root = Path(root)
    key = stage_key(name, config, {k: v.key for k, v in inputs.items()})
    folder = root / "stages" / f"{name}-{key[:16]}"
    found = _cached(folder, key)  # the common case needs no lock
    if found is None and CACHE_ONLY.get():
        raise StageNotCached(label or name)
    if found is None or _to_recompute(folder):
        with _stage_lock(root / "locks" / f"{name}-{key[:16]}.lock", label or name):
            found = _cached(folder, key)  # another run may have finished it while we waited
            if found is not None and _to_recompute(folder):
                # its outputs were left out: computed again, same key, and swapped in over the stub
                # (deleting it first would let a concurrent archive restore put the stub back)
                _own_marker(folder)
                found = None
            if found is None:
                check_inputs(label or name, inputs)
                work = root / "work" / f"{name}-{key[:16]}"
                work.mkdir(parents=True, exist_ok=True)
                start = time.time()
                log.info("stage %s: running -> %s", label or name, folder)
                with atomic_dir(folder) as tmp:
                    metrics = fn(tmp, work) or {}
                    metrics = {**metrics, "stage_seconds": round(time.time() - start, 2)}
                    sources = {k: str(v.path) for k, v in inputs.items()}
                    write_manifest(tmp, name, {"config": config, "inputs": sources}, key, metrics)
                shutil.rmtree(work, ignore_errors=True)
                log.info("stage %s: done in %.1f s", label or name, metrics["stage_seconds"])
                stage_line(label or name, what, metrics["stage_seconds"])
                return Artifact(folder, key, metrics, cached=False)
    log.info("stage %s: cached (%s)", label or name, folder)
    stage_line(label or name, what, cached=True)
    return found
