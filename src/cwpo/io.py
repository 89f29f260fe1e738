"""Files a user can open, written so that a killed process never leaves half of one.

Every writer goes through :func:`atomic_path`: write to a temporary file in the same
folder, fsync, then ``os.replace`` (atomic on POSIX). Hashing helpers give the content
hashes that decide whether a cached artifact may be reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from cwpo.errors import CWPOError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it into place atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file normal permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to ``path``; on success it replaces ``path``.

    A killed process leaves only a ``.name.*.tmp`` folder behind, never a half-written ``path``.
    An existing ``path`` is replaced only if cwpo wrote all of it (see :func:`owned_files`):
    callers check with :func:`guard_output` before their work, and this is the last line of
    defence, so nothing cwpo did not write is ever deleted.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CWPOError(f"{path} is an existing file, not a folder: choose another --output")
    if path.is_dir() and _listing(path):
        foreign = foreign_files(path)
        if foreign is None or foreign:
            what = "no manifest.json" if foreign is None else f"{foreign[0]} was not written by cwpo"
            raise CWPOError(f"{path} holds files cwpo did not write ({what}): refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


MANIFEST = "manifest.json"


def _is_cwpo_temporary(name: str) -> bool:
    """The scratch names of :func:`atomic_path`/:func:`atomic_dir` (``.x.123.tmp``, ``.x.old-123``)."""
    return name.startswith(".") and (name.endswith(".tmp") or ".old-" in name)


def _listing(directory: Path) -> list[str]:
    """Relative names of every file under ``directory`` (hidden ones too), cwpo's temporaries left out."""
    return sorted(
        str(f.relative_to(directory))
        for f in directory.rglob("*")
        if (f.is_file() or f.is_symlink())
        and not any(_is_cwpo_temporary(p) for p in f.relative_to(directory).parts)
    )


def foreign_files(directory: str | os.PathLike) -> list[str] | None:
    """Files of ``directory`` that its ``manifest.json`` does not list as cwpo's own.

    ``None`` when there is no readable manifest with a file list (cwpo cannot tell its files
    from anyone else's), else the (possibly empty) list of files it did not write.
    """
    directory = Path(directory)
    try:
        owned = read_json(directory / MANIFEST).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(owned, list):
        return None
    owned_set = set(owned) | {MANIFEST}
    return [f for f in _listing(directory) if f not in owned_set]


def guard_output(
    path: str | os.PathLike,
    stage: str,
    *,
    kind: str = "dir",
    overwrite: bool = False,
    in_place: bool = False,
    marker: str | os.PathLike | None = None,
) -> bool:
    """Refuse an ``--output`` whose use would destroy anything cwpo did not write.

    Call it before any work. ``kind`` is ``"dir"`` or ``"file"``. A new path or an empty folder
    is fine. An existing one must be an output of the same ``stage`` (its ``manifest.json``
    says so; for a file, its ``marker`` file beside it exists). Replacing such an output needs
    ``overwrite``, and every file in it must be one cwpo listed when it wrote it. ``in_place``
    stages (a run folder, a report) only ever rewrite their own files, so they continue in an
    output of their stage without ``overwrite``. Returns True when an earlier output exists.
    Raises :class:`CWPOError` (one line, exit 2) otherwise.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return False
    never = "cwpo never replaces what it did not write: choose a new or empty --output"
    if kind == "dir":
        if not path.is_dir():
            raise CWPOError(f"--output {path} is an existing file, but `{stage}` writes a folder: {never}")
        if not _listing(path):  # empty, or only empty folders (e.g. a run killed before its first file)
            return False
        try:
            found = read_json(path / MANIFEST).get("stage")
        except (OSError, ValueError, AttributeError):
            found = None
        if found is None:
            raise CWPOError(f"--output {path} already exists and is not a cwpo `{stage}` output; {never}")
        if found != stage:
            raise CWPOError(f"--output {path} holds a cwpo `{found}` output, not `{stage}`; {never}")
        if in_place:
            return True
        if not overwrite:
            raise CWPOError(
                f"--output {path} holds an earlier `{stage}` output; pass --overwrite to replace it, "
                "or choose another --output"
            )
        foreign = foreign_files(path)
        if foreign is None:
            raise CWPOError(
                f"--output {path} was written by an older cwpo that did not list its files, so cwpo "
                "cannot tell them from yours: remove it yourself or choose another --output"
            )
        if foreign:
            more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
            raise CWPOError(
                f"--output {path} holds {foreign[0]}{more}, which cwpo did not write; move it away "
                "or choose another --output"
            )
        return True
    if path.is_dir():
        raise CWPOError(f"--output {path} is an existing folder, but `{stage}` writes a file: {never}")
    if marker is None or not Path(marker).exists():
        raise CWPOError(f"--output {path} already exists and was not written by cwpo `{stage}`; {never}")
    if not (overwrite or in_place):
        raise CWPOError(
            f"--output {path} holds an earlier `{stage}` output; pass --overwrite to replace it, "
            "or choose another --output"
        )
    return True


def clear_output(path: str | os.PathLike, stage: str, *, overwrite: bool = False) -> None:
    """:func:`guard_output` for a stage that writes into its folder in place: an earlier output
    of ``stage`` (every file of it cwpo's, checked) is removed first, so no stale file survives."""
    if guard_output(path, stage, overwrite=overwrite):
        shutil.rmtree(path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # torch scalars
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=indent, default=_json_default, allow_nan=False)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(dumps(obj, indent=2) + "\n", encoding="utf-8")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    """Write rows as JSON Lines atomically. NaN/inf values are refused (``allow_nan=False``)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_path(path: str | os.PathLike) -> str:
    """Content hash of a file, or of a directory (relative names and contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def hash_config(obj: Any) -> str:
    """sha256 of a JSON-serializable object with sorted keys (the cache key of a config)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=_json_default).encode()).hexdigest()


def machine_info() -> dict:
    """What benchmarks record about where they ran."""
    info = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            info["mem_total_kb"] = int(fh.readline().split()[1])
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_manifest(
    directory: str | os.PathLike, stage: str, config: dict, inputs_hash: str, metrics: dict | None = None
) -> Path:
    """Write ``manifest.json``: the stage, its config, the hash of its inputs, metrics and versions."""
    import importlib.metadata as md

    versions = {}
    for pkg in ("cwpo", "torch", "transformers", "trl", "peft", "datasets", "accelerate"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[pkg] = md.version(pkg)
    manifest = {
        "stage": stage,
        "config": config,
        "inputs_hash": inputs_hash,
        "metrics": metrics or {},
        "versions": versions,
        "created": now_iso(),
        # every file cwpo wrote here, so a later --overwrite can prove it deletes nothing else
        "files": [f for f in _listing(Path(directory)) if f != MANIFEST],
    }
    return write_json(Path(directory) / "manifest.json", manifest)
