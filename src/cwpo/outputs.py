"""The output guard: what cwpo may delete or replace, and how it puts a new output in place.

The invariant, enforced here and nowhere else:

- cwpo deletes or replaces only paths listed in a manifest it wrote. A finished output folder's
  ``manifest.json`` lists every file cwpo wrote in it; a scratch folder cwpo created (to build a
  new output, or to keep a training run's checkpoints) holds a ``.cwpo-scratch.json`` naming the
  output it is for, so cwpo can tell it from anything else. No file name or name pattern ever
  decides what is cwpo's.
- A new output is built beside the old one (in a scratch folder, or a temporary file) and swapped
  in at the end (an atomic exchange where the system has one). A refusal, a crash, Ctrl-C or
  SIGKILL at any point therefore leaves every earlier file as it was: the earlier output stays
  complete until the new one is.
- Deleting an earlier output removes the files its manifest lists and then only folders that are
  empty; a file that appeared in it since is left where it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cwpo.atomic_files import UMASK, read_json, write_json
from cwpo.errors import CWPOError
from cwpo.machine import now_iso

MANIFEST = "manifest.json"
SCRATCH_MARK = ".cwpo-scratch.json"  # inside a scratch folder cwpo created: what it is for

log = logging.getLogger("cwpo.outputs")

# Test hook: called with a label at every step that writes, renames or deletes (the property tests
# raise from it to interrupt cwpo at a random point). None in normal use.
STEP_HOOK = None


def _step(label: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(label)


# ---- what is in a folder, and whose it is ------------------------------------------------------
def listing(directory: str | os.PathLike) -> list[str]:
    """Relative names of every file and symbolic link under ``directory``, hidden ones too.

    Symbolic links are entries themselves and are never followed. Empty folders are not entries.
    """
    directory = Path(directory)
    out = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        base = Path(root)
        out.extend(str((base / f).relative_to(directory)) for f in files)
        out.extend(str((base / d).relative_to(directory)) for d in dirs if (base / d).is_symlink())
    return sorted(out)


def _manifest(directory: Path) -> dict | None:
    try:
        data = read_json(directory / MANIFEST)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def foreign_files(directory: str | os.PathLike) -> list[str] | None:
    """Files of ``directory`` that its ``manifest.json`` does not list as cwpo's own.

    ``None`` when there is no readable manifest with a file list (cwpo cannot tell its files
    from anyone else's), else the (possibly empty) list of files it did not write.
    """
    directory = Path(directory)
    owned = (_manifest(directory) or {}).get("files")
    if not isinstance(owned, list):
        return None
    owned_set = set(owned) | {MANIFEST}
    return [f for f in listing(directory) if f not in owned_set]


def scratch_info(path: Path) -> dict | None:
    """The mark of a scratch folder cwpo created (``None`` if ``path`` is not one)."""
    if path.is_symlink() or not path.is_dir():
        return None
    try:
        data = read_json(path / SCRATCH_MARK)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "for" in data else None


def _check_name(path: Path, flag: str = "--output") -> Path:
    """``path`` made absolute; a path without a name (``/``) can hold no output beside anything."""
    full = Path(os.path.abspath(path.expanduser()))
    if not full.name:
        raise CWPOError(f"{flag} {path} is the filesystem root: choose a folder or file inside it")
    return full


# ---- the checks made before any work -----------------------------------------------------------
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

    Call it before any work. ``kind`` is ``"dir"`` or ``"file"``. A new path or a folder without
    files is fine. An existing one must be an output of the same ``stage`` (its ``manifest.json``
    says so; for a file, its ``marker`` file beside it names it). Replacing such an output needs
    ``overwrite``, and every file in it must be one cwpo listed when it wrote it. ``in_place``
    stages (a run folder, a report) only ever rewrite their own files, so they continue in an
    output of their stage without ``overwrite``. Returns True when an earlier output exists.
    Raises :class:`CWPOError` (one line, exit 2) otherwise.
    """
    _check_name(Path(path))
    path = Path(path)  # messages name it as the user gave it
    if not path.exists() and not path.is_symlink():
        return False
    never = "cwpo never replaces what it did not write: choose a new or empty --output"
    if path.is_symlink() and not in_place:
        raise CWPOError(f"--output {path} is a symbolic link; {never}")
    if kind == "dir":
        if not path.is_dir():
            raise CWPOError(f"--output {path} is an existing file, but `{stage}` writes a folder: {never}")
        if not listing(path):  # empty, or only empty folders (e.g. a run killed before its first file)
            return False
        found = (_manifest(path) or {}).get("stage")
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
        check_replaceable(path)
        return True
    if path.is_dir():
        raise CWPOError(f"--output {path} is an existing folder, but `{stage}` writes a file: {never}")
    if not marks(marker, path):
        raise CWPOError(f"--output {path} already exists and was not written by cwpo `{stage}`; {never}")
    if not (overwrite or in_place):
        raise CWPOError(
            f"--output {path} holds an earlier `{stage}` output; pass --overwrite to replace it, "
            "or choose another --output"
        )
    return True


def marks(marker: str | os.PathLike | None, path: Path) -> bool:
    """Whether ``marker`` is cwpo's record of having written the file ``path`` (it names it)."""
    if marker is None:
        return False
    try:
        data = read_json(marker)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and Path(str(data.get("output", ""))).name == path.name


def guard_sidecar(path: str | os.PathLike, owner: str | os.PathLike, what: str) -> None:
    """Refuse when ``path`` (a file cwpo writes beside its output ``owner``, e.g. its stats) exists
    and is not cwpo's record of ``owner``."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not marks(path, Path(owner)):
        raise CWPOError(
            f"{path} exists and is not cwpo's {what} of {Path(owner).name}: move it away or choose another --output"
        )


def check_replaceable(path: str | os.PathLike) -> None:
    """Raise unless cwpo may replace ``path``: absent, a folder without files, or a folder whose
    every file its manifest lists. Made before any work and again just before the swap."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        raise CWPOError(f"{path} is not a folder cwpo wrote: refusing to replace it")
    if not listing(path):
        return
    foreign = foreign_files(path)
    if foreign is None:
        if _manifest(path) is None:
            raise CWPOError(
                f"--output {path} holds files cwpo did not write (no manifest lists them): move them away "
                "or choose another --output"
            )
        raise CWPOError(
            f"--output {path} was written by an older cwpo that did not list its files, so cwpo cannot "
            "tell them from yours: remove it yourself or choose another --output"
        )
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise CWPOError(
            f"--output {path} holds {foreign[0]}{more}, which cwpo did not write; move it away "
            "or choose another --output"
        )


# ---- deleting and swapping ------------------------------------------------------------------------
def remove_owned(path: str | os.PathLike) -> list[str]:
    """Delete the files ``path``'s manifest lists (the manifest last), then its empty folders.

    Returns what was left (files cwpo did not write: never deleted). A folder without a manifest
    loses only its empty folders.
    """
    path = Path(path)
    owned = (_manifest(path) or {}).get("files")
    for name in owned if isinstance(owned, list) else []:
        f = path / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            continue  # a manifest never lists anything outside its folder
        if f.is_symlink() or f.is_file():
            _step("delete")
            f.unlink()
    if isinstance(owned, list) and (path / MANIFEST).is_file():
        _step("delete")
        (path / MANIFEST).unlink()
    _remove_empty_folders(path)
    left = listing(path) if path.is_dir() else []
    if left:
        log.warning("%s: left %d file(s) cwpo did not write (e.g. %s)", path, len(left), left[0])
    return left


def _remove_empty_folders(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        return
    for root, dirs, _files in os.walk(path, topdown=False, followlinks=False):
        for d in dirs:
            with contextlib.suppress(OSError):  # not empty (or a link): left alone
                if not (Path(root) / d).is_symlink():
                    os.rmdir(Path(root) / d)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def remove_scratch(path: str | os.PathLike) -> None:
    """Delete a scratch folder cwpo created (it holds :data:`SCRATCH_MARK`); anything else stays."""
    path = Path(path)
    if scratch_info(path) is None:
        return
    _step("delete")
    shutil.rmtree(path, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the paths ``a`` and ``b`` (Linux ``renameat2``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_into_place(new: str | os.PathLike, path: str | os.PathLike) -> None:
    """Put the finished folder ``new`` at ``path``; remove the earlier output there by its manifest.

    ``path`` is checked again (:func:`check_replaceable`) right before. With an atomic exchange the
    earlier output is at ``path`` until the instant the new one is; without one (not Linux), it is
    moved into a fresh scratch folder first, so a crash in between leaves it whole there.
    """
    new, path = Path(new), Path(path)
    (new / SCRATCH_MARK).unlink(missing_ok=True)
    if not path.exists() and not path.is_symlink():
        _step("rename")
        os.replace(new, path)
        return
    check_replaceable(path)
    _step("rename")
    if _exchange(new, path):
        old = new
    else:
        old = make_scratch(path, purpose="earlier output being replaced") / "old"
        os.replace(path, old)
        _step("rename")
        os.replace(new, path)
    remove_owned(old)
    if old.name == "old":
        _remove_empty_scratch(old.parent)


def _remove_empty_scratch(folder: Path) -> None:
    (folder / SCRATCH_MARK).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        os.rmdir(folder)


def make_scratch(path: str | os.PathLike, purpose: str = "new output", name: str | None = None) -> Path:
    """Create a scratch folder beside ``path`` (same filesystem, so the final move is a rename),
    marked as cwpo's. ``name``: a fixed name (a resumable training run), else a fresh one. Stale
    scratch folders of dead cwpo processes beside it are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_scratch(path.parent)
    if name is None:
        folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        folder = path.parent / name
        folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o777 & ~UMASK)
    mark = {
        "for": path.name,
        "purpose": purpose,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "created": now_iso(),
        "resumable": name is not None,
    }
    write_json(folder / SCRATCH_MARK, mark)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_scratch(parent: str | os.PathLike) -> None:
    """Remove scratch folders in ``parent`` that a cwpo process on this machine created and did
    not finish (it was killed): each holds :data:`SCRATCH_MARK`, naming its process. A resumable
    one (a training run's checkpoints) is kept for ``--resume``."""
    parent = Path(parent)
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    host = socket.gethostname()
    for entry in entries:
        info = scratch_info(entry)
        if not info or info.get("resumable") or info.get("host") != host:
            continue
        pid = info.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and not _alive(pid):
            remove_scratch(entry)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a scratch folder beside ``path``; on success it replaces ``path``.

    A killed process leaves the earlier ``path`` as it was (and a marked scratch folder, removed
    by the next cwpo that writes beside it). An existing ``path`` is replaced only if cwpo wrote
    all of it (:func:`check_replaceable`, checked before the work and again at the swap).
    """
    path = _check_name(Path(path))
    if path.exists() and not path.is_dir():
        raise CWPOError(f"{path} is an existing file, not a folder: choose another --output")
    check_replaceable(path)
    tmp = make_scratch(path)
    try:
        yield tmp
        swap_into_place(tmp, path)
    finally:
        if tmp.exists():
            remove_scratch(tmp)


# ---- manifests ----------------------------------------------------------------------------------
def write_manifest(
    directory: str | os.PathLike,
    stage: str,
    config: dict,
    inputs_hash: str,
    metrics: dict | None = None,
    files: list[str] | None = None,
) -> Path:
    """Write ``manifest.json``: the stage, its config, the hash of its inputs, metrics, versions
    and ``files``: every file cwpo wrote here (default: every file of ``directory``, right for a
    scratch folder cwpo created; a stage writing into an existing folder passes its own list)."""
    import importlib.metadata as md

    directory = Path(directory)
    versions = {}
    for pkg in ("cwpo", "torch", "transformers", "trl", "peft", "datasets", "accelerate"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[pkg] = md.version(pkg)
    if files is None:
        files = listing(directory)
    manifest = {
        "stage": stage,
        "config": config,
        "inputs_hash": inputs_hash,
        "metrics": metrics or {},
        "versions": versions,
        "created": now_iso(),
        # every file cwpo wrote here, so a later --overwrite can prove it deletes nothing else
        "files": sorted({f for f in files if f not in (MANIFEST, SCRATCH_MARK)}),
    }
    return write_json(directory / MANIFEST, manifest)


def owned_in_place(directory: str | os.PathLike, written: list[str]) -> list[str]:
    """The files of ``directory`` cwpo owns after writing ``written`` into it in place: the ones its
    manifest listed before (still there) and the new ones. Anything else stays not cwpo's."""
    directory = Path(directory)
    before = (_manifest(directory) or {}).get("files")
    before = before if isinstance(before, list) else []
    present = set(listing(directory)) if directory.is_dir() else set()
    return sorted((set(before) | set(written)) & present)


# ---- the log file beside an output ------------------------------------------------------------
LOG_HEADER = "=== cwpo"  # how every log file cwpo creates starts (cwpo.console writes it)


def is_cwpo_log(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(len(LOG_HEADER)).decode("utf-8", "replace") == LOG_HEADER
    except OSError:
        return False


def log_path_beside(output: str | os.PathLike) -> tuple[Path, str | None]:
    """Where the log of a command writing ``output`` goes, and a note when it is not the usual
    place: ``<output>.log`` if absent or a log cwpo created there; else (a user's file, a folder)
    the first free or cwpo-owned ``<output>.cwpo-N.log``: cwpo never appends to a file it did not create."""
    path = _check_name(Path(output))
    first = path.with_name(path.name + ".log")
    if not (first.exists() or first.is_symlink()) or is_cwpo_log(first):
        return first, None
    for n in range(1, 1000):
        alt = path.with_name(f"{path.name}.cwpo-{n}.log")
        if not (alt.exists() or alt.is_symlink()) or is_cwpo_log(alt):
            return alt, f"{first} is not a cwpo log (cwpo never writes into it): logging to {alt}"
    raise CWPOError(f"{first} and 999 alternatives are taken: choose another --output")


__all__ = [
    "LOG_HEADER",
    "MANIFEST",
    "SCRATCH_MARK",
    "atomic_dir",
    "check_replaceable",
    "clean_stale_scratch",
    "foreign_files",
    "guard_output",
    "guard_sidecar",
    "is_cwpo_log",
    "listing",
    "log_path_beside",
    "marks",
    "make_scratch",
    "owned_in_place",
    "remove_owned",
    "remove_scratch",
    "swap_into_place",
    "write_manifest",
]
