"""Benchmark result files record the command as run from the repository root, never a machine path."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _common import tidy_command  # noqa: E402


def test_tidy_command_drops_checkout_paths():
    cmd = (
        "OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/sentiment.py --part v2_crowd "
        "--runs /work/bench_wt2/runs/bench --archive /work/main/benchmarks/archive/bench"
    )
    assert tidy_command(cmd) == (
        "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sentiment.py --part v2_crowd "
        "--runs runs/bench --archive benchmarks/archive/bench"
    )


def test_tidy_command_keeps_other_paths_and_relative_ones():
    cmd = ".venv/bin/python benchmarks/hh.py --data /data/hh/pairs.jsonl --runs runs/x"
    assert tidy_command(cmd) == cmd


def test_tidy_command_writes_shared_data_and_temporary_folders_without_machine_paths():
    cmd = "run --source /work/shared/data/imdb/test.jsonl.gz --log /tmp/cwpo-demo-x1y2/cwpo-demo.log"
    assert tidy_command(cmd) == "run --source ../shared/data/imdb/test.jsonl.gz --log $TMPDIR/cwpo-demo.log"
