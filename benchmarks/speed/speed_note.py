"""Render ``benchmarks/speed/results/speed.md`` from ``speed.json`` (every number comes from the JSON).

python -m benchmarks.speed.speed_note
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.result_files import bench_parser, tidy_command

RESULTS = Path(__file__).resolve().parent / "results"


def f(x, nd=2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def tps(child: dict) -> str:
    return (
        f(child.get("tokens_per_s"), 1) if isinstance(child, dict) and "tokens_per_s" in child else "failed"
    )


def _tokens_per_s(g: dict) -> str:
    """One generation result: tokens/s per variant and fast over base."""
    rates = ", ".join(f"{k} {f(v, 1)}" for k, v in g["tokens_per_s"].items())
    return f"tokens/s: {rates}; fast vs base {f(g['speedup_fast_vs_base'])}x"


def render(r: dict) -> str:
    m, d, mach = r["metrics"], r["details"], r["machine"]
    best = d["peak"]["best_gflops"]
    out = [
        "# speed: CW-DPO, SFT, annotator and generation on this CPU",
        "",
        f"Command: `{tidy_command(r['command'])}`  ",
        f"Date: {r['date']}; CPU: {mach.get('cpu_model')} ({mach.get('cpu_count')} cores), torch "
        f"{mach.get('torch')}, {r['setup']['threads']} thread(s) per process; load average at end "
        f"{r.get('load_average_at_end')}; wall time {r['wall_time_s']} s. Every number below is read from "
        "`speed.json` by `python -m benchmarks.speed.speed_note`.",
        "",
        (
            "The machine was shared with other jobs during the run, so one process ran 1 thread (2 threads "
            "on a busy 2-core machine oversubscribe the cores; see the thread-layout lever) and all "
            "comparisons are interleaved medians of per-repeat ratios within one process."
            if r["setup"]["threads"] == 1
            else "Nothing else ran on the machine during the run (the load averages before each part are "
            "listed under Levers); all comparisons are interleaved medians of per-repeat ratios within one "
            "process. Preloaded allocator: " + str(r["setup"].get("allocator_preloaded")) + "."
        ),
        "",
        "## Matmul peak (torch.mm, best of 1024^3 and 2048^3)",
        "",
        "| | fp32 | bf16 |",
        "|---|---|---|",
    ]
    g = d["peak"]["gflops"]
    for t in (1, 2):
        out.append(f"| {t} thread(s) | {f(g[f'fp32_{t}t'], 1)} GFLOP/s | {f(g[f'bf16_{t}t'], 1)} GFLOP/s |")
    out += [
        f"\nBest: {f(best, 1)} GFLOP/s ({d['peak']['best']}); bf16 probe at run start: {d['probe']}.",
        "",
        "## CW-DPO step (policy forward + backward + AdamW; reference log-probs precomputed)",
        "",
        "Paths: `base` = today's path (0cd68b4 by switch: fp32 weights + bf16 autocast as the recipes set "
        "it, one padded forward through TRL's fused LM head); `fast` = the new default (`bf16: auto` -> bf16 "
        "frozen base + fp32 LoRA here, rows in length groups, LM head at the response tokens only, eager "
        "attention); `trl_docs` = TRL 1.16 `DPOTrainer` with `DPOConfig` defaults on CPU "
        "(bf16 autocast, activation checkpointing, live reference forward); `cw_same`/`trl_same` = "
        "WeightedDPOTrainer (no length groups) and DPOTrainer on identical settings (bf16 base, reference "
        "precomputed). Model FLOPs = 3 x forward FLOPs of the real tokens (all linear layers, LM head, "
        "causal attention).",
        "",
    ]
    for shape in ("short", "long"):
        s = d.get(f"dpo_{shape}")
        if not s:
            out.append(f"{shape}: not measured ({d.get(f'dpo_{shape}_error')})\n")
            continue
        out += [
            f"### {shape}: {s['pairs']} pairs, {s['real_tokens']} real tokens ({s['padded_tokens']} padded)",
            "",
            "| path | median step s | real tokens/s | model GFLOP/s | share of best peak |",
            "|---|---|---|---|---|",
        ]
        for p, t in s["step_time_median_s"].items():
            fl = s["model_flops_per_s"][p]
            out.append(
                f"| {p} | {f(t)} | {f(s['tokens_per_s'][p], 1)} | {f(fl / 1e9, 1)} | {f(fl / best / 1e9)} |"
            )
        out.append(
            f"\nfast vs base {f(s['speedup_fast_vs_base'])}x; fast vs trl_docs {f(s['speedup_fast_vs_trl_docs'])}x"
            + (
                f"; cw_same / trl_same step-time ratio {f(s['cw_step_time_ratio_vs_trl'], 3)}"
                if "cw_step_time_ratio_vs_trl" in s
                else ""
            )
            + "\n"
        )
    out += ["## Bars", "", "| key | target | measured | met |", "|---|---|---|---|"]
    for k, b in m["bars"].items():
        out.append(f"| `{k}` | {b['target']} | {f(b['measured'], 3)} | {'yes' if b['met'] else '**no**'} |")
    out.append("")
    if "sft" in d:
        s = d["sft"]
        out += [
            "## SFT step (16 sequences, short shape, TRL SFTTrainer)",
            "",
            f"tokens/s: base {f(s['tokens_per_s']['base'], 1)}, fast (bf16 base) {f(s['tokens_per_s']['fast'], 1)}; "
            f"speedup {f(s['speedup_fast_vs_base'])}x.",
            "",
        ]
    if "annotator" in d:
        a = d["annotator"]["train"]
        pp = a["pairs_per_s"]
        out += [
            f"## BT annotator training (MiniLM-L6, {a['pairs']} HH pairs, max_length 256, batch 32)",
            "",
            f"pairs/s over one pass: base (random batches, bf16 autocast) {f(pp['base'])}, fast (length buckets, "
            f"{a['fast_precision']}) {f(pp['fast'])}, buckets with the other precision "
            f"{f(pp['buckets_other_precision'])}; speedup {f(a['speedup_fast_vs_base'])}x (the same computation)."
            + (
                f" The library's defaults (`cwpo train-annotator`: length buckets, {a['fast_precision']}, "
                f"max_length {a['default_settings']['max_length']}, backbone overrides "
                f"{a['default_settings']['backbone_overrides'] or 'none'}): {f(pp['default'])} pairs/s, "
                f"{f(a['speedup_default_vs_base'])}x the baseline: `annotator_train_speedup_vs_baseline`. "
                "Attention dropout 0 (the CPU's fused attention kernel) is not the baseline's computation; it "
                "became the default because it left HH-RLHF accuracy unchanged (`annotator.json`, "
                "`variants_vs_defaults`)."
                if "default" in pp
                else ""
            )
            + (
                f" The defaults of the time (max_length {a.get('default_max_length', 128)}: chosen on accuracy by "
                f"`benchmarks/annotator/annotator_defaults.py`) with buckets: {f(pp['fast_default_length'])} pairs/s, "
                f"{f(a['speedup_default_length_vs_base'])}x the baseline; not the same computation, so "
                "not the bar."
                if "fast_default_length" in pp  # runs before default_max_length was recorded: 128
                else ""
            )
            + (
                f" Without the attention's dropout (the CPU's fused attention kernel; a training-recipe "
                f"choice, `attention_dropout`): {f(pp['fast_attn_dropout0'])} pairs/s, "
                f"{f(a['speedup_attn_dropout0_vs_base'])}x the baseline; not the same computation, so not the bar."
                if "fast_attn_dropout0" in pp
                else ""
            ),
            "",
            "Annotation (scoring, batch 64) pairs/s: "
            + ", ".join(f"{k} weights {f(v, 1)}" for k, v in d["annotator"]["annotate_pairs_per_s"].items())
            + " (annotate's default stays float32: its output must stay byte-identical).",
            "",
        ]
    if "generation" in d:
        g2 = d["generation"]
        gen_prompts = g2.get("prompts", 64)
        out += [
            f"## Generation ({gen_prompts} IMDb prompts per run, batch 64, 24 new tokens)",
            "",
            _tokens_per_s(g2)
            + " ("
            + (
                "; ".join(f"{k} = {v}" for k, v in g2["variants"].items())
                if "variants" in g2
                else "base = bf16 weights, dynamic cache, SDPA attention; fast = eager attention, the default then"
            )
            + ").",
            "",
        ]
        extra = RESULTS / "speed-generation.json"
        if extra.exists():  # the generation part re-run alone (more prompts or repeats)
            e = json.loads(extra.read_text())
            g3 = e["details"]["generation"]
            probe = e["details"].get("probe", {}).get("now", {})
            out += [
                f"Re-run alone, a separate run (`{tidy_command(e['command'])}`, {e['date'][:10]}, "
                f"CPU {e.get('machine', {}).get('cpu_model')}, matmul probe at its start fp32 "
                f"{probe.get('fp32_gflops')} / bf16 {probe.get('bf16_gflops')} GFLOP/s, "
                f"{g3.get('prompts', 64)} prompts per run): "
                + _tokens_per_s(g3)
                + (
                    " (with bf16 chosen by the probe, fast and base are the same settings: their ratio"
                    " is this run's noise)."
                    if e["details"].get("probe", {}).get("bf16_faster")
                    else "."
                ),
                "",
            ]
    c = d.get("children", {})
    if c:
        out += ["## Peak resident memory (each path alone in a fresh process, load + 2 steps)", ""]
        out += [f"- {k}: {f(v, 0) if isinstance(v, float) else v} MiB" for k, v in c["memory"].items()]
        out.append("")
    out += ["## Levers (measured here; kept or rejected)", ""]
    s = d.get("dpo_short", {})
    tm = s.get("step_time_median_s", {})
    if tm:
        out.append(
            f"- bf16 frozen base + fp32 LoRA instead of fp32 weights + autocast (short, base -> cw_same): "
            f"{f(tm['base'] / tm['cw_same'])}x. **Kept** where the probe finds bf16 faster."
        )
        out.append(
            f"- length groups inside the batch (short, cw_same -> fast): {f(tm['cw_same'] / tm['fast'])}x "
            "(the long shape has more padding to save; see its table). **Kept** (exact in fp32, tested)."
        )
    lv = d.get("dpo_levers", {}).get("lever_speedup")
    if lv:
        out.append(
            "- one lever off at a time (short shape, interleaved in part `dpo_levers`; fast over fast without it): "
            f"LM head + log-softmax at the response tokens only (TRL's fused head projects every position on "
            f"a CPU) {f(lv.get('no_head'))}x; eager attention instead of SDPA's CPU flash kernel "
            f"{f(lv.get('sdpa'))}x; length groups {f(lv.get('no_groups'))}x. **Kept** (each tested against "
            "the fp32 eager path: `tests/align/test_fast_head.py`, `test_fast_paths.py`)."
        )
    if "allocator" not in c:
        out.append(
            "- not re-measured in this run (time and memory on the shared machine; `--levers 0`): tcmalloc, "
            "thread layout and `torch.compile`. The previous run of this script (git history of "
            "`speed.json`) recorded them; there `torch.compile` timed out after 300 s in its first step, "
            "and a second attempt at 1 thread during this work was stopped before its first step ended. "
            "Rejected: compilation alone costs more than many steps, and every new batch shape recompiles."
        )
    if "annotator" not in d:
        out.append(
            "- annotator training (length buckets, bf16 autocast vs fp32): **not measured in this run**. The "
            "part was killed by the kernel's OOM killer twice (random batches of 32 HH pairs at 256 tokens "
            "peak at several GB with eager BERT attention; the shared machine had too little memory free), "
            "so `annotator_train_speedup_vs_baseline` is missing."
        )
    la = d.get("load_average_before")
    if la:
        out.append(
            "- load average (1, 5, 15 min) before each part: "
            + "; ".join(f"{k} {', '.join(f(x, 1) for x in v)}" for k, v in la.items())
        )
    if (
        "allocator" in c
        and r["setup"].get("allocator_preloaded")
        and not c["allocator"].get("without_preload_cleared")
    ):
        out.append(
            "- tcmalloc: **not measured by this run**. The script ran under LD_PRELOAD (as `make` runs cwpo) "
            "and its 'without' child inherited it, so it compared tcmalloc with tcmalloc (ratio "
            f"{f(c['allocator'].get('speedup'))}); the script now clears LD_PRELOAD for its children."
        )
    elif "allocator" in c:
        al = c["allocator"]
        out.append(
            f"- tcmalloc (LD_PRELOAD {al.get('lib')}): without {tps(al.get('without'))} tok/s, with "
            f"{tps(al.get('with'))} tok/s, ratio {f(al.get('speedup'))}. Preloaded by `make demo`/`make test` "
            "when installed."
        )
    if "threads" in c:
        th = c["threads"]
        out.append(
            f"- thread layout (short fast step): one process x 2 threads {f(th['one_proc_2_threads_tokens_per_s'], 1)}"
            f" tok/s; two 1-thread processes side by side {f(th['two_procs_1_thread_total_tokens_per_s'], 1)} tok/s in "
            "total. For grids of runs, two single-thread processes give the higher total when that figure is higher."
        )
    if "compile" in c:
        co = c["compile"]
        out.append(
            f"- torch.compile (inductor, CPU) of the decoder: eager {tps(co.get('eager'))} tok/s, compiled "
            f"{tps(co.get('compiled'))} tok/s"
            + (
                f" (first step {f(co['compiled'].get('first_step_s'), 0)} s incl. compilation)"
                if "first_step_s" in co.get("compiled", {})
                else f" ({co.get('compiled')})"
            )
            + ". Not enabled by default (compile time per new shape; length groups and varying batches recompile)."
        )
        ce, cc = co.get("eager", {}), co.get("compiled", {})
        if "step_times_s" in ce and "step_times_s" in cc:
            import statistics

            te, tc = statistics.median(ce["step_times_s"]), statistics.median(cc["step_times_s"])
            if te > tc:
                extra = cc["first_step_s"] - ce["first_step_s"]
                short = d.get("dpo_short", {}).get("speedup_fast_vs_base")
                out.append(
                    f"  Compilation pays for itself after about {extra / (te - tc):.0f} steps of one shape "
                    f"({extra:.0f} s extra in the first step over {te - tc:.2f} s saved per step)"
                    + (
                        f"; with it the short step would run at {f(short * te / tc)}x the baseline, but the "
                        "runs of this project take 30-300 steps, so it would slow every one of them."
                        if short
                        else "."
                    )
                )
    if "annotator" in d:
        a = d["annotator"]["train"]
        out.append(
            f"- annotator length buckets + precision: base {f(a['epoch_time_s']['base'], 1)} s, fast "
            f"{f(a['epoch_time_s']['fast'], 1)} s, buckets with the other precision "
            f"{f(a['epoch_time_s']['buckets_other_precision'], 1)} s for the same pairs. The head learning rate "
            "changes convergence, not throughput: not measured here."
        )
    if "generation" in d:
        g2 = d["generation"]["tokens_per_s"]
        out.append(
            f"- generation: fp32 weights {f(g2['fp32'], 1)} tok/s vs bf16 {f(g2['base'], 1)}; static KV cache "
            f"{f(g2['static_cache'], 1)} tok/s (rejected unless faster); `dtype: auto` now picks by the probe."
        )
    out.append("")
    return "\n".join(out)


def main() -> None:
    bench_parser(__doc__).parse_args()
    r = json.loads((RESULTS / "speed.json").read_text())
    (RESULTS / "speed.md").write_text(render(r))
    print(f"wrote {RESULTS / 'speed.md'}")


if __name__ == "__main__":
    main()
