"""The align step with and without huge pages for large tensors (:mod:`cwpo.hugepages`), side by side.

Two child processes run at the same time, identical except for ``THP_MEM_ALLOC_ENABLE`` (1 and 0),
each building the CW-DPO trainer at the sentiment bench's align shape (SmolLM2-135M-Instruct +
LoRA r8, 16 pairs, max_length 64, one thread, bf16 as the run-time probe decides) and timing
``--steps`` training steps on one batch after ``--warmup``. Per step each records wall time, user
and system CPU seconds and minor page faults (``getrusage``); at the end, a hash of the trained
LoRA weights. ``--rounds`` repeats the pair. Reported: the ratio of CPU seconds per step (on/off,
the median over rounds of the ratio of medians; CPU time, because both children share the
machine with whatever else runs), the same for wall time, the page faults, and whether the
weights are bit-identical.

    python -m benchmarks.speed.hugepages     # writes benchmarks/speed/results/hugepages.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.result_files import bench_parser, module_command, repo_env, write_result
from cwpo.hugepages import TORCH_VARIABLE, kernel_mode

HERE = Path(__file__).resolve().parent


def child(args) -> None:
    import torch

    from benchmarks.speed.align import build, load_rows
    from cwpo.runtime import resolve_bf16

    torch.set_num_threads(1)
    setup = argparse.Namespace(
        model=args.model, batch_size=args.batch_size, max_length=args.max_length, bf16=resolve_bf16("auto")
    )
    trainer, batch = build("cw", load_rows(2 * args.batch_size), setup, Path(args.tmp) / args.child)
    steps = []
    for i in range(args.warmup + args.steps):
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        trainer.training_step(trainer.model, dict(batch))
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()
        after = resource.getrusage(resource.RUSAGE_SELF)
        if i >= args.warmup:
            steps.append(
                {
                    "wall_s": time.perf_counter() - start,
                    "user_s": after.ru_utime - before.ru_utime,
                    "sys_s": after.ru_stime - before.ru_stime,
                    "minor_faults": after.ru_minflt - before.ru_minflt,
                }
            )
    weights = b"".join(
        p.detach().float().numpy().tobytes() for _, p in trainer.model.named_parameters() if p.requires_grad
    )
    print(
        json.dumps(
            {"steps": steps, "bf16": setup.bf16, "weights_sha256": hashlib.sha256(weights).hexdigest()}
        )
    )


def median_of(steps: list[dict], key) -> float:
    return statistics.median(key(s) for s in steps)


def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--output", type=Path, default=HERE / "results" / "hugepages.json")
    p.add_argument("--tmp", default="/tmp/cwpo-bench-hugepages")
    p.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    started = time.time()
    rounds = []
    for r in range(args.rounds):
        procs = {
            state: subprocess.Popen(
                [*module_command(__spec__.name), *sys.argv[1:], "--child", state],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env={**repo_env(), TORCH_VARIABLE: "1" if state == "on" else "0", "OMP_NUM_THREADS": "1"},
            )
            for state in (("on", "off") if r % 2 == 0 else ("off", "on"))
        }
        out = {}
        for state, proc in procs.items():
            stdout, _ = proc.communicate()
            if proc.returncode:
                raise SystemExit(f"the {state} child failed (rc {proc.returncode})")
            out[state] = json.loads(stdout.strip().splitlines()[-1])
        rounds.append(out)
        cpu = {s: median_of(out[s]["steps"], lambda x: x["user_s"] + x["sys_s"]) for s in out}
        print(f"round {r}: CPU s/step on {cpu['on']:.2f}, off {cpu['off']:.2f}", flush=True)

    def ratio(key) -> float:
        return statistics.median(
            median_of(o["on"]["steps"], key) / median_of(o["off"]["steps"], key) for o in rounds
        )

    per_state = {
        state: {
            name: statistics.median(median_of(o[state]["steps"], key) for o in rounds)
            for name, key in (
                ("cpu_s_per_step", lambda x: x["user_s"] + x["sys_s"]),
                ("sys_s_per_step", lambda x: x["sys_s"]),
                ("wall_s_per_step", lambda x: x["wall_s"]),
                ("minor_faults_per_step", lambda x: x["minor_faults"]),
            )
        }
        for state in ("on", "off")
    }
    metrics = {
        "cpu_time_ratio_on_vs_off": ratio(lambda x: x["user_s"] + x["sys_s"]),
        "wall_time_ratio_on_vs_off": ratio(lambda x: x["wall_s"]),
        **{f"{state}_{k}": v for state, d in per_state.items() for k, v in d.items()},
        "weights_identical": all(o["on"]["weights_sha256"] == o["off"]["weights_sha256"] for o in rounds),
        "bf16": rounds[0]["on"]["bf16"],
        "kernel_thp_mode": kernel_mode(),
        "setup": {"batch_pairs": args.batch_size, "max_length": args.max_length, "threads_per_child": 1,
                  "steps": args.steps, "warmup": args.warmup, "rounds": args.rounds, "model": args.model},
    }  # fmt: skip
    write_result(args.output, metrics, started, rounds=rounds)
    print(json.dumps({k: v for k, v in metrics.items() if k != "setup"}, indent=1))


if __name__ == "__main__":
    main()
