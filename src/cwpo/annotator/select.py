"""Which unlabelled pairs the humans should label next (active labelling).

A strategy ranks the pool's pairs and takes ``budget`` of them:

| strategy | picks |
|---|---|
| ``random`` | a seeded uniform sample |
| ``uncertainty`` | the pairs the current annotator is least sure of (lowest confidence c) |
| ``uncertain_diverse`` | among the ``pool_factor`` x budget least confident pairs, a farthest-first (k-center) set over the pairs' word vectors, starting from the least confident: unsure *and* unlike each other |

Uncertain pairs are often the noisy ones (two near-equal responses), which is why the mixed
strategy exists and why its value is measured, not assumed. The word vectors are hashed unigram
counts of prompt and responses, L2-normalised (a cheap, model-free notion of "unlike"). A pair is
identified by :func:`pair_id`, a hash of its prompt and its two responses (in either order), so
labelled pairs are recognised in the pool whatever file they come from.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from cwpo.atomic_files import write_json, write_jsonl
from cwpo.config import check
from cwpo.data.schema import read_pairs
from cwpo.errors import ConfigError, DataError
from cwpo.outputs import guard_output, guard_sidecar

_WORD = re.compile(r"\w+")
_DIM = 4096


def pair_id(prompt: str, response_a: str, response_b: str) -> str:
    """A stable id of a pair, the same for both orders of its responses."""
    a, b = sorted((response_a, response_b))
    return hashlib.sha256("\x00".join((prompt, a, b)).encode()).hexdigest()[:16]


def row_id(row: dict) -> str:
    if "response_a" in row:
        return pair_id(row["prompt"], row["response_a"], row["response_b"])
    return pair_id(row["prompt"], row["chosen"], row["rejected"])


def word_vectors(rows: Sequence[dict]) -> np.ndarray:
    """Hashed unigram counts of prompt + responses, one L2-normalised row per pair."""
    out = np.zeros((len(rows), _DIM), dtype=np.float32)
    for i, r in enumerate(rows):
        text = " ".join(r.get(k, "") for k in ("prompt", "response_a", "response_b", "chosen", "rejected"))
        for w in _WORD.findall(text.lower()):
            out[i, int(hashlib.blake2b(w.encode(), digest_size=4).hexdigest(), 16) % _DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def _random(rows, confidences, budget, rng, pool_factor) -> list[int]:
    return sorted(rng.sample(range(len(rows)), budget))


def _least_confident(confidences, rng, n) -> list[int]:
    jitter = [rng.random() for _ in confidences]  # seeded tie-break
    return sorted(range(len(confidences)), key=lambda i: (confidences[i], jitter[i]))[:n]


def _uncertainty(rows, confidences, budget, rng, pool_factor) -> list[int]:
    return _least_confident(confidences, rng, budget)


def _uncertain_diverse(rows, confidences, budget, rng, pool_factor) -> list[int]:
    candidates = _least_confident(confidences, rng, min(len(rows), int(round(pool_factor * budget))))
    vectors = word_vectors([rows[i] for i in candidates])
    chosen = [0]  # the least confident candidate first
    dist = 1.0 - vectors @ vectors[0]
    while len(chosen) < budget:
        dist[chosen] = -np.inf
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, 1.0 - vectors @ vectors[nxt])
    return [candidates[i] for i in chosen]


STRATEGIES: dict[str, Callable] = {
    "random": _random,
    "uncertainty": _uncertainty,
    "uncertain_diverse": _uncertain_diverse,
}
NEEDS_CONFIDENCE = {"uncertainty", "uncertain_diverse"}


def select(
    rows: Sequence[dict],
    budget: int,
    strategy: str,
    *,
    confidences: Sequence[float] | None = None,
    seed: int = 0,
    pool_factor: float = 3.0,
) -> list[int]:
    """Indices of the ``budget`` rows to label next (all of them when the pool is smaller)."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown selection strategy {strategy!r}; choose one of {sorted(STRATEGIES)}")
    if budget < 1:
        raise ConfigError(f"the selection budget must be >= 1 pair, got {budget}")
    if pool_factor < 1:
        raise ConfigError(f"pool_factor must be >= 1, got {pool_factor}")
    if strategy in NEEDS_CONFIDENCE:
        if confidences is None:
            raise ConfigError(
                f"strategy {strategy!r} needs the current annotator's confidences (--annotated)"
            )
        if len(confidences) != len(rows):
            raise ValueError("one confidence per pool row is needed")
        if not all(np.isfinite(c) for c in confidences):
            raise ConfigError("a confidence in the annotated pool is NaN or infinite")
    budget = min(budget, len(rows))
    if budget == 0:
        return []
    return STRATEGIES[strategy](list(rows), list(confidences or []), budget, random.Random(seed), pool_factor)


