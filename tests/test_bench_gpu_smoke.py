"""The GPU smoke benchmark stays alive: it runs on CPU (tiny model, two gloo ranks) end to end."""

import json
import subprocess
import sys

from benchmarks.result_files import repo_env


def test_gpu_smoke_runs_on_cpu_with_two_processes(tmp_path):
    out = tmp_path / "smoke.json"
    cmd = [sys.executable, "-m", "benchmarks.speed.gpu_smoke", "--model", "tiny", "--steps", "2"]
    cmd += ["--processes", "2", "--batch", "2", "--max-length", "256", "--bf16", "false"]
    cmd += ["--output", str(out), "--work", str(tmp_path / "work")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=repo_env(), timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(out.read_text())["metrics"]
    one, two = metrics["runs"]
    assert (one["processes"], two["processes"]) == (1, 2) and len(two["peak_per_rank"]) == 2
    assert one["tokens_per_s"] > 0 and two["tokens_per_s"] > 0
    assert metrics["losses_equal"], (one["losses"], two["losses"])
