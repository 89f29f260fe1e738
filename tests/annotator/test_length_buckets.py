"""Length-bucketed annotator batches: every pair once per epoch, seeded, less padding."""

from __future__ import annotations

import random

from cwpo.annotator.train import _batches


def test_buckets_are_a_seeded_permutation_with_less_padding():
    rng = random.Random(0)
    lengths = [rng.randint(10, 256) for _ in range(300)]
    plan = _batches(300, 32, random.Random(1), lengths)
    assert sorted(i for b in plan for i in b) == list(range(300))
    assert plan == _batches(300, 32, random.Random(1), lengths)
    assert plan != _batches(300, 32, random.Random(2), lengths)
    plain = _batches(300, 32, random.Random(1))

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(plan) < 0.8 * padded(plain)
