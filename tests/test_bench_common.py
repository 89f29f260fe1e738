"""Benchmark result files record the command as run from the repository root, never a machine path."""

import subprocess
import sys

from benchmarks import result_files
from benchmarks.result_files import command_line, module_command, repo_env, tidy_command


def test_tidy_command_drops_checkout_paths():
    cmd = (
        "OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/tracks/sentiment.py --part v2_crowd "
        "--runs /work/bench_wt2/runs/bench --archive /work/main/benchmarks/archive/bench"
    )
    assert tidy_command(cmd) == (
        "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tracks/sentiment.py --part v2_crowd "
        "--runs runs/bench --archive benchmarks/archive/bench"
    )


def test_tidy_command_keeps_other_paths_and_relative_ones():
    cmd = ".venv/bin/python -m benchmarks.annotator.hh_annotator --hh /data/hh --runs runs/x"
    assert tidy_command(cmd) == cmd


def test_tidy_command_writes_shared_data_and_temporary_folders_without_machine_paths():
    cmd = "run --source /work/shared/data/imdb/test.jsonl.gz --log /tmp/cwpo-demo-x1y2/cwpo-demo.log"
    assert tidy_command(cmd) == "run --source ../shared/data/imdb/test.jsonl.gz --log $TMPDIR/cwpo-demo.log"


class _Main:
    def __init__(self, name):
        self.__spec__ = type("Spec", (), {"name": name})() if name else None


def test_command_line_writes_a_module_run_as_python_m(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/work/wt-x/.venv/bin/python")
    monkeypatch.setattr(sys, "argv", ["/work/wt-x/benchmarks/tracks/sentiment.py", "--part", "v2_hp"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setitem(sys.modules, "__main__", _Main("benchmarks.tracks.sentiment"))
    expected = "OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.tracks.sentiment --part v2_hp"
    assert command_line() == expected
    monkeypatch.setitem(sys.modules, "__main__", _Main(None))  # a file run as a script: its path
    assert command_line() == "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tracks/sentiment.py --part v2_hp"


def test_write_result_writes_the_given_file_with_its_provenance(tmp_path):
    path = result_files.write_result(
        tmp_path / "study" / "results" / "x.json", {"acc": 0.5}, 0.0, setup={"n": 1}
    )
    doc = __import__("json").loads(path.read_text())
    assert doc["metrics"] == {"acc": 0.5} and doc["setup"] == {"n": 1}
    assert {"command", "date", "machine", "wall_time_s"} <= set(doc)


def test_a_bench_module_runs_as_python_m_from_any_folder(tmp_path):
    out = subprocess.run(
        [*module_command("benchmarks.tracks.stage_archive"), "--help"],
        cwd=tmp_path,
        env=repo_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "python -m benchmarks.tracks.stage_archive save|restore" in out.stdout  # the docstring, as written
