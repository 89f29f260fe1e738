"""The ``data`` stage: load, filter by length, split, and write the files later stages read."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cwpo.atomic_files import read_json, write_json
from cwpo.config import check, to_dict
from cwpo.data.load import FORMATS, HH_SUBSETS, load_pairs, resolve_source
from cwpo.data.schema import write_pairs
from cwpo.data.split import duplicate_groups, filter_by_length, hh_subset, poison_labels, split_pool
from cwpo.errors import warn
from cwpo.hashing import hash_config, sha256_path
from cwpo.outputs import atomic_dir, guard_output, write_manifest


@dataclass
class DataConfig:
    source: str = field(
        default="", metadata={"help": "file, folder (e.g. the HH-RLHF root) or hub dataset id"}
    )
    output: str = field(default="", metadata={"help": "output folder"})
    format: str = field(default="auto", metadata={"help": f"input layout: {', '.join(FORMATS)}"})
    subset: str | None = field(default=None, metadata={"help": f"HH-RLHF subset: {', '.join(HH_SUBSETS)}"})
    split: str = field(default="test", metadata={"help": "file/split name to read (HH-RLHF: test or train)"})
    column_map: dict | None = field(
        default=None, metadata={"help": "rename columns: prompt=question,chosen=good"}
    )
    labeled_frac: float = field(
        default=0.3, metadata={"help": "share of the pool that is human-labeled (D_l)"}
    )
    test_frac: float = field(default=0.1, metadata={"help": "share held out as a labeled test split"})
    seed: int = field(default=0, metadata={"help": "seed of the split"})
    max_tokens: int = field(
        default=512, metadata={"help": "drop pairs longer than this many tokens (0: keep all)"}
    )
    tokenizer: str = field(default="smollm2-135m-instruct", metadata={"help": "tokenizer that counts tokens"})
    limit: int | None = field(
        default=None, metadata={"help": "read at most this many valid pairs (file order)"}
    )
    max_pairs: int | None = field(
        default=None, metadata={"help": "keep a seeded random sample of this many pairs after the filters"}
    )
    strict: bool = field(default=False, metadata={"help": "make skippable rows (empty, identical) fatal"})
    file_format: Literal["jsonl", "parquet"] = field(default="jsonl", metadata={"help": "output file type"})
    no_split: bool = field(
        default=False, metadata={"help": "write all pairs to pairs.<ext> without splitting"}
    )
    labeled_mix: dict | None = field(
        default=None,
        metadata={
            "help": "imbalanced D_l: HH subset shares, e.g. harmless=0.9,helpful=0.1 (D_u, test mixed)"
        },
    )
    poison_frac: float = field(
        default=0.0, metadata={"help": "flip this seeded share of D_l's human labels (poisoned D_l)"}
    )
    poison_subset: str | None = field(
        default=None, metadata={"help": "flip only D_l pairs of this HH subset (harmless or helpful)"}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "replace an earlier cwpo output of this stage at --output (never other files)"},
    )

    def __post_init__(self):
        errors = []
        if not self.source:
            errors.append("source is required (--source)")
        if not self.output:
            errors.append("output is required (--output)")
        if self.format not in FORMATS:
            errors.append(f"format must be one of {list(FORMATS)}, got {self.format!r}")
        if self.subset is not None and self.subset not in HH_SUBSETS:
            errors.append(f"subset must be one of {sorted(HH_SUBSETS)}, got {self.subset!r}")
        if not 0 < self.labeled_frac < 1:
            errors.append(f"labeled_frac must be in (0, 1), got {self.labeled_frac}")
        if not 0 <= self.test_frac < 1:
            errors.append(f"test_frac must be in [0, 1), got {self.test_frac}")
        if self.max_tokens < 0:
            errors.append(f"max_tokens must be >= 0, got {self.max_tokens}")
        if self.limit is not None and self.limit <= 0:
            errors.append(f"limit must be positive, got {self.limit}")
        if not 0 <= self.poison_frac < 1:
            errors.append(f"poison_frac must be in [0, 1), got {self.poison_frac}")
        if self.poison_subset not in (None, "harmless", "helpful"):
            errors.append(f"poison_subset must be harmless or helpful, got {self.poison_subset!r}")
        if self.labeled_mix is not None:
            bad = {k: v for k, v in self.labeled_mix.items() if k not in ("harmless", "helpful")}
            try:
                shares = [float(v) for v in self.labeled_mix.values()]
            except (TypeError, ValueError):
                shares = [-1.0]
            if bad or not shares or min(shares) < 0 or sum(shares) <= 0:
                errors.append(
                    f"labeled_mix must map harmless/helpful to shares >= 0 summing to > 0, got {self.labeled_mix}"
                )
            else:
                self.labeled_mix = {k: float(v) for k, v in self.labeled_mix.items()}
        if self.max_pairs is not None and self.max_pairs <= 0:
            errors.append(f"max_pairs must be positive, got {self.max_pairs}")
        check(errors, "data config")


def _inputs_hash(cfg: DataConfig) -> str:
    src = Path(resolve_source(cfg.source)).expanduser()
    content = sha256_path(src) if src.exists() else cfg.source
    settings = {k: v for k, v in to_dict(cfg).items() if k not in ("output", "overwrite")}
    return hash_config({"content": content, "settings": settings})


def prepare_data(cfg: DataConfig, force: bool = False) -> dict:
    """Write ``labeled``/``unlabeled``/``test`` pair files (or ``pairs``) plus ``stats.json``.

    Cached: if ``output`` already holds the result of the same source content and settings, it
    is returned without any work. The folder is replaced atomically.
    """
    out = Path(cfg.output)
    key = _inputs_hash(cfg)
    manifest = out / "manifest.json"
    if (
        not force
        and out.is_dir()
        and manifest.exists()
        and (out / "stats.json").exists()
        and read_json(manifest).get("stage") == "data"
        and read_json(manifest).get("inputs_hash") == key
    ):
        stats = read_json(out / "stats.json")
        stats["cached"] = True
        return stats
    guard_output(out, "data", overwrite=cfg.overwrite or force)
    result = load_pairs(
        cfg.source,
        cfg.format,
        subset=cfg.subset,
        split=cfg.split,
        column_map=cfg.column_map,
        strict=cfg.strict,
        limit=cfg.limit,
    )
    stats = dict(result.stats)
    rows = result.rows
    if cfg.max_tokens:
        # torch/transformers (~2-8 s) load only when a tokenizer filters lengths
        from cwpo.models.loading import load_tokenizer

        rows, dropped = filter_by_length(rows, load_tokenizer(cfg.tokenizer), cfg.max_tokens)
        stats["dropped_too_long"] = dropped
        stats["max_tokens"] = cfg.max_tokens
    if cfg.max_pairs is not None and len(rows) > cfg.max_pairs:
        keep = sorted(random.Random(cfg.seed).sample(range(len(rows)), cfg.max_pairs))
        stats["subsampled_from"] = len(rows)
        rows = [rows[i] for i in keep]
    ext = cfg.file_format
    with atomic_dir(out) as tmp:
        if cfg.no_split or result.kind == "unlabeled":
            write_pairs(tmp / f"pairs.{ext}", rows)
            stats["files"] = {"pairs": len(rows)}
        else:
            parts = split_pool(rows, cfg.labeled_frac, cfg.test_frac, cfg.seed, labeled_mix=cfg.labeled_mix)
            groups = duplicate_groups(rows)
            if groups:
                copies = sum(len(g) - 1 for g in groups)
                stats["duplicate_pairs"] = {"repeated_pairs": len(groups), "extra_copies": copies}
                warn(
                    f"{cfg.source}: {copies} rows repeat another row's pair (same prompt and responses; "
                    f"{len(groups)} pairs occur more than once): each pair's copies are kept in one split"
                )
            if cfg.poison_frac:
                parts["labeled"] = poison_labels(
                    parts["labeled"], cfg.poison_frac, cfg.seed, cfg.poison_subset
                )
                stats["poisoned"] = sum(bool(r.get("poisoned")) for r in parts["labeled"])
            if cfg.labeled_mix or cfg.poison_subset:
                stats["labeled_subsets"] = dict(Counter(hh_subset(r) for r in parts["labeled"]))
            for name, part in parts.items():
                write_pairs(tmp / f"{name}.{ext}", part)
            stats["files"] = {name: len(part) for name, part in parts.items()}
        stats["after_filters"] = len(rows)
        write_json(tmp / "stats.json", stats)
        write_manifest(tmp, "data", dataclasses.asdict(cfg), key, stats)
    stats["cached"] = False
    return stats
