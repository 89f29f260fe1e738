"""Training, annotation and generation speed on this CPU: cwpo's fast paths vs today's path vs TRL.

One run, one process for the timed comparisons (variants interleaved A B C ..., then reversed,
after warm-up; the CPU is shared, so ratios are medians of per-repeat ratios), fresh subprocesses
for peak memory and for the levers that need a process of their own (allocator, thread layout,
torch.compile). Nothing is typed by hand: every figure below comes from this script.

    python -m benchmarks.speed.speed    # -> benchmarks/speed/results/speed.json

Paths (same model, same pairs, same collated batch within a shape):
  base      today's path (commit 0cd68b4 behaviour, by switch): fp32 weights + bf16 autocast as the
            recipes set it, one padded forward (``cw_length_groups=False``)
  fast      cwpo's default now: ``bf16: auto`` (probe) -> bf16 frozen base + fp32 LoRA, or fp32;
            rows in length groups
  trl_docs  TRL 1.16 DPOTrainer as its docs show it (``DPOConfig`` defaults on CPU: bf16 autocast,
            activation checkpointing on, reference forward in every step) + the same LoRA
  cw_same / trl_same  WeightedDPOTrainer (no length groups) and DPOTrainer with identical settings
            (fast precision, reference precomputed): ``cw_step_time_ratio_vs_trl``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.result_files import REPO, bench_parser, module_command, repo_env, tidy_command, write_result
from benchmarks.speed.speed_annotator_generation import bench_annotator, bench_generation
from benchmarks.speed.speed_dpo_sft import (
    MODEL,
    SHAPES,
    TMP,
    bench_dpo,
    bench_sft,
    build_dpo,
    hh_rows,
    short_rows,
)
from benchmarks.speed.train_step import timed_train_step

RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------- matmul peak
def bench_peak() -> dict:
    import torch

    from cwpo.runtime import matmul_gflops

    threads = torch.get_num_threads()
    out = {}
    for t in (1, 2):
        torch.set_num_threads(t)
        for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            out[f"{name}_{t}t"] = max(matmul_gflops(dt, n, seconds=1.0) for n in (1024, 2048))
    torch.set_num_threads(threads)
    return {"gflops": out, "best_gflops": max(out.values()), "best": max(out, key=out.get)}


# ---------------------------------------------------------------- child processes
def child(args) -> None:
    """One DPO path alone (memory, allocator, threads, compile): steps and peak RSS as JSON."""
    import torch

    from cwpo.models.loading import load_tokenizer
    from cwpo.runtime import peak_rss_mb

    torch.set_num_threads(args.threads)
    shape = SHAPES[args.shape]
    tok = load_tokenizer(MODEL)
    rows = (short_rows if args.shape == "short" else hh_rows)(tok, shape["pairs"])
    trainer, batch = build_dpo(args.child, rows, shape, TMP / f"child-{os.getpid()}")
    if args.compile:
        trainer.model.get_base_model().model.compile()
    t0 = time.perf_counter()
    timed_train_step(trainer, batch)
    warm = time.perf_counter() - t0
    times = [timed_train_step(trainer, batch) for _ in range(args.child_steps)]
    real = int(batch["attention_mask"].sum())
    print(
        json.dumps(
            {
                "peak_rss_mb": peak_rss_mb(),
                "first_step_s": warm,
                "step_times_s": times,
                "tokens_per_s": real / statistics.median(times),
            }
        )
    )


def run_child(path, shape, *, threads=2, steps=2, env=None, compile=False, timeout=1800, wait=True):
    cmd = [
        *module_command(__spec__.name),
        "--child",
        path,
        "--shape",
        shape,
        "--threads",
        str(threads),
        "--child-steps",
        str(steps),
    ] + (["--compile"] if compile else [])
    # a child sees an allocator only when asked (this script may itself run under LD_PRELOAD, as
    # `make` runs cwpo): otherwise the allocator lever would compare tcmalloc with tcmalloc
    base_env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=repo_env({**base_env, **(env or {})}),
    )
    if not wait:
        return proc
    return finish_child(proc, timeout)


def finish_child(proc, timeout=1800):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"timed out after {timeout} s"}
    if proc.returncode != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"}
    return json.loads(out.strip().splitlines()[-1])


def allocator_lib() -> str | None:
    for cand in (
        os.environ.get("CWPO_ALLOCATOR", ""),
        str(REPO / ".venv" / "lib" / "cwpo-alloc" / "libtcmalloc_minimal.so.4"),
        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
        "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
    ):
        if cand and Path(cand).exists():
            return cand
    return None


def bench_children(args) -> dict:
    th = args.threads
    out: dict = {"memory": {}}
    for shape, path in (
        ("short", "base"),
        ("short", "fast"),
        ("short", "trl_docs"),
        ("long", "base"),
        ("long", "fast"),
    ):
        r = run_child(path, shape, threads=th, steps=1)
        out["memory"][f"{shape}_{path}"] = r.get("peak_rss_mb", r)
        print(f"  memory {shape} {path}: {r}", flush=True)
    if not args.levers:
        return out
    lib = allocator_lib()
    eager = None
    if lib:
        eager = run_child("fast", "short", threads=th, steps=3)
        tc = run_child("fast", "short", threads=th, steps=3, env={"LD_PRELOAD": lib})
        out["allocator"] = {
            "lib": tidy_command(lib),
            "without": eager,
            "with": tc,
            "without_preload_cleared": True,
        }
        if "tokens_per_s" in eager and "tokens_per_s" in tc:
            out["allocator"]["speedup"] = tc["tokens_per_s"] / eager["tokens_per_s"]
        print(f"  allocator: {out['allocator']}", flush=True)
    else:
        out["allocator"] = {"error": "no tcmalloc found (make setup installs it into .venv/lib/cwpo-alloc)"}
    # thread layout: one 2-thread process vs two 1-thread processes side by side (grids of runs)
    one = run_child("fast", "short", threads=2, steps=3)
    procs = [run_child("fast", "short", threads=1, steps=3, wait=False) for _ in range(2)]
    two = [finish_child(p) for p in procs]
    out["threads"] = {
        "one_proc_2_threads_tokens_per_s": one.get("tokens_per_s"),
        "two_procs_1_thread_total_tokens_per_s": sum(r.get("tokens_per_s", 0) for r in two),
        "one_proc_detail": one,
        "two_procs_detail": two,
    }
    print(f"  threads: {out['threads']}", flush=True)
    if not args.skip_compile:
        eager = eager or run_child("fast", "short", threads=th, steps=3)
        comp = run_child("fast", "short", threads=th, steps=3, compile=True, timeout=args.compile_timeout)
        out["compile"] = {"eager": eager, "compiled": comp}
        if "tokens_per_s" in comp and "tokens_per_s" in eager:
            out["compile"]["speedup"] = comp["tokens_per_s"] / eager["tokens_per_s"]
        print(f"  compile: {out['compile']}", flush=True)
    return out


def finish(res: dict, args, started: float, complete: bool) -> None:
    """Metrics and bars from the parts measured so far -> the results file ``--output``.

    Written after every part (``complete: false`` until the last), so a run cut short by the
    machine (time, memory) keeps what it measured.
    """
    m: dict = {}
    best = res.get("peak", {}).get("best_gflops")
    for shape in ("short", "long"):
        d = res.get(f"dpo_{shape}")
        if not d:
            continue
        m[f"dpo_{shape}_tokens_per_s"] = d["tokens_per_s"]["fast"]
        m[f"dpo_{shape}_model_flops_per_s"] = d["model_flops_per_s"]["fast"]
        m[f"dpo_{shape}_speedup_vs_baseline"] = d["speedup_fast_vs_base"]
        m[f"dpo_{shape}_speedup_vs_trl"] = d["speedup_fast_vs_trl_docs"]
        if best:
            m[f"dpo_{shape}_peak_fraction"] = d["model_flops_per_s"]["fast"] / (best * 1e9)
            m[f"dpo_{shape}_peak_fraction_by_path"] = {
                k: v / (best * 1e9) for k, v in d["model_flops_per_s"].items()
            }
    if "dpo_levers" in res:
        m["dpo_short_lever_speedup"] = res["dpo_levers"]["lever_speedup"]
    if "dpo_short" in res:
        m["cw_step_time_ratio_vs_trl"] = res["dpo_short"]["cw_step_time_ratio_vs_trl"]
    if "sft" in res:
        m["sft_tokens_per_s"] = res["sft"]["tokens_per_s"]["fast"]
        m["sft_speedup_vs_baseline"] = res["sft"]["speedup_fast_vs_base"]
    if "annotator" in res:
        a = res["annotator"]
        # the bar: the library's default path (what `cwpo train-annotator` runs) over the old path; beside
        # it the same computation as the old path (speed_annotator_generation.bench_annotator)
        m["annotator_train_pairs_per_s"] = a["train"]["pairs_per_s"]["default"]
        m["annotator_train_speedup_vs_baseline"] = a["train"]["speedup_default_vs_base"]
        m["annotator_train_speedup_same_computation_vs_baseline"] = a["train"]["speedup_fast_vs_base"]
        m["annotator_train_default_settings"] = a["train"]["default_settings"]
        m["annotation_pairs_per_s"] = a["annotate_pairs_per_s"]
    if "generation" in res:
        m["generation_tokens_per_s"] = res["generation"]["tokens_per_s"]["fast"]
        m["generation_speedup_vs_baseline"] = res["generation"]["speedup_fast_vs_base"]
    if "children" in res:
        m["peak_rss_mb"] = res["children"]["memory"]
    bars = {
        "dpo_short_speedup_vs_baseline": 3.0,
        "dpo_short_speedup_vs_trl": 2.5,
        "dpo_short_peak_fraction": 0.30,
        "dpo_long_speedup_vs_baseline": 2.0,
        "annotator_train_speedup_vs_baseline": 3.0,
        "generation_speedup_vs_baseline": 1.5,
    }
    m["bars"] = {
        k: {"target": v, "measured": m.get(k), "met": m.get(k) is not None and m[k] >= v}
        for k, v in bars.items()
    }
    if "cw_step_time_ratio_vs_trl" in m:
        m["bars"]["cw_step_time_ratio_vs_trl"] = {
            "target": "<= 1.03",
            "measured": m["cw_step_time_ratio_vs_trl"],
            "met": m["cw_step_time_ratio_vs_trl"] <= 1.03,
        }
    path = write_result(
        Path(args.output),
        m,
        started,
        details=res,
        complete=complete,
        setup={
            "model": MODEL,
            "lora": "r=8, alpha=16, dropout=0.05 (disabled as in cwpo align), all linear layers",
            "shapes": SHAPES,
            "threads": args.threads,
            "allocator_preloaded": tidy_command(os.environ.get("LD_PRELOAD", ""))
            or None,  # as `make` runs cwpo
            "repeats": args.repeats,
            "warmup": args.warmup,
            "flops": "3 x forward FLOPs of the real tokens (all linear layers + LM head + causal attention)",
        },
    )
    if complete:
        print(json.dumps(m, indent=1))
    print(f"wrote {path}", flush=True)


# ---------------------------------------------------------------- main
def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parts", default="peak,dpo_short,dpo_levers,dpo_long,sft,annotator,generation,children")
    p.add_argument("--annotator-pairs", type=int, default=256)
    p.add_argument("--generation-prompts", type=int, default=256, help="prompts per timed generation run")
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument(
        "--levers", type=int, default=1, help="1: also the allocator, thread-layout and compile children"
    )
    p.add_argument("--compile-timeout", type=int, default=300)
    p.add_argument(
        "--output", default=str(RESULTS / "speed.json"), help="results file (default: %(default)s)"
    )
    p.add_argument(
        "--child", choices=["base", "fast", "trl_docs", "cw_same", "trl_same"], help=argparse.SUPPRESS
    )
    p.add_argument("--shape", default="short", help=argparse.SUPPRESS)
    p.add_argument("--child-steps", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--from-partial",
        help="comma-separated partial-*.json of runs cut short: write the result from what they measured",
    )
    p.add_argument("--measured-command", help="with --from-partial: the command that measured them")
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.from_partial:
        res: dict = {}
        for f in args.from_partial.split(","):
            for k, v in json.loads(Path(f).read_text()).items():
                res.setdefault(k, v)
        res["assembled_from"] = {"partials": args.from_partial, "measured_command": args.measured_command}
        finish(res, args, time.time(), complete=False)
        return
    import torch

    from cwpo.atomic_files import write_json
    from cwpo.runtime import bf16_is_faster, probe_bf16

    torch.set_num_threads(args.threads)
    started = time.time()
    parts = args.parts.split(",")
    res: dict = {"probe": {"bf16_faster": bf16_is_faster(), "now": probe_bf16()}}
    print(f"probe: {res['probe']}", flush=True)
    if "peak" in parts:
        res["peak"] = bench_peak()
        print(f"peak: {res['peak']}", flush=True)
    steps = [(f"dpo_{sh}", lambda sh=sh: bench_dpo(sh, args)) for sh in ("short", "long")]
    steps += [("dpo_levers", lambda: bench_dpo("short", args, levers=True))]
    steps += [("sft", lambda: bench_sft(args)), ("annotator", lambda: bench_annotator(args))]
    steps += [("generation", lambda: bench_generation(args)), ("children", lambda: bench_children(args))]
    for name, fn in steps:
        if name not in parts:
            continue
        res.setdefault("load_average_before", {})[name] = list(os.getloadavg())
        try:
            res[name] = fn()
        except Exception as e:  # noqa: BLE001  (one failing part must not lose the others)
            import traceback

            traceback.print_exc()
            res[name + "_error"] = f"{type(e).__name__}: {e}"
        write_json(TMP / f"partial-{Path(args.output).stem}.json", res)
        finish(res, args, started, complete=False)
        __import__("gc").collect()

    finish(res, args, started, complete=True)


if __name__ == "__main__":
    main()
