"""Seeded D_l / D_u / test split and the token-length filter."""

from __future__ import annotations

import pytest

from cwpo.data import filter_by_length, split_pool, to_labeled
from cwpo.errors import DataError


def pool(n=100):
    return [{"prompt": f"p{i}", "chosen": f"good {i}", "rejected": f"bad {i}", "i": i} for i in range(n)]


def test_split_sizes_disjoint_and_seeded():
    rows = pool(200)
    s = split_pool(rows, labeled_frac=0.3, test_frac=0.1, seed=1)
    assert len(s["test"]) == 20 and len(s["labeled"]) == 54 and len(s["unlabeled"]) == 126
    ids = [r["i"] for part in s.values() for r in part]
    assert sorted(ids) == list(range(200))
    assert split_pool(rows, 0.3, 0.1, seed=1) == s
    assert split_pool(rows, 0.3, 0.1, seed=2) != s


def test_unlabeled_hides_label_but_keeps_it_for_evaluation():
    s = split_pool(pool(100), 0.3, 0.0, seed=0)
    u = s["unlabeled"]
    assert all(set(r) >= {"prompt", "response_a", "response_b", "human_label"} for r in u)
    assert "chosen" not in u[0]
    labels = {r["human_label"] for r in u}
    assert labels == {"a", "b"}  # responses are shuffled, not always in chosen-first order
    back = to_labeled(u)
    assert all(r["chosen"].startswith("good") for r in back)


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.1, 1.5])
def test_split_ratio_outside_open_interval(frac):
    with pytest.raises(DataError, match=r"labeled_frac must be in \(0, 1\)"):
        split_pool(pool(), labeled_frac=frac)


def test_split_test_frac_validated_and_tiny_pool():
    with pytest.raises(DataError, match="test_frac"):
        split_pool(pool(), test_frac=1.0)
    with pytest.raises(DataError, match="empty D_l or D_u"):
        split_pool(pool(2), labeled_frac=0.1, test_frac=0.0)


class WordTokenizer:
    def __call__(self, texts, add_special_tokens=False):
        return {"input_ids": [t.split() for t in texts]}


def test_length_filter_counts_prompt_plus_longer_response():
    rows = [
        {"prompt": "a b", "chosen": "c", "rejected": "d e f"},  # 2 + 3 = 5
        {"prompt": "a", "chosen": "c", "rejected": "d"},  # 2
    ]
    kept, dropped = filter_by_length(rows, WordTokenizer(), max_tokens=4)
    assert kept == [rows[1]] and dropped == 1
    kept, dropped = filter_by_length(rows, WordTokenizer(), max_tokens=5)
    assert len(kept) == 2 and dropped == 0
    with pytest.raises(DataError):
        filter_by_length(rows, WordTokenizer(), max_tokens=0)


def test_length_filter_real_tokenizer(smollm_tokenizer_dir):
    from cwpo.models.loading import load_tokenizer

    tok = load_tokenizer(smollm_tokenizer_dir)
    rows = [
        {"prompt": "Hello", "chosen": " world " * 600, "rejected": " no"},
        {"prompt": "Hi", "chosen": " a", "rejected": " b"},
    ]
    kept, dropped = filter_by_length(rows, tok, 512)
    assert dropped == 1 and kept == rows[1:]


