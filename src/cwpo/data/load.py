"""``load_pairs``: any supported source to normalized pairs, with counts of what was skipped."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cwpo.data.formats import CONVERTERS, MissingColumns, RowProblem, detect_layout
from cwpo.data.readers import iter_hub_records, iter_records
from cwpo.errors import DataError

# The paper's subsets are the ``-base`` folders. Its App. E counts after the 512-token filter,
# Harmless 35,908 / 1,927 and Helpful 34,873 / 1,878 train / test pairs, keep ~80% of harmless-base
# (42,537 / 2,312) and of helpful-base (43,835 / 2,354), but would keep only ~30% of the three
# helpful folders together (118k / 6,240). The ``-all`` names add helpful-online and
# helpful-rejection-sampled (responses of later, stronger models: harder pairs).
HH_SUBSETS = {
    "harmless": ("harmless-base",),
    "helpful": ("helpful-base",),
    "hh": ("harmless-base", "helpful-base"),
    "helpful-all": ("helpful-base", "helpful-online", "helpful-rejection-sampled"),
    "hh-all": ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled"),
}
FORMATS = ("auto", *CONVERTERS)
MAX_ROWS_NAMED = 10


@dataclass
class LoadResult:
    rows: list[dict]
    kind: str  # "labeled" or "unlabeled"
    stats: dict = field(default_factory=dict)  # loaded, skipped by reason, the first rows skipped


def hh_files(root: str | os.PathLike, subset: str = "hh", split: str = "test") -> list[Path]:
    """The files of an HH-RLHF folder (``<root>/<subset-dir>/<split>.jsonl[.gz]``) for a paper subset.

    A folder holding only some subset folders (like the embedded slice) serves the subsets it has.
    """
    if subset not in HH_SUBSETS:
        raise DataError(f"unknown HH-RLHF subset {subset!r}; choose one of {sorted(HH_SUBSETS)}", str(root))
    files = []
    names = HH_SUBSETS[subset]
    if subset in ("hh", "hh-all"):  # both aspects: whatever of those folders is present
        names = tuple(n for n in names if (Path(root) / n).is_dir()) or names
    for name in names:
        candidates = [Path(root) / name / f"{split}.jsonl.gz", Path(root) / name / f"{split}.jsonl"]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            raise DataError(
                f"HH-RLHF subset {subset!r} needs {name}/{split}.jsonl[.gz], which is missing", str(root)
            )
        files.append(found)
    return files


EMBEDDED_PREFIX = "cwpo:"
RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def resolve_source(source: str) -> str:
    """``cwpo:NAME`` names data shipped inside the package (e.g. ``cwpo:hh-rlhf-slice``)."""
    if source.startswith(EMBEDDED_PREFIX):
        name = source[len(EMBEDDED_PREFIX) :]
        path = RESOURCES / name
        if not path.exists() or not name:
            names = sorted(p.name for p in RESOURCES.iterdir() if p.is_dir())
            raise DataError(
                f"no embedded data set {name!r}; embedded: {[EMBEDDED_PREFIX + n for n in names]}", source
            )
        return str(path)
    return source


def _sources(source: str, fmt: str, subset: str | None, split: str) -> list[tuple[str, object]]:
    """(label, record iterator factory) for each file or hub dataset behind ``source``."""
    source = resolve_source(source)
    path = Path(source).expanduser()
    if path.is_dir():
        files = (
            hh_files(path, subset or "hh", split)
            if fmt in ("auto", "hh-rlhf") and any((path / d).is_dir() for d in HH_SUBSETS["hh-all"])
            else sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        )
        if not files:
            raise DataError("folder holds no data files", str(path))
        return [(str(f), lambda f=f: iter_records(f)) for f in files]
    if path.exists():
        return [(str(path), lambda: iter_records(path))]
    if "/" in source and not source.startswith((".", "/")) and source.count("/") == 1:
        data_dirs = HH_SUBSETS[subset] if (subset and "hh-rlhf" in source.lower()) else (None,)
        return [
            (f"{source}:{d or ''}:{split}", lambda d=d: iter_hub_records(source, split, d)) for d in data_dirs
        ]
    raise DataError("no such file or folder (and not a hub dataset id of the form org/name)", source)


def _row_source(label: str) -> str:
    """What a row records as its source: ``folder/file`` for a file (``file`` alone in the current
    folder), the label itself for a hub dataset."""
    path = Path(label)
    if not path.exists():
        return label
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def check_source(source: str, format: str = "auto", subset: str | None = None, split: str = "test") -> None:  # noqa: A002
    """Raise :class:`DataError` unless ``source`` names existing files or a hub id (reads nothing)."""
    _sources(str(source), format, subset, split)


def load_pairs(
    source: str | os.PathLike,
    format: str = "auto",  # noqa: A002 - the CLI flag is --format
    *,
    subset: str | None = None,
    split: str = "test",
    column_map: dict[str, str] | None = None,
    strict: bool = False,
    limit: int | None = None,
) -> LoadResult:
    """Load preference pairs from a file, a folder (e.g. the HH-RLHF root) or a hub dataset id.

    Rows that cannot be a pair (identical responses, an empty response, HH contexts that differ
    between chosen and rejected) are skipped and counted by reason, with the first rows named in
    ``stats``; with ``strict=True`` the first such row is an error naming file and row. A missing
    column, malformed JSON, a non-UTF-8 byte or an empty file is always an error.
    """
    if format not in FORMATS:
        raise DataError(f"unknown format {format!r}; choose one of {list(FORMATS)}", str(source))
    source = str(source)
    rows: list[dict] = []
    skipped: Counter = Counter()
    examples: list[str] = []
    kinds = set()
    per_file = {}
    for label, factory in _sources(source, format, subset, split):
        layout = None if format == "auto" else format
        n_file = 0
        for row_no, record in factory():
            layout = layout or detect_layout(record)
            convert = CONVERTERS[layout]
            try:
                row = convert(record, column_map) if layout == "pairs" else convert(record)
            except MissingColumns as e:
                raise DataError(str(e), label, row_no) from None
            except RowProblem as e:
                if strict:
                    raise DataError(
                        f"{e} (use non-strict loading to skip and count such rows)", label, row_no
                    ) from None
                skipped[e.reason] += 1
                if len(examples) < MAX_ROWS_NAMED:
                    examples.append(f"{label}, row {row_no}: {e}")
                continue
            kinds.add("labeled" if "chosen" in row and "rejected" in row else "unlabeled")
            row.setdefault("source", _row_source(label))
            rows.append(row)
            n_file += 1
            if limit is not None and len(rows) >= limit:
                break
        per_file[label] = n_file
        if limit is not None and len(rows) >= limit:
            break
    if len(kinds) > 1:
        raise DataError(
            "the files mix labeled (chosen/rejected) and unlabeled (response_a/response_b) pairs", source
        )
    if not rows:
        raise DataError(f"no valid pairs left after skipping {dict(skipped)}", source)
    stats = {
        "source": source,
        "format": format,
        "subset": subset,
        "loaded": len(rows),
        "per_file": per_file,
        "skipped": dict(skipped),
        "skipped_examples": examples,
    }
    return LoadResult(rows=rows, kind=kinds.pop(), stats=stats)
