"""How many hours the evidence bench takes on this machine's class, from what its runs recorded:
the ``stage_seconds`` of every archived stage of the sentiment v2 parts (``benchmarks/archive/bench``)
and the wall time of every run of the HH-RLHF annotator track
(``benchmarks/annotator/results/annotator.json``; its ablations ``minilm+NAME`` left out).
Robustness stages are left out.

The archive holds the crowd-like and split parts; the noise-free part ran in a cache that was not
archived, so its 20 align + evaluate stages are counted at the crowd part's mean per stage
(``estimated``). Every stage is single-threaded work, so two workers need at least half the sum.

    python -m benchmarks.summary.bench_hours
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from benchmarks.result_files import REPO, bench_parser, command_line
from cwpo.atomic_files import write_json
from cwpo.machine import machine_info, now_iso

STAGES = REPO / "benchmarks" / "archive" / "bench" / "stages"
ANNOTATOR = REPO / "benchmarks" / "annotator" / "results" / "annotator.json"
OUT = Path(__file__).resolve().parent / "results" / "bench_hours.json"
NOISEFREE_ALIGN_RUNS = 20  # sentiment-v2.yaml: human, ws, cw, human100 x 5 seeds


def stage_kind(name: str) -> str:
    return name.rsplit("-", 1)[0]


def sentiment_stages() -> dict[str, list[float]]:
    """Seconds per stage kind, robustness stages (annotators on HH-RLHF data stages) left out."""
    manifests = {p.parent.name: json.loads(p.read_text()) for p in STAGES.glob("*/manifest.json")}

    def from_hh(name: str) -> bool:
        inputs = manifests[name]["config"].get("inputs") or {}
        return any(Path(str(v)).name.startswith("data-") or from_hh(Path(str(v)).name)
                   for v in inputs.values() if Path(str(v)).name in manifests)  # fmt: skip

    out: dict[str, list[float]] = defaultdict(list)
    for name, m in manifests.items():
        if stage_kind(name) == "data" or from_hh(name):
            continue
        out[stage_kind(name)].append(float(m.get("metrics", {}).get("stage_seconds") or 0.0))
    return out


def main() -> None:
    bench_parser(__doc__).parse_args()
    stages = sentiment_stages()
    kinds = {k: {"stages": len(v), "hours": round(sum(v) / 3600, 2)} for k, v in sorted(stages.items())}
    archived_s = sum(sum(v) for v in stages.values())
    per_run = {k: sum(stages[k]) / len(stages[k]) for k in ("align", "evaluate") if stages.get(k)}
    noisefree_s = NOISEFREE_ALIGN_RUNS * sum(per_run.values())
    runs = json.loads(ANNOTATOR.read_text()).get("runs", {})
    runs = {k: r for k, r in runs.items() if not k.startswith("minilm+")}  # ablations: not the bench
    hh_s = sum(float(r.get("wall_time_s") or 0.0) for r in runs.values())
    total_s = archived_s + noisefree_s + hh_s
    metrics = {
        "sentiment_archived_stage_hours": round(archived_s / 3600, 2),
        "sentiment_archived_by_kind": kinds,
        "sentiment_noisefree_estimated_hours": round(noisefree_s / 3600, 2),
        "hh_annotator_track_hours": round(hh_s / 3600, 2),
        "hh_annotator_track_runs": len(runs),
        "single_thread_hours": round(total_s / 3600, 2),
        "two_worker_hours_at_least": round(total_s / 7200, 2),
        "bar_hours": 8,
        "bar_whole_bench_8h": "met" if total_s / 7200 <= 8 else "not met",
    }
    machine = {k: v for k, v in machine_info().items() if k != "hostname"}
    write_json(OUT, {"metrics": metrics, "command": command_line(), "date": now_iso(), "machine": machine})
    print(json.dumps({k: v for k, v in metrics.items() if k != "sentiment_archived_by_kind"}, indent=1))


if __name__ == "__main__":
    main()
