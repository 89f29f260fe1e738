"""The output guard: what cwpo may delete or replace, and how it swaps in a new output."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cwpo.atomic_files import UMASK, read_json, write_json
from cwpo.errors import CWPOError
from cwpo.machine import now_iso


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
    os.chmod(tmp, 0o777 & ~UMASK)
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
