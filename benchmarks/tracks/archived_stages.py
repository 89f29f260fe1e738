"""A stage cache without what a command rebuilds: small enough to keep in git, restorable elsewhere.

A bench that needs more hours than one sitting, on machines that do not keep their files between
sittings, continues only from what it saved. :func:`archive_stages` copies every complete stage
of a cache folder (see :mod:`cwpo.experiments.cache`) into an archive folder, keeping what resuming
and auditing need and nothing a command can rebuild:

- every stage keeps its manifest, metrics, labels, annotations, pair pools and evaluation rows,
  but not the weights, adapter and tokenizer of a model folder, nor ``checkpoints/`` (the SFT,
  align and annotator stages become *stubs*);
- stages named in ``manifest_only`` (default: ``data``, a split of a shared data set that the
  recipe and that data set rebuild in seconds) keep only their manifest, marked to be computed
  again (same key) the first time a run meets them;
- a stub lists what was left out in :data:`cwpo.experiments.cache.LEFT_OUT`; absolute paths of the
  cache (``manifest.json`` inputs, adapter base folders) become placeholders, and JSON Lines files
  of 64 KiB or more are gzipped (byte-stable: no timestamp).

:func:`restore_stages` writes the archived stages that the cache lacks back into it, placeholders
replaced by the new cache's paths, so a run with the same recipe finds them cached (stage keys
hash configs, not paths). A stage that has to be computed from a stub (a new method from the SFT
model, say) stops with one line naming the stub's folder: deleting it computes that stage anew.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

from cwpo.atomic_files import read_json, write_json
from cwpo.errors import CWPOError
from cwpo.experiments.cache import LEFT_OUT
from cwpo.models import resolve_model

CACHE_TOKEN = "@CACHE@"
MODEL_TOKEN = "@MODEL@"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
KEEP_IN_MODEL = ("metrics.json", "cwpo_config.json", "manifest.json")
TEXT_SUFFIXES = (".json", ".jsonl", ".yaml", ".txt", ".md")
GZIP_AT = 64 * 1024


def _is_model_dir(folder: Path) -> bool:
    return any(f.suffix in WEIGHT_SUFFIXES for f in folder.iterdir() if f.is_file())


def _model_path(stage: Path) -> str | None:
    """The local folder of the model a stage was trained from (its manifest's ``model``), if any."""
    ref = read_json(stage / "manifest.json").get("config", {}).get("config", {}).get("model")
    if not isinstance(ref, str):
        return None
    try:
        return str(resolve_model(ref, check_hub=False))
    except CWPOError:
        return None


def _files(stage: Path, manifest_only: bool) -> tuple[list[Path], list[str]]:
    """The files of a stage folder to archive, and those left out (relative paths)."""
    keep, dropped = [], []
    model_dirs = {d for d in [stage, *stage.rglob("*")] if d.is_dir() and _is_model_dir(d)}
    for f in sorted(stage.rglob("*")):
        if not f.is_file():
            continue
        rel = f.relative_to(stage)
        if "checkpoints" in rel.parts or rel.name == LEFT_OUT:
            continue
        if (manifest_only and rel.as_posix() != "manifest.json") or (
            f.parent in model_dirs and f.name not in KEEP_IN_MODEL
        ):
            dropped.append(rel.as_posix())
            continue
        keep.append(f)
    return keep, dropped


def _replace(text: str, pairs: list[tuple[str, str]], name: str) -> str:
    """Placeholders for machine paths; a manifest keeps its model reference as written (it is
    part of the stage's key), only its input folders move with the cache."""
    for old, new in pairs:
        if old and not (name == "manifest.json" and MODEL_TOKEN in (old, new)):
            text = text.replace(old, new)
    return text


def _copy_out(src: Path, dst: Path, pairs: list[tuple[str, str]]) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix not in TEXT_SUFFIXES:
        shutil.copyfile(src, dst)
        return
    data = _replace(src.read_text(encoding="utf-8"), pairs, src.name).encode("utf-8")
    if src.suffix == ".jsonl" and len(data) >= GZIP_AT:
        with (
            open(str(dst) + ".gz", "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
        ):
            gz.write(data)
    else:
        dst.write_bytes(data)


def _copy_in(src: Path, dst: Path, pairs: list[tuple[str, str]]) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.name.endswith(".jsonl.gz"):
        dst = dst.with_name(src.name[: -len(".gz")])
        text = gzip.decompress(src.read_bytes()).decode("utf-8")
    elif src.suffix in TEXT_SUFFIXES:
        text = src.read_text(encoding="utf-8")
    else:
        shutil.copyfile(src, dst)
        return
    dst.write_text(_replace(text, pairs, dst.name), encoding="utf-8")


def _complete_stages(stages: Path) -> list[Path]:
    if not stages.is_dir():
        return []
    return sorted(
        d
        for d in stages.iterdir()
        if d.is_dir() and not d.name.startswith(".") and (d / "manifest.json").exists()
    )


def archive_stages(
    cache: str | Path, archive: str | Path, manifest_only: tuple[str, ...] = ("data",)
) -> dict:
    """Copy the complete stages of ``cache`` that ``archive`` lacks; return counts and stub names."""
    cache, archive = Path(cache).resolve(), Path(archive)
    added, stubs = [], []
    for stage in _complete_stages(cache / "stages"):
        target = archive / "stages" / stage.name
        if target.exists():
            continue
        kind = read_json(stage / "manifest.json").get("stage")
        recompute = kind in manifest_only
        keep, dropped = _files(stage, manifest_only=recompute)
        model = _model_path(stage)
        pairs = [(str(cache), CACHE_TOKEN), *([(model, MODEL_TOKEN)] if model else [])]
        if (stage / LEFT_OUT).exists():  # restored from an archive: what it already lacked
            dropped = sorted({*read_json(stage / LEFT_OUT)["dropped"], *dropped})

        def fill(
            tmp: Path, stage=stage, keep=keep, dropped=dropped, pairs=pairs, recompute=recompute
        ) -> None:
            for f in keep:
                _copy_out(f, tmp / f.relative_to(stage), pairs)
            if dropped:
                write_json(tmp / LEFT_OUT, {"dropped": dropped, **({"recompute": True} if recompute else {})})

        if _publish(target, fill):
            added.append(stage.name)
            if dropped:
                stubs.append(stage.name)
    return {"archived": added, "stubs": stubs, "in_archive": len(_complete_stages(archive / "stages"))}


def restore_stages(archive: str | Path, cache: str | Path, rebuild: tuple[str, ...] = ()) -> list[str]:
    """Write every archived stage that ``cache`` lacks into it; return their names.

    A stub of a stage kind named in ``rebuild`` (``"sft"``, say: minutes to train again, and new
    stages need its weights) is restored marked to be computed again, same key, the first time a
    run meets it; its archived metrics stay readable until then.
    """
    archive, cache = Path(archive), Path(cache).resolve()
    restored = []
    for stage in _complete_stages(archive / "stages"):
        target = cache / "stages" / stage.name
        if (target / "manifest.json").exists():
            continue
        model = _model_path(stage)
        pairs = [(CACHE_TOKEN, str(cache)), *([(MODEL_TOKEN, model)] if model else [])]
        again = (stage / LEFT_OUT).exists() and read_json(stage / "manifest.json").get("stage") in rebuild

        def fill(tmp: Path, stage=stage, pairs=pairs, again=again) -> None:
            for f in sorted(p for p in stage.rglob("*") if p.is_file()):
                _copy_in(f, tmp / f.relative_to(stage), pairs)
            if again:
                write_json(tmp / LEFT_OUT, {**read_json(tmp / LEFT_OUT), "recompute": True})

        if _publish(target, fill):
            restored.append(stage.name)
    return restored


def _publish(target: Path, fill) -> bool:
    """Fill a temporary folder beside ``target`` and move it into place whole. False when another
    process finished the same stage first (both write the same content: theirs stays)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=_mkdir(target.parent)))
    try:
        fill(tmp)
        if target.exists() and not (target / "manifest.json").exists():
            shutil.rmtree(target, ignore_errors=True)  # incomplete: nothing finished there
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "manifest.json").exists():
                raise
            return False
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
