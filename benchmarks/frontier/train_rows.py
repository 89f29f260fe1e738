"""The training pairs of a frontier method: a label source and a weight construction, as data.

Label sources (all on the seed's split of the one pair pool):
- ``human``: the simulated human labels of D_u; ``weak``: the weak annotator's labels of D_u;
- ``human_all``: human labels of D_l ∪ D_u; ``human_labeled``: human labels of D_l alone;
- ``labeled_and_weak``: what a user with both would train on: the human labels of D_l (weight 1)
  and the weak annotator's labels of D_u (weighted as the method says).
Weights: ``none`` (1), ``c`` (the annotator's confidence), ``shuffled_c`` (c permuted across the
pairs), ``oracle_c`` (c's values re-assigned in the order of the gold gap), ``ess_subset`` (weight
1 on a random subset of the effective sample size of c), ``top-N`` (the N% most confident, 1).
Every row carries its weight in ``confidence``; align then runs with weighting ``confidence`` (or
``none`` when every weight is 1). Weights other than ``none`` need D_u's annotation (c).
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import torch

from cwpo.experiments.frontier import (
    correlation,
    effective_sample_size,
    ess_subset,
    oracle_weights,
    shuffled_weights,
)
from cwpo.weighting import get_weighting, margin_from_confidence

LABELS = ("human", "weak", "human_all", "human_labeled", "labeled_and_weak")
WEIGHTS = ("none", "c", "shuffled_c", "oracle_c", "ess_subset")
CONTROL_SEED = 4_242  # added to the run's seed for the shuffles and subsets of the controls


def read_jsonl(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists() and Path(f"{path}.gz").exists():
        path = Path(f"{path}.gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def check_method(name: str, spec) -> tuple[str, str, str]:
    if not (isinstance(spec, list | tuple) and len(spec) == 3):
        raise ValueError(f"method {name!r}: expected [labels, weights, loss], got {spec!r}")
    labels, weights, loss = spec
    if labels not in LABELS:
        raise ValueError(f"method {name!r}: labels must be one of {LABELS}, got {labels!r}")
    if weights not in WEIGHTS and not str(weights).startswith("top-"):
        raise ValueError(f"method {name!r}: weights must be one of {WEIGHTS} or top-N, got {weights!r}")
    if labels in ("human_all", "human_labeled") and weights != "none":
        raise ValueError(f"method {name!r}: {labels} has no confidence (weights must be none)")
    if loss not in ("dpo", "ipo", "rdpo"):
        raise ValueError(f"method {name!r}: loss must be dpo, ipo or rdpo, got {loss!r}")
    return labels, weights, loss


def needs_annotation(spec) -> bool:
    """Whether a method reads the weak annotator's output (its labels or its confidence)."""
    return spec[0] in ("weak", "labeled_and_weak") or spec[1] != "none"


# A label source whose rows were built wrongly before is keyed anew (align stages name it): the
# human labels of D_u were once paired with the pool's response order, while ``human_label``
# refers to the D_u row's own order, which the split shuffles (about half the pairs inverted).
ROWS_VERSION = {"human": 2}


def pair_key(prompt: str, x: str, y: str) -> tuple[str, frozenset]:
    """A pair by its content, whatever its order (prompt ids repeat in the pool)."""
    return prompt, frozenset((x, y))


def human_pairs(unlabeled: list[dict]) -> dict[tuple, tuple[str, str]]:
    """Each D_u pair's (chosen, rejected) as its human labelled it, in the row's own order."""
    return {
        pair_key(r["prompt"], r["response_a"], r["response_b"]): (
            (r["response_a"], r["response_b"])
            if r["human_label"] == "a"
            else (r["response_b"], r["response_a"])
        )
        for r in unlabeled
    }


def pool_by_pair(files: dict) -> dict[tuple, dict]:
    """The pool's rows (with their gold) by pair content."""
    return {pair_key(r["prompt"], r["response_a"], r["response_b"]): r for r in read_jsonl(files["pool"])}


