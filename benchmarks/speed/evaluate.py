"""Evaluation stage on the real SmolLM2-135M-Instruct and IMDb prefixes, scored by VADER.

Three measurements, all offline:

1. **Invariant**: the model against itself with identical settings and seeds through
   ``cwpo.evaluate.evaluate`` -> GRA must be exactly 0.5 with every prompt a tie; then the same
   evaluation again, which must be served from the generation cache (time of both runs).
2. **Null calibration**: the model against itself with *different* sampling seeds -> GRA should be
   near 0.5 and its bootstrap 95% interval should contain 0.5; the width of that interval and the
   std over three subsets show how many prompts a real comparison needs.
3. **Generation speed**: bf16 weights vs fp32 weights (fresh cache each time), interleaved
   (bf16, fp32, fp32, bf16, ...) and repeated because the CPU is shared with other jobs; the
   ratio reported is the median of the per-repeat ratios of tokens/s.

    python -m benchmarks.speed.evaluate        # writes benchmarks/speed/results/evaluate.json
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.result_files import SHARED_DATA, bench_parser, command_line

IMDB = SHARED_DATA / "imdb" / "test.jsonl.gz"


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--n-prompts", type=int, default=24)
    ap.add_argument("--words", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--speed-prompts", type=int, default=8)
    ap.add_argument("--speed-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--output", default=str(Path(__file__).resolve().parent / "results" / "evaluate.json"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from cwpo.atomic_files import write_json, write_jsonl
    from cwpo.data.imdb import imdb_prompts
    from cwpo.evaluate.evaluate import EvalConfig, evaluate
    from cwpo.evaluate.generation import generate_responses
    from cwpo.evaluate.gold import get_gold
    from cwpo.evaluate.metrics import gra
    from cwpo.machine import machine_info, now_iso

    prompts = imdb_prompts(IMDB, n=args.n_prompts, seed=0, words=args.words)
    texts = [p["prompt"] for p in prompts]
    results: dict = {"model": args.model, "data": str(IMDB), "n_prompts": len(texts), "words": args.words}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_jsonl(tmp / "prompts.jsonl", prompts)
        cfg = EvalConfig(
            policy=args.model, reference=args.model, prompts=str(tmp / "prompts.jsonl"), gold="vader",
            output=str(tmp / "out"), max_new_tokens=args.max_new_tokens, temperature=1.0, seed=0,
            batch_size=args.batch_size, cache_dir=str(tmp / "cache"),
        )  # fmt: skip
        t = time.perf_counter()
        first = evaluate(cfg, progress=True)
        first_s = time.perf_counter() - t
        t = time.perf_counter()
        second = evaluate(cfg, progress=True)
        second_s = time.perf_counter() - t
        results["invariant_same_seed"] = {
            "gra": first["gra"]["gra"],
            "ties": first["gra"]["ties"],
            "n": first["gra"]["n"],
            "exactly_half_all_ties": first["gra"]["gra"] == 0.5 and first["gra"]["ties"] == first["gra"]["n"],
            "first_run_s": first_s,
            "second_run_s_cached": second_s,
            "second_run_cache_hits": [second["generation"][k]["cache_hit"] for k in ("policy", "reference")],
            "policy_generation": first["generation"]["policy"],
        }

        gen = {"max_new_tokens": args.max_new_tokens, "temperature": 1.0, "batch_size": args.batch_size}
        a = generate_responses(args.model, texts, seed=0, cache_dir=tmp / "cache", **gen)  # cached above
        b = generate_responses(args.model, texts, seed=1, cache_dir=tmp / "cache", **gen)
        gold = get_gold("vader")
        null = gra(gold(texts, a), gold(texts, b), seed=0)
        null["contains_half"] = null["ci_low"] <= 0.5 <= null["ci_high"]
        null["identical_texts"] = sum(x == y for x, y in zip(a, b, strict=True))
        results["null_different_seeds"] = null

        speed: dict = {"bfloat16": [], "float32": []}
        sp = texts[: args.speed_prompts]
        for dtype in ("bfloat16", "float32"):  # untimed warm-up of each dtype's kernels
            generate_responses(
                args.model, sp[:2], max_new_tokens=4, seed=99, batch_size=2, dtype=dtype,
                cache_dir=tmp / f"warm-{dtype}", progress=False,
            )  # fmt: skip
        orders = [
            ("bfloat16", "float32") if r % 2 == 0 else ("float32", "bfloat16") for r in range(args.repeats)
        ]
        for r, order in enumerate(orders):
            for dtype in order:
                stats: dict = {}
                generate_responses(
                    args.model, sp, max_new_tokens=args.speed_tokens, seed=100 + r, batch_size=args.batch_size,
                    dtype=dtype, cache_dir=tmp / f"speed-{dtype}-{r}", stats=stats,
                )  # fmt: skip
                speed[dtype].append(stats["tokens_per_s"])
        ratios = [b16 / f32 for b16, f32 in zip(speed["bfloat16"], speed["float32"], strict=True)]
        results["generation_speed"] = {
            "tokens_per_s": speed,
            "bf16_over_fp32_median_ratio": statistics.median(ratios),
            "prompts": len(sp),
            "new_tokens_max": args.speed_tokens,
            "batch_size": args.batch_size,
            "method": "one untimed warm-up per dtype, then interleaved bf16/fp32 runs, alternating order per repeat, fresh cache each run; model "
            "loading excluded; the CPU is shared with other jobs, so absolute numbers are noisy",
        }

    results.update(
        command=command_line(),
        date=now_iso(),
        machine=machine_info(),
        load_average=os.getloadavg(),
    )
    write_json(args.output, results)
    print(f"wrote {args.output}")
    inv, nul, spd = (
        results["invariant_same_seed"],
        results["null_different_seeds"],
        results["generation_speed"],
    )
    print(
        f"same seed: GRA {inv['gra']} ties {inv['ties']}/{inv['n']}; cached re-run {inv['second_run_s_cached']:.1f}s"
    )
    print(
        f"different seeds: GRA {nul['gra']:.3f} CI [{nul['ci_low']:.3f}, {nul['ci_high']:.3f}] std {nul['std']}"
    )
    print(f"tokens/s {spd['tokens_per_s']} bf16/fp32 median ratio {spd['bf16_over_fp32_median_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