def _hh_rows(n_harmless, n_helpful):
    rows = []
    for i in range(n_harmless + n_helpful):
        source = "harmless-base/test.jsonl.gz" if i < n_harmless else "helpful-base/test.jsonl.gz"
        rows.append({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}", "source": source})
    return rows


def test_imbalanced_labeled_set_keeps_d_u_and_test_mixed():
    from cwpo.data.split import hh_subset

    rows = _hh_rows(100, 100)
    parts = split_pool(
        rows, labeled_frac=0.3, test_frac=0.1, seed=1, labeled_mix={"harmless": 0.9, "helpful": 0.1}
    )
    subsets = [hh_subset(r) for r in parts["labeled"]]
    assert len(subsets) == 54 and subsets.count("harmless") == 49 and subsets.count("helpful") == 5
    assert {hh_subset(r) for r in parts["unlabeled"]} == {"harmless", "helpful"}
    assert len(parts["labeled"]) + len(parts["unlabeled"]) + len(parts["test"]) == 200
    prompts = [r["prompt"] for part in parts.values() for r in part]
    assert len(set(prompts)) == 200  # a partition: nothing lost, nothing twice
    only = split_pool(rows, labeled_frac=0.3, test_frac=0.1, seed=1, labeled_mix={"harmless": 1.0})
    assert {hh_subset(r) for r in only["labeled"]} == {"harmless"}
    with pytest.raises(DataError, match="labeled_mix"):
        split_pool(_hh_rows(10, 100), labeled_frac=0.5, seed=1, labeled_mix={"harmless": 1.0})


def test_poisoned_labels_flip_a_seeded_share():
    from cwpo.data.split import poison_labels

    rows = _hh_rows(50, 50)
    out = poison_labels(rows, 0.2, seed=3)
    flipped = [r for r in out if r.get("poisoned")]
    assert len(flipped) == 20 and all(r["chosen"].startswith("bad") for r in flipped)
    assert out == poison_labels(rows, 0.2, seed=3)  # deterministic
    assert poison_labels(rows, 0.0, seed=3) == rows
    targeted = poison_labels(rows, 0.4, seed=3, subset="harmless")
    assert sum(bool(r.get("poisoned")) for r in targeted) == 20
    assert all("harmless" in r["source"] for r in targeted if r.get("poisoned"))
    with pytest.raises(DataError, match="no pair"):
        poison_labels(_hh_rows(0, 10), 0.5, seed=0, subset="harmless")


def _fingerprint(parts: dict) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _sourced_pool(n):
    return [dict(r, source="harmless" if r["i"] % 3 else "helpful") for r in pool(n)]


@pytest.mark.parametrize(
    ("n", "kwargs", "expected"),
    [
        (200, dict(labeled_frac=0.3, test_frac=0.1, seed=1), "41b77693d3457a44"),
        (57, dict(labeled_frac=0.5, test_frac=0.0, seed=7), "a11aefa639f27adc"),
        (300, dict(labeled_frac=0.2, test_frac=0.1, seed=3, labeled_mix={"harmless": 0.9, "helpful": 0.1}),
         "9936f76ccb92e362"),
    ],
)  # fmt: skip
def test_a_pool_without_copies_splits_exactly_as_before(n, kwargs, expected):
    """Stage keys and archived runs hash the split files: the split of a pool without repeated
    pairs is pinned to what it was before copies were kept together."""
    assert _fingerprint(split_pool(_sourced_pool(n), **kwargs)) == expected


@pytest.mark.parametrize("seed", range(5))
def test_copies_of_a_pair_stay_in_one_split(seed):
    rows = pool(60)
    # 11 copies of one pair (one with its responses swapped), 3 copies of another
    rows += [dict(rows[5], i=100 + k) for k in range(9)]
    rows += [dict(rows[5], chosen=rows[5]["rejected"], rejected=rows[5]["chosen"], i=120)]
    rows += [dict(rows[7], i=130 + k) for k in range(2)]
    s = split_pool(rows, labeled_frac=0.3, test_frac=0.2, seed=seed)
    home = {r["i"]: name for name, part in s.items() for r in part}
    assert sorted(home) == sorted(r["i"] for r in rows)  # nothing dropped
    assert len({home[i] for i in [5, *range(100, 109), 120]}) == 1
    assert len({home[i] for i in [7, 130, 131]}) == 1
    assert sum(len(p) for p in s.values()) == len(rows)


def test_copies_that_leave_a_split_empty_are_refused():
    rows = [dict(pool(1)[0], i=k) for k in range(10)]
    with pytest.raises(DataError, match="kept in one split, .* is empty .*10 rows hold 1 distinct pairs"):
        split_pool(rows, labeled_frac=0.3, test_frac=0.0, seed=0)
