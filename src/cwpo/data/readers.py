"""Read raw records from files (JSONL, JSON, CSV, Parquet, optionally gzipped) or the hub.

Each record comes with its 1-based row number so that every later error can name it.
Malformed JSON, non-UTF-8 bytes and empty files are fatal, with the file and row named.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

from cwpo.errors import DataError

FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def file_type(path: Path) -> str:
    """``jsonl``/``json``/``csv``/``parquet`` from the name (a trailing ``.gz`` is ignored)."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    for suffix in FILE_SUFFIXES:
        if name.endswith(suffix):
            return suffix[1:]
    raise DataError(
        f"cannot tell the file type from its name; expected one of {FILE_SUFFIXES} (optionally .gz)",
        str(path),
    )


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


_BROKEN_GZIP = (EOFError, gzip.BadGzipFile, zlib.error)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line_number, raw line)`` of a (possibly gzipped) file; a broken gzip is a :class:`DataError`."""
    with _open_bytes(path) as fh:
        try:
            yield from enumerate(fh, 1)
        except _BROKEN_GZIP as e:
            raise DataError(f"not a readable gzip file: {e}", str(path)) from None


def _read_all(path: Path) -> bytes:
    with _open_bytes(path) as fh:
        try:
            return fh.read()
        except _BROKEN_GZIP as e:
            raise DataError(f"not a readable gzip file: {e}", str(path)) from None


def _decode(raw: bytes, path: Path, row: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start}", str(path), row
        ) from None


def iter_records(path: str | Path, kind: str | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(row_number, record)`` from a local file; raises :class:`DataError` on bad input.

    ``kind`` (``jsonl``/``json``/``csv``/``parquet``) defaults to :func:`file_type` of the name.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", str(path))
    if path.is_dir():
        raise DataError("is a folder, not a data file", str(path))
    kind = kind or file_type(path)
    count = 0
    if kind == "jsonl":
        for i, raw in _lines(path):
            line = _decode(raw, path, i)
            if not line.strip():
                continue
            try:
                record = json.loads(line.rstrip("\r\n"))  # with the newline, an error at the end is "line 2"
            except json.JSONDecodeError as e:
                raise DataError(f"malformed JSON: {e.msg} (column {e.pos + 1})", str(path), i) from None
            if not isinstance(record, dict):
                raise DataError(f"expected a JSON object per line, got {type(record).__name__}", str(path), i)
            count += 1
            yield i, record
    elif kind == "json":
        text = _decode(_read_all(path), path, 1)
        try:
            data = json.loads(text) if text.strip() else []
        except json.JSONDecodeError as e:
            raise DataError(
                f"malformed JSON: {e.msg} (line {e.lineno}, column {e.colno})", str(path), e.lineno
            ) from None
        if isinstance(data, dict):  # {"data": [...]} or column-oriented {"prompt": [...], ...}
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(data) == 1 and lists:
                data = lists[0]
            elif lists and len(lists) == len(data) and len({len(v) for v in lists}) == 1:
                data = [dict(zip(data, vals, strict=True)) for vals in zip(*data.values(), strict=True)]
            else:
                raise DataError("expected a JSON list of objects (or a column-oriented object)", str(path))
        for i, record in enumerate(data, 1):
            if not isinstance(record, dict):
                raise DataError(f"expected an object, got {type(record).__name__}", str(path), i)
            count += 1
            yield i, record
    elif kind == "csv":
        text = _decode(_read_all(path), path, 1)
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for i, record in enumerate(reader, 2):  # row 1 is the header
            count += 1
            yield i, dict(record)
    else:  # parquet
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # noqa: BLE001
            raise DataError(f"not a readable Parquet file: {e}", str(path)) from None
        for i, record in enumerate(table.to_pylist(), 1):
            count += 1
            yield i, record
    if count == 0:
        raise DataError("file is empty: it holds no records", str(path))


def read_records(path: str | Path) -> list[dict]:
    """Every record of a local file cwpo wrote or a user gave a stage (JSONL, JSON, CSV or Parquet,
    optionally gzipped; a name without a known suffix is read as JSON Lines); ``[]`` when empty."""
    path = Path(path)
    try:
        kind = file_type(path)
    except DataError:
        kind = "jsonl"
    try:
        return [record for _, record in iter_records(path, kind)]
    except DataError as e:
        if e.problem == "file is empty: it holds no records":
            return []
        raise


def iter_hub_records(
    dataset_id: str, split: str = "train", data_dir: str | None = None
) -> Iterator[tuple[int, dict]]:
    """Records of a hub dataset through ``datasets.load_dataset`` (needs the hub or its cache)."""
    from cwpo.models.registry import hub_unreachable

    offline = hub_unreachable()  # decided once; offline, datasets reads its cache without retrying
    try:
        import datasets

        if offline is not None:
            datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
        ds = datasets.load_dataset(dataset_id, data_dir=data_dir, split=split)
    except Exception as e:  # noqa: BLE001 - any hub/network failure gets the same advice
        raise DataError(
            f"cannot load hub dataset {dataset_id!r} (split {split!r}): {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}{f' ({offline})' if offline else ''}. Offline, download "
            "it elsewhere and pass the local files (JSONL/JSON/CSV/Parquet) instead.",
            dataset_id,
        ) from None
    for i, record in enumerate(ds, 1):
        yield i, dict(record)