@dataclass
class SelectConfig:
    pool: str = field(default="", metadata={"help": "unlabelled pairs to choose from (JSONL/Parquet)"})
    output: str = field(default="", metadata={"help": "the chosen pairs, for the humans to label (JSONL)"})
    budget: int = field(default=0, metadata={"help": "how many pairs to choose"})
    strategy: Literal["random", "uncertainty", "uncertain_diverse"] = field(
        default="uncertainty", metadata={"help": "random, uncertainty (lowest c) or uncertain_diverse"}
    )
    annotated: str = field(
        default="",
        metadata={"help": "the pool labelled by the current annotator (cwpo annotate): its confidences"},
    )
    labeled: str = field(default="", metadata={"help": "pairs already labelled: never chosen again"})
    pool_factor: float = field(
        default=3.0,
        metadata={"help": "uncertain_diverse: diversify among this many x budget least-sure pairs"},
    )
    seed: int = field(default=0, metadata={"help": "seed of random choices and tie-breaks"})
    overwrite: bool = field(default=False, metadata={"help": "replace an earlier cwpo select output"})

    def __post_init__(self):
        errors = [f"{n} is required" for n in ("pool", "output") if not getattr(self, n)]
        if int(self.budget) < 1:
            errors.append(f"budget must be >= 1 pair, got {self.budget}")
        if self.strategy not in STRATEGIES:
            errors.append(f"strategy must be one of {sorted(STRATEGIES)}, got {self.strategy!r}")
        if self.strategy in NEEDS_CONFIDENCE and not self.annotated:
            errors.append(
                f"strategy {self.strategy} needs --annotated (the pool labelled by the current annotator)"
            )
        if float(self.pool_factor) < 1:
            errors.append(f"pool_factor must be >= 1, got {self.pool_factor}")
        check(errors, "select config")


def select_pairs(cfg: SelectConfig) -> dict:
    """Write the ``cfg.budget`` pool pairs to label next to ``cfg.output``; return statistics."""
    output = Path(cfg.output)
    stats_path = output.with_name(output.name + ".stats.json")
    guard_output(output, "select", kind="file", overwrite=cfg.overwrite, marker=stats_path)
    guard_sidecar(stats_path, output, "statistics")
    pool = read_pairs(cfg.pool)
    taken = {row_id(r) for r in read_pairs(cfg.labeled)} if cfg.labeled else set()
    candidates = [r for r in pool if row_id(r) not in taken]
    confidences = None
    if cfg.annotated:
        by_id = {}
        for r in read_pairs(cfg.annotated):
            if "confidence" not in r:
                raise DataError("no confidence column: give the output of cwpo annotate", cfg.annotated)
            try:
                by_id[row_id(r)] = float(r["confidence"])
            except (TypeError, ValueError):
                raise DataError(f"a confidence is not a number: {r['confidence']!r}", cfg.annotated) from None
        missing = [i for i, r in enumerate(candidates) if row_id(r) not in by_id]
        if missing and cfg.strategy in NEEDS_CONFIDENCE:
            raise DataError(
                f"{len(missing)} pool pair(s) are not in the annotated file (first: pool pair "
                f"{pool.index(candidates[missing[0]]) + 1}); annotate the whole pool first",
                cfg.annotated,
            )
        confidences = [by_id.get(row_id(r), float("nan")) for r in candidates]
    picked = select(
        candidates,
        cfg.budget,
        cfg.strategy,
        confidences=confidences,
        seed=cfg.seed,
        pool_factor=cfg.pool_factor,
    )
    known = [confidences[i] for i in picked if np.isfinite(confidences[i])] if confidences is not None else []
    rows = []
    for rank, i in enumerate(picked):
        row = {**candidates[i], "selection_rank": rank, "selection_strategy": cfg.strategy}
        if confidences is not None and np.isfinite(confidences[i]):  # random may pick unannotated pairs
            row["annotator_confidence"] = confidences[i]
        rows.append(row)
    write_jsonl(output, rows)
    stats = {
        "pool": cfg.pool,
        "n_pool": len(pool),
        "n_already_labeled": len(pool) - len(candidates),
        "n_selected": len(rows),
        "strategy": cfg.strategy,
        "seed": cfg.seed,
        "mean_confidence_selected": float(np.mean(known)) if known else None,
        "output": str(output),
    }
    write_json(stats_path, stats)
    return stats
