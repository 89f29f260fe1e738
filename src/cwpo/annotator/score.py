"""Label pairs with the weak annotator: ``annotate(annotator_dir, input_path, output_path)``.

For each pair (x, y_a, y_b): y_w is the response with the higher score, Δ = |margin| ≥ 0 and
c = :func:`cwpo.weighting.confidence` (Δ) (after the annotator's temperature, 1 by default).

* Fast: pairs are tokenized in batch one chunk ahead on a background thread, sequences are
  length-bucketed, scored under ``torch.inference_mode`` (bf16 weights on request).
* Resumable: every chunk of ``chunk_size`` input rows is written atomically to
  ``OUTPUT.parts/``; a restarted run skips the chunks already there (only if they were made by
  the same annotator, input and settings: a hash in ``OUTPUT.parts/meta.json``) and the merge
  into OUTPUT is atomic. Chunks are a fixed function of the input, so a resumed run gives the
  same rows as an uninterrupted one.
* Scales out: under ``accelerate launch`` rank r scores chunks r, r + W, ...; rank 0 merges them
  in input order after a barrier.
* Never writes NaN: a non-finite score stops the run with an error naming the rows.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from cwpo.annotator.model import EncodedPairs, check_annotator_dir
from cwpo.atomic_files import read_json, write_json, write_jsonl
from cwpo.config import check
from cwpo.console import progress as progress_bar
from cwpo.data.chat import row_prompt
from cwpo.data.schema import HUMAN_LABEL, LABELED, UNLABELED, read_pairs
from cwpo.distributed import ranks
from cwpo.errors import CWPOError, DataError
from cwpo.hashing import hash_config, sha256_path
from cwpo.outputs import guard_output, guard_sidecar, marks
from cwpo.weighting import confidence

FORMAT_VERSION = 1


@dataclass
class AnnotateConfig:
    annotator: str = field(
        default="", metadata={"help": "annotator directory (from cwpo train-annotator); or give --llm-url"}
    )
    input: str = field(default="", metadata={"help": "pairs to label (unlabeled, or labeled: chosen=a)"})
    output: str = field(default="", metadata={"help": "labeled output JSONL"})
    batch_size: int = field(default=32, metadata={"help": "sequences per forward pass"})
    chunk_size: int = field(default=256, metadata={"help": "pairs per atomically written chunk"})
    too_long: Literal["truncate", "drop"] = field(
        default="truncate",
        metadata={"help": "pairs longer than the annotator's max_length: cut the prompt or drop"},
    )
    dtype: Literal["float32", "bfloat16", "auto"] = field(
        default="float32",
        metadata={"help": "weights dtype for scoring (bf16 is faster on AVX512-BF16/AMX CPUs)"},
    )
    progress: bool = field(default=True, metadata={"help": "show a progress bar with pairs/s"})
    overwrite: bool = field(
        default=False,
        metadata={"help": "replace an earlier cwpo output of this stage at --output (never other files)"},
    )

    llm_url: str = field(
        default="",
        metadata={"help": "an LLM behind this OpenAI-compatible endpoint annotates (env CWPO_LLM_URL)"},
    )
    llm_model: str = field(default="", metadata={"help": "the LLM's model name (env CWPO_LLM_MODEL)"})
    llm_key: str | None = field(
        default=None, metadata={"help": "API key (env OPENAI_API_KEY; never written)"}
    )
    llm_probability: Literal["auto", "logprobs", "samples"] = field(
        default="auto", metadata={"help": "P(A) from answer-token log-probs, k samples, or auto"}
    )
    llm_samples: int = field(default=8, metadata={"help": "answers sampled per order (sampling path)"})
    llm_sample_temperature: float = field(default=1.0, metadata={"help": "temperature of sampled answers"})
    llm_template: Literal["chatbot", "summary", "sentiment"] = field(
        default="chatbot",
        metadata={"help": "pairwise prompt: the paper's chatbot or summary, or sentiment (more positive)"},
    )
    llm_timeout: float = field(default=60.0, metadata={"help": "seconds per LLM request attempt"})
    llm_retries: int = field(default=5, metadata={"help": "retries per LLM request (backoff 1, 2, 4, ... s)"})
    llm_rate_limit: float = field(default=2.0, metadata={"help": "LLM requests per second"})
    calibration: str = field(
        default="", metadata={"help": "labelled pairs (D_l) to fit the LLM's confidence temperature on"}
    )

    def __post_init__(self):
        errors = []
        self.llm_url = self.llm_url or os.environ.get("CWPO_LLM_URL", "")
        self.llm_model = self.llm_model or os.environ.get("CWPO_LLM_MODEL", "")
        llm = bool(self.llm_url or self.llm_model)
        if llm and self.annotator:
            errors.append(
                "give either --annotator (a trained weak annotator) or --llm-url/--llm-model, not both"
            )
        if llm and not (self.llm_url and self.llm_model):
            errors.append(
                "an LLM annotator needs both --llm-url and --llm-model (or CWPO_LLM_URL/CWPO_LLM_MODEL)"
            )
        if self.calibration and not llm:
            errors.append("--calibration fits the LLM annotator's temperature: it needs --llm-url")
        for name in ("input", "output") if llm else ("annotator", "input", "output"):
            if not getattr(self, name):
                errors.append(f"{name} is required")
        for name in ("batch_size", "chunk_size"):
            if int(getattr(self, name)) < 1:
                errors.append(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.too_long not in ("truncate", "drop"):
            errors.append(f"too_long must be truncate or drop, got {self.too_long!r}")
        if self.dtype not in ("float32", "bfloat16", "auto"):
            errors.append(f"dtype must be float32, bfloat16 or auto, got {self.dtype!r}")
        check(errors, "annotate config")


def normalize_rows(rows: list[dict], path: str) -> list[dict]:
    """Unlabeled view of the input: labeled rows become a = chosen, b = rejected, human_label "a"."""
    out = []
    for i, row in enumerate(rows, 1):
        if "chosen" in row and "response_a" not in row:
            extra = {k: v for k, v in row.items() if k not in LABELED}
            row = {
                "prompt": row["prompt"],
                "response_a": row["chosen"],
                "response_b": row["rejected"],
                **extra,
            }
            row[HUMAN_LABEL] = "a"
        label = row.get(HUMAN_LABEL)
        if label is not None and label not in ("a", "b"):
            raise DataError(f"{HUMAN_LABEL} must be 'a' or 'b', got {label!r}", path, i)
        out.append(row)
    return out


def _chunk_path(parts: Path, i: int) -> Path:
    return parts / f"chunk-{i:06d}.json"


def _encode_chunk(annotator, rows: list[dict], too_long: str) -> tuple[EncodedPairs, list[int], int]:
    """Tokenize a chunk; return the encoded kept pairs, their indices and the number truncated."""
    enc = annotator.encode(
        [row_prompt(r) for r in rows], [r["response_a"] for r in rows], [r["response_b"] for r in rows]
    )
    if too_long == "truncate":
        return enc, list(range(len(rows))), sum(enc.truncated)
    keep = [i for i, cut in enumerate(enc.truncated) if not cut]
    kept = EncodedPairs(
        [enc.seq_a[i] for i in keep],
        [enc.seq_b[i] for i in keep],
        [enc.start_a[i] for i in keep],
        [enc.start_b[i] for i in keep],
    )
    return kept, keep, 0


def label_rows(rows: list[dict], margins: torch.Tensor) -> list[dict]:
    """Output rows: y_w = the higher-scored response (a on a tie), Δ = |margin|, c = confidence(Δ)."""
    out = []
    for row, m in zip(rows, margins.tolist(), strict=True):
        a_wins = m >= 0
        chosen, rejected = (
            (row["response_a"], row["response_b"]) if a_wins else (row["response_b"], row["response_a"])
        )
        delta = abs(float(m))
        labeled = {"prompt": row["prompt"], "chosen": chosen, "rejected": rejected, "margin": delta}
        labeled["confidence"] = float(confidence(delta))
        if row.get(HUMAN_LABEL) is not None:
            labeled["human_agrees"] = (row[HUMAN_LABEL] == "a") == a_wins
        labeled.update({k: v for k, v in row.items() if k not in (*UNLABELED, "chosen", "rejected")})
        out.append(labeled)
    return out


def _chunk_folder_is_ours(parts: Path, output_path: Path) -> bool:
    """Whether ``parts`` is cwpo's chunk folder for ``output_path``: its ``meta.json`` names it (or,
    written by a cwpo that did not name it yet, has no name and a chunk key)."""
    if parts.is_symlink() or not parts.is_dir():
        return False
    meta_path = parts / "meta.json"
    if marks(meta_path, output_path):
        return True
    try:
        meta = read_json(meta_path)
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "output" not in meta and "key" in meta


def open_labelled_output(output_path: Path, key: str, overwrite: bool) -> tuple[Path, dict | None]:
    """The statistics file beside an ``annotate`` output, and the cached statistics when that output
    was made with the same ``key`` (nothing to do); otherwise the output guard's checks, before any
    work (an existing output is replaced only if it is cwpo's and ``overwrite`` is set)."""
    stats_path = output_path.with_name(output_path.name + ".stats.json")
    if output_path.exists() and stats_path.exists():
        try:
            cached = read_json(stats_path)
        except ValueError:
            cached = {}
        if cached.get("key") == key:
            return stats_path, {**cached, "cached": True}
    guard_output(output_path, "annotate", kind="file", overwrite=overwrite, marker=stats_path)
    guard_sidecar(stats_path, output_path, "statistics")
    return stats_path, None


def annotate(
    annotator_dir: str | os.PathLike,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    batch_size: int = 32,
    chunk_size: int = 256,
    too_long: str = "truncate",
    dtype: str = "float32",
    progress: bool = True,
    annotator=None,
    overwrite: bool = False,
) -> dict:
    """Label every pair of ``input_path`` into ``output_path`` (JSONL); return statistics.

    ``annotator`` may be an already loaded :class:`~cwpo.annotator.model.Annotator` of
    ``annotator_dir`` (saves the load time when called repeatedly). An existing ``output_path``
    is replaced only if it is an earlier ``annotate`` output and ``overwrite`` is set.
    """
    # here, not at the top: cwpo.annotator.model runs the package __init__, which imports this module
    from cwpo.annotator.model import load_annotator

    AnnotateConfig(
        str(annotator_dir), str(input_path), str(output_path), batch_size, chunk_size, too_long, dtype
    )
    check_annotator_dir(annotator_dir)
    output_path = Path(os.path.abspath(Path(output_path).expanduser()))
    rows = normalize_rows(read_pairs(input_path), str(input_path))
    key = hash_config(
        {
            "annotator": sha256_path(annotator_dir),
            "input": sha256_path(input_path),
            "chunk_size": chunk_size,
            "batch_size": batch_size,
            "too_long": too_long,
            "dtype": dtype,
            "format": FORMAT_VERSION,
        }
    )
    stats_path, cached = open_labelled_output(output_path, key, overwrite)
    if cached is not None:
        return cached

    dist = ranks()
    parts = output_path.with_name(output_path.name + ".parts")
    meta_path = parts / "meta.json"  # cwpo's mark of its chunk folder: names the output it is for
    reused = 0
    if dist.rank == 0:
        if (parts.exists() or parts.is_symlink()) and not _chunk_folder_is_ours(parts, output_path):
            raise CWPOError(f"{parts} exists and was not written by cwpo annotate: move it away")
        if parts.exists() and read_json(meta_path).get("key") != key:
            shutil.rmtree(parts)  # cwpo's chunks of another annotator/input/setting: never reuse
        parts.mkdir(parents=True, exist_ok=True)
        meta = {"key": key, "output": output_path.name, "n_rows": len(rows), "chunk_size": chunk_size}
        write_json(meta_path, meta)
        reused = len(list(parts.glob("chunk-*.json")))  # left by an interrupted run of the same key
    dist.barrier()
    try:
        n_chunks = math.ceil(len(rows) / chunk_size)
        todo = [i for i in dist.mine(n_chunks) if not _chunk_path(parts, i).exists()]
        start = time.perf_counter()
        scored = 0
        if todo:
            annotator = annotator or load_annotator(annotator_dir, dtype=dtype)
            bar = progress_bar(
                total=sum(len(rows[i * chunk_size : (i + 1) * chunk_size]) for i in todo),
                desc="annotate",
                unit="pair",
                disable=not progress or dist.rank != 0,
                dynamic_ncols=True,
            )
            with ThreadPoolExecutor(max_workers=1) as pool:

                def submit(i):
                    return pool.submit(
                        _encode_chunk, annotator, rows[i * chunk_size : (i + 1) * chunk_size], too_long
                    )

                future = submit(todo[0])
                for n, i in enumerate(todo):
                    enc, keep, n_truncated = future.result()
                    if n + 1 < len(todo):
                        future = submit(todo[n + 1])  # tokenize the next chunk while this one is scored
                    chunk_rows = rows[i * chunk_size : (i + 1) * chunk_size]
                    margins = annotator.margins_from_encoded(enc, batch_size, progress=None)
                    bad = (~torch.isfinite(margins)).nonzero().flatten().tolist()
                    if bad:
                        where = [i * chunk_size + keep[j] + 1 for j in bad[:5]]
                        raise CWPOError(
                            f"{input_path}: the annotator produced non-finite scores (NaN/inf) for row(s) {where}"
                            f"{' ...' if len(bad) > 5 else ''}; nothing was written for them. Check the annotator "
                            f"weights or use --dtype float32"
                        )
                    out_rows = label_rows([chunk_rows[j] for j in keep], margins)
                    write_json(
                        _chunk_path(parts, i),
                        {
                            "rows": out_rows,
                            "truncated": n_truncated,
                            "dropped_too_long": len(chunk_rows) - len(keep),
                        },
                    )
                    scored += len(chunk_rows)
                    bar.update(len(chunk_rows))
            bar.close()
        elapsed = time.perf_counter() - start
        dist.barrier()

        stats: dict = {}
        nothing_left = None
        if dist.rank == 0:
            merged, truncated, dropped = [], 0, 0
            for i in range(n_chunks):
                chunk = read_json(_chunk_path(parts, i))
                merged.extend(chunk["rows"])
                truncated += chunk["truncated"]
                dropped += chunk["dropped_too_long"]
            if rows and not merged:
                shutil.rmtree(parts, ignore_errors=True)
                nothing_left = CWPOError(
                    f"{input_path}: --too-long drop dropped all {dropped} pairs (each is longer than the "
                    f"annotator's max_length); nothing was written. Use --too-long truncate, or an annotator "
                    "trained with a larger --max-length"
                )
        if nothing_left is None and dist.rank == 0:
            write_jsonl(output_path, merged)
            agree = [r["human_agrees"] for r in merged if "human_agrees" in r]
            stats = {
                "key": key,
                "input": str(input_path),
                "output": str(output_path),
                "annotator": str(annotator_dir),
                "n_input": len(rows),
                "n_output": len(merged),
                "truncated": truncated,
                "dropped_too_long": dropped,
                "too_long": too_long,
                "mean_confidence": sum(r["confidence"] for r in merged) / len(merged) if merged else None,
                "human_agreement": sum(agree) / len(agree) if agree else None,
                "n_human_labels": len(agree),
                "processes": dist.world,
                "n_chunks": n_chunks,
                "resumed_chunks": reused,
                "pairs_scored_here": scored,
                "seconds_here": elapsed,
            }
            write_json(stats_path, stats)
            shutil.rmtree(parts, ignore_errors=True)
        dist.barrier()
        if nothing_left is not None:  # raised after the barrier, so that the other ranks do not wait on it
            raise nothing_left
        if dist.rank != 0:
            stats = {"rank": dist.rank, "pairs_scored_here": scored, "seconds_here": elapsed}
        return stats

    except BaseException:
        if dist.rank == 0 and parts.is_dir() and not any(parts.glob("chunk-*.json")):
            meta_path.unlink(missing_ok=True)  # nothing to resume: no empty chunk folder is left
            with contextlib.suppress(OSError):
                parts.rmdir()
        raise
