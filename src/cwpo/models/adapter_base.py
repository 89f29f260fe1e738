"""Which base model an adapter was trained on: recorded when saved, checked whenever it is loaded.

A LoRA adapter is only meaningful on the exact weights it was trained on. cwpo therefore never
stores a relative path as an adapter's base (``sft0`` would mean a different folder from every
other working directory):

* ``adapter_config.json``'s ``base_model_name_or_path`` is an absolute path for a local folder
  (a packaged short name is stored as its resolved folder), or a hub id as given;
* ``base_model.json`` beside it records that reference, the name the user gave, the base's path
  relative to the adapter folder, and a fingerprint of the base's files (:func:`base_fingerprint`).

Loading (:func:`adapter_base`) uses the stored absolute path when it still holds the same model.
When that path is gone it tries, in order, the recorded relative location (a pipeline folder
moved as a whole) and the packaged short name (another machine), each accepted only if its
fingerprint matches; a folder whose files changed since (an SFT output trained again in place)
is refused. An adapter written before the record existed and naming a relative base is resolved
from the current folder with a warning, since nothing can confirm it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from cwpo.atomic_files import write_json
from cwpo.errors import ModelNotFoundError, warn
from cwpo.models import registry
from cwpo.models.registry import OFFLINE_MODELS, is_hub_id, resolve_model

ADAPTER_CONFIG = "adapter_config.json"
BASE_RECORD = "base_model.json"
_WHOLE_FILE = 4 << 20  # files up to this size are hashed whole; larger ones by size, head and tail
_SAMPLE = 1 << 20


def base_reference(model_ref: str | os.PathLike) -> str:
    """What an adapter trained on ``model_ref`` stores as its base: an absolute folder or a hub id."""
    resolved = resolve_model(model_ref, check_hub=False)
    path = Path(resolved)
    return str(path.resolve()) if path.exists() else resolved


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if size <= _WHOLE_FILE:
            h.update(f.read())
        else:
            h.update(f.read(_SAMPLE))
            f.seek(size - _SAMPLE)
            h.update(f.read(_SAMPLE))
    return h.hexdigest()


def base_fingerprint(ref: str | os.PathLike) -> str | None:
    """A fingerprint of the model folder ``ref`` (None for a hub id, whose content is the hub's).

    Covers the names and sizes of the folder's top-level files (weights, config, tokenizer and, for
    a cwpo output, its manifest, which records when and from what it was trained), the whole
    content of files up to 4 MiB and the first and last MiB of larger ones: cheap for a 14B model,
    and different for a model trained again or another model saved under the same name.
    """
    path = Path(ref)
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        h.update(f.name.encode() + b"\0" + _file_digest(f).encode() + b"\n")
    return "sha256:" + h.hexdigest()


def record_base(
    adapter_dir: str | os.PathLike, model_ref: str, final_dir: str | os.PathLike | None = None
) -> str:
    """Write the base of the adapter in ``adapter_dir`` (trained on ``model_ref``); return the reference.

    ``final_dir`` is where the adapter will live when it is written into a temporary folder first
    (the base's relative location is taken from there).
    """
    adapter_dir = Path(adapter_dir)
    reference = base_reference(model_ref)
    cfg_path = adapter_dir / ADAPTER_CONFIG
    data = json.loads(cfg_path.read_text(encoding="utf-8"))
    data["base_model_name_or_path"] = reference
    write_json(cfg_path, data)
    home = Path(final_dir or adapter_dir).resolve()
    relative = os.path.relpath(reference, home) if Path(reference).is_absolute() else None
    record = {
        "reference": reference,
        "given": str(model_ref),
        "relative_to_adapter": relative,
        "fingerprint": base_fingerprint(reference),
    }
    write_json(adapter_dir / BASE_RECORD, record)
    return reference


def _is_relative_path(ref: str) -> bool:
    return ref not in OFFLINE_MODELS and not Path(ref).expanduser().is_absolute()


def adapter_base(adapter_dir: str | os.PathLike) -> str:
    """The base model to load the adapter in ``adapter_dir`` on (see the module docstring)."""
    adapter_dir = Path(adapter_dir)
    stored = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8")).get(
        "base_model_name_or_path"
    )
    if not stored:
        raise ModelNotFoundError(
            f"{adapter_dir / ADAPTER_CONFIG} names no base model (base_model_name_or_path)"
        )
    record_path = adapter_dir / BASE_RECORD
    if not record_path.exists():
        return _legacy_base(adapter_dir, stored)
    record = json.loads(record_path.read_text(encoding="utf-8"))
    reference, fingerprint = record.get("reference") or stored, record.get("fingerprint")
    if fingerprint is None:  # a hub id: the hub decides what it holds
        return reference
    if Path(reference).exists():
        if base_fingerprint(reference) != fingerprint:
            raise ModelNotFoundError(
                f"adapter {adapter_dir} was trained on {reference}, but that folder now holds a different "
                "model (its files changed since): restore that base or train the adapter again"
            )
        return reference
    candidates = []
    if record.get("relative_to_adapter"):
        candidates.append(str((adapter_dir.resolve() / record["relative_to_adapter"]).resolve()))
    if record.get("given") in OFFLINE_MODELS:
        candidates.append(resolve_model(record["given"]))
    for candidate in candidates:
        if Path(candidate).exists() and base_fingerprint(candidate) == fingerprint:
            return candidate
    raise ModelNotFoundError(
        f"adapter {adapter_dir} was trained on {reference}, which does not exist here"
        + (f" (nor the same model at {', '.join(candidates)})" if candidates else "")
        + ": put that base model back, or train the adapter again"
    )


def _legacy_base(adapter_dir: Path, stored: str) -> str:
    """The base of an adapter without a record: a relative path is taken from the current folder,
    with a warning (nothing can confirm it is the model the adapter was trained on)."""
    if not _is_relative_path(stored):
        return stored
    if Path(stored).exists():
        resolved = str(Path(stored).resolve())
        warn(
            f"adapter {adapter_dir} names its base by the relative path {stored!r} (an older cwpo wrote it): "
            f"using {resolved}; if that is not the model it was trained on, set base_model_name_or_path in "
            f"{adapter_dir / ADAPTER_CONFIG} to the right absolute path"
        )
        return resolved
    if is_hub_id(stored):
        return stored  # a hub id (or a missing relative folder, which then fails as an unknown hub model)
    raise ModelNotFoundError(
        f"adapter {adapter_dir} names its base by the relative path {stored!r}, which does not exist from "
        f"the current folder {Path.cwd()}: run from the folder it was trained in, or set "
        f"base_model_name_or_path in {adapter_dir / ADAPTER_CONFIG} to the base's absolute path"
    )


def same_model(a: str, b: str) -> bool:
    """Whether two model references name the same model (same folder or same fingerprint, or equal ids)."""
    pa, pb = Path(resolve_model(a, check_hub=False)), Path(resolve_model(b, check_hub=False))
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve() or base_fingerprint(pa) == base_fingerprint(pb)
    return str(pa) == str(pb)


def base_mismatch(adapter_ref: str, given_base: str) -> str | None:
    """One line saying that the adapter ``adapter_ref`` was not trained on ``given_base``, or None.

    None also when ``adapter_ref`` is not an adapter folder.
    """
    path = Path(resolve_model(adapter_ref, check_hub=False))
    if not (path / ADAPTER_CONFIG).exists():
        return None
    base = adapter_base(path)
    if same_model(base, given_base):
        return None
    return f"{adapter_ref} was trained on {base}, not on {given_base}"


def check_model(ref: str) -> None:
    """A clear error now, before any work, unless ``ref`` can be loaded here: a packaged name, a
    model folder or a reachable hub id, and for an adapter the base it was trained on (recursively).
    Nothing is converted, downloaded or loaded."""
    registry.check_model(ref)
    if ref in OFFLINE_MODELS:
        return
    path = Path(resolve_model(ref, check_hub=False))
    if (path / ADAPTER_CONFIG).exists():
        check_model(adapter_base(path))