def train_rows(spec, files: dict, seed: int) -> list[dict]:
    """``files``: ``annotated`` (D_u with weak labels, c and human_label), ``pool`` (pairs with gold),
    ``labeled`` and ``all_human`` (human-labelled pair files)."""
    labels, weights, _ = spec
    if labels == "human_all":
        return [{**r, "confidence": 1.0} for r in read_jsonl(files["all_human"])]
    if labels == "human_labeled":
        return [{**r, "confidence": 1.0} for r in read_jsonl(files["labeled"])]
    if labels == "labeled_and_weak":
        human = [{k: r[k] for k in ("prompt", "chosen", "rejected")} | {"confidence": 1.0}
                 for r in read_jsonl(files["labeled"])]  # fmt: skip
        return human + train_rows(("weak", weights, _), files, seed)
    unlabeled = read_jsonl(files["unlabeled"]) if labels == "human" else []
    human = human_pairs(unlabeled)
    if not needs_annotation(spec):  # human labels of D_u, weight 1: no annotator needed
        return [
            {
                "prompt": r["prompt"],
                "chosen": c,
                "rejected": j,
                "prompt_id": r["prompt_id"],
                "confidence": 1.0,
            }
            for r in unlabeled
            for c, j in [human[pair_key(r["prompt"], r["response_a"], r["response_b"])]]
        ]
    annotated = read_jsonl(files["annotated"])
    rows = []
    for r in annotated:
        if labels == "weak":
            chosen, rejected = r["chosen"], r["rejected"]
        else:
            chosen, rejected = human[pair_key(r["prompt"], r["chosen"], r["rejected"])]
        rows.append(
            {"prompt": r["prompt"], "chosen": chosen, "rejected": rejected, "prompt_id": r["prompt_id"]}
        )
    c = [float(r["confidence"]) for r in annotated]
    rng_seed = seed + CONTROL_SEED
    if weights == "none":
        w = [1.0] * len(rows)
    elif weights == "c":
        w = c
    elif weights == "shuffled_c":
        w = shuffled_weights(c, rng_seed)
    elif weights == "oracle_c":
        pool = pool_by_pair(files)
        pools = [pool[pair_key(r["prompt"], r["chosen"], r["rejected"])] for r in annotated]
        gaps = [abs(p["gold_a"] - p["gold_b"]) for p in pools]
        w = oracle_weights(gaps, c)
    elif weights == "ess_subset":
        keep = set(ess_subset(len(rows), effective_sample_size(c), rng_seed))
        w = [1.0 if i in keep else 0.0 for i in range(len(rows))]
    else:  # top-N: the N% most confident pairs
        w = get_weighting(weights)(margin_from_confidence(torch.tensor(c, dtype=torch.float64))).tolist()
    return [{**r, "confidence": float(x)} for r, x in zip(rows, w, strict=True) if x > 0]


def label_stats(files: dict) -> dict:
    """How c relates to the truth on D_u: corr(c, |gold gap|) (Pearson and Spearman) and the
    point-biserial corr(c, weak label agrees with the gold) over the decided pairs."""
    annotated = read_jsonl(files["annotated"])
    pool = pool_by_pair(files)
    c, gap, correct = [], [], []
    for r in annotated:
        p = pool[pair_key(r["prompt"], r["chosen"], r["rejected"])]
        if p["gold_a"] == p["gold_b"]:
            continue
        better = p["response_a"] if p["gold_a"] > p["gold_b"] else p["response_b"]
        c.append(float(r["confidence"]))
        gap.append(abs(p["gold_a"] - p["gold_b"]))
        correct.append(1.0 if r["chosen"] == better else 0.0)

    def defined(r: float) -> float | None:  # None where one side is constant (c all equal, say)
        return None if math.isnan(r) else r

    return {
        "n_decided": len(c),
        "corr_c_gold_gap": defined(correlation(c, gap)),
        "spearman_c_gold_gap": defined(correlation(c, gap, rank=True)),
        "corr_c_label_correct": defined(correlation(c, correct)),
        "weak_label_acc": sum(correct) / len(correct) if correct else None,
        "ess_c": effective_sample_size([float(r["confidence"]) for r in annotated]),
        "n_pairs": len(annotated),
    }
