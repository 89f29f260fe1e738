"""Property tests of the output guard: random trees, every command's output path, interruptions.

The cases and the invariant are those of ``benchmarks/reliability/output_safety.py`` (its longer run
is the committed result): every file the user made is unchanged, and an earlier complete output is
kept or replaced by a complete new one, whatever step a command is interrupted at. Here hypothesis
draws (and shrinks) the cases, with a bounded number of examples.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.reliability.output_safety import BESIDE, COMMANDS, USER_NAMES, Case, kill_case, run_case

cases = st.builds(
    Case,
    command=st.sampled_from(COMMANDS),
    overwrite=st.booleans(),
    resume=st.booleans(),
    earlier=st.booleans(),
    inside=st.lists(st.sampled_from(USER_NAMES), max_size=3, unique=True),
    beside=st.lists(st.sampled_from(BESIDE), max_size=2, unique=True),
    links=st.lists(
        st.tuples(st.sampled_from(["link0", "link1"]), st.sampled_from(["in", "out", "dir"])),
        max_size=2,
        unique_by=lambda x: x[0],
    ),
    interrupt_at=st.one_of(st.none(), st.integers(min_value=0, max_value=14)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(case=cases)
def test_no_user_file_changes_and_earlier_outputs_survive(case):
    result = run_case(case, random.Random(0))
    assert result.violations == []


def test_a_sigkilled_data_run_keeps_every_earlier_file(tmp_path):
    from benchmarks.reliability.output_safety import _source

    rng = random.Random(7)
    src = _source(tmp_path, 0)
    for _ in range(2):
        assert kill_case(rng, src).violations == []
