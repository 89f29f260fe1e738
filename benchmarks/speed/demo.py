"""The README's main command, timed: `cwpo demo` from nothing, against the 6-minute bar.

Runs `cwpo demo` in a fresh output folder with an empty model cache (CWPO_CACHE), so the one-time
SmolLM2 GGUF -> HF conversion and every pipeline stage are inside the measured time, as on a fresh
machine (the virtual-environment set-up of `make demo` is not: it depends on the network and on pip's
cache). Writes benchmarks/speed/results/demo.json: the wall time, whether it is within the bar, the load
average before the run (the bar is for an otherwise idle 2-core machine) and the demo's table: the
annotator's accuracy against the gold with its CI and by confidence quintile, each method's GRA
with its CI, CW's head-to-heads, recomputed from the demo's results folder.

    python -m benchmarks.speed.demo [--bar-s 360]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.result_files import bench_parser, write_result
from cwpo.experiments.demo_table import demo_summary

RESULT = Path(__file__).resolve().parent / "results" / "demo.json"


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--bar-s", type=float, default=360.0, help="the bar in seconds (6 minutes)")
    args = parser.parse_args()
    load_before = list(os.getloadavg())
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="cwpo-demo-bench-") as tmp:
        out, cache = Path(tmp) / "cwpo-demo", Path(tmp) / "cache"
        env = {**os.environ, "CWPO_CACHE": str(cache)}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "cwpo.cli.main", "demo", "--output", str(out), "--no-progress"],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"cwpo demo failed with exit code {proc.returncode}")
        rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line]
        table = demo_summary(rows)
        report_written = (out / "report" / "report.md").exists()
    metrics = {
        "demo_wall_time_s": round(wall, 1),
        "bar_s": args.bar_s,
        "within_bar": wall <= args.bar_s,
        "load_average_before": load_before,
        "report_written": report_written,
        "annotator_gold_acc": table["annotator"].get("acc"),
        "annotator_gold_acc_ci": [table["annotator"].get("ci_low"), table["annotator"].get("ci_high")],
        "annotator_gold_acc_by_confidence_quintile": table["annotator"].get("by_confidence"),
        **{f"gra_{m}": g["gra"] for m, g in table["gra"].items() if g},
        **{f"gra_{m}_ci": [g["ci_low"], g["ci_high"]] for m, g in table["gra"].items() if g},
        **{
            f"cw_vs_{m}": {k: h[k] for k in ("gra_diff", "gra_diff_ci", "mde", "win_rate", "win_rate_ci")}
            for m, h in table["cw_vs"].items()
            if h
        },
        "n_test_prompts": next(iter(table["gra"].values()))["n_prompts"],
        "printed_table": proc.stdout.strip().splitlines()[-16:],
    }
    path = write_result(RESULT, metrics, start)
    print(f"cwpo demo: {wall:.0f} s (bar {args.bar_s:.0f} s); wrote {path}")


if __name__ == "__main__":
    main()
