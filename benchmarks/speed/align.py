"""CW-DPO step time vs TRL's plain DPOTrainer, and peak memory of each.

Same model (SmolLM2-135M-Instruct + LoRA r=8, bf16 autocast), same HH-RLHF pairs, same batch.
Speed: both trainers live in one process; each timed step is one ``training_step`` (forward of
policy and reference, backward) followed by an optimizer step, on the *same* collated batch; the
two variants alternate (A B, B A, ...) for several repeats after warm-up, and the reported ratio
is the median of the per-repeat ratios (the CPU is shared with other jobs: interleaving cancels
slow drifts). Memory: each variant runs alone in a fresh subprocess for a few steps and reports
its peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), so the two numbers do
not share a heap.

    python -m benchmarks.speed.align            # writes benchmarks/speed/results/align.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.result_files import SHARED_DATA, bench_parser, command_line, module_command, repo_env
from benchmarks.speed.train_step import timed_train_step

HERE = Path(__file__).resolve().parent
HH = SHARED_DATA / "hh-rlhf" / "helpful-base"


def load_rows(n: int) -> list[dict]:
    from cwpo.data.formats import from_hh_rlhf

    rows = []
    with gzip.open(HH / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = from_hh_rlhf(json.loads(line))
            if len(row["prompt"]) + max(len(row["chosen"]), len(row["rejected"])) < 600:
                rows.append(row)
            if len(rows) == n:
                break
    return rows


def build(variant: str, rows: list[dict], args, out: Path):
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from cwpo.align.trainable_model import lora_config
    from cwpo.align.trainer import WeightedDPOTrainer
    from cwpo.models.loading import load_causal_lm

    torch.manual_seed(0)
    model, tok = load_causal_lm(args.model)
    model.train()
    cfg = DPOConfig(
        output_dir=str(out / variant),
        loss_type=["sigmoid"],
        beta=0.1,
        bf16=args.bf16,
        use_cpu=True,
        report_to="none",
        activation_checkpointing=False,
        per_device_train_batch_size=args.batch_size,
        max_length=args.max_length,
        learning_rate=1e-5,
        seed=0,
        disable_tqdm=True,
    )
    common = dict(model=model, args=cfg, processing_class=tok, peft_config=lora_config(8, 16, 0.05))
    if variant == "cw":
        weights = [0.2 + 0.6 * (i % 5) / 4 for i in range(len(rows))]
        data = Dataset.from_list([dict(r, weight=w) for r, w in zip(rows, weights, strict=True)])
        trainer = WeightedDPOTrainer(train_dataset=data, cw_loss="dpo", **common)
    else:
        trainer = DPOTrainer(train_dataset=Dataset.from_list(rows), **common)
    trainer.create_optimizer_and_scheduler(num_training_steps=1000)
    trainer.current_gradient_accumulation_steps = 1  # set by train(); we call training_step directly
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(args.batch_size)])
    if variant != "cw":
        batch.pop("weight", None)
    return trainer, batch


def child(args) -> None:
    """One variant alone: a few steps, then the peak RSS of this process."""
    import torch

    torch.set_num_threads(args.threads)
    rows = load_rows(args.batch_size * 2)
    trainer, batch = build(args.child, rows, args, Path(args.tmp))
    times = [timed_train_step(trainer, batch) for _ in range(args.mem_steps)]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": peak_mb, "step_times_s": times}))


def main() -> None:
    p = bench_parser(__doc__)
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--repeats", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mem-steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", type=int, default=1)
    p.add_argument("--output", default=str(HERE / "results" / "align.json"), help="results file")
    p.add_argument("--tmp", default="/tmp/cwpo-bench-align")
    p.add_argument("--child", choices=["cw", "trl"], help=argparse.SUPPRESS)
    args = p.parse_args()
    args.bf16 = bool(args.bf16)
    if args.child:
        child(args)
        return

    import torch

    from cwpo.atomic_files import write_json
    from cwpo.machine import machine_info, now_iso

    torch.set_num_threads(args.threads)
    rows = load_rows(args.batch_size * 2)
    tmp = Path(args.tmp)
    cw, cw_batch = build("cw", rows, args, tmp)
    trl, trl_batch = build("trl", rows, args, tmp)
    assert torch.equal(cw_batch["input_ids"], trl_batch["input_ids"])
    for _ in range(args.warmup):
        timed_train_step(cw, cw_batch), timed_train_step(trl, trl_batch)
    cw_times, trl_times, ratios = [], [], []
    for r in range(args.repeats):
        if r % 2 == 0:
            t_cw, t_trl = timed_train_step(cw, cw_batch), timed_train_step(trl, trl_batch)
        else:
            t_trl, t_cw = timed_train_step(trl, trl_batch), timed_train_step(cw, cw_batch)
        cw_times.append(t_cw)
        trl_times.append(t_trl)
        ratios.append(t_cw / t_trl)
        print(f"repeat {r}: cw {t_cw:.3f}s trl {t_trl:.3f}s ratio {t_cw / t_trl:.3f}", flush=True)
    del cw, trl

    memory = {}
    for variant in ("cw", "trl"):
        cmd = [*module_command(__spec__.name), "--child", variant, *sys.argv[1:]]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=repo_env())
        memory[variant] = json.loads(out.stdout.strip().splitlines()[-1])

    result = {
        "metrics": {
            "cw_step_time_ratio_vs_trl": statistics.median(ratios),
            "cw_step_time_median_s": statistics.median(cw_times),
            "trl_step_time_median_s": statistics.median(trl_times),
            "ratios": ratios,
            "peak_rss_mb_cw": memory["cw"]["peak_rss_mb"],
            "peak_rss_mb_trl": memory["trl"]["peak_rss_mb"],
            "target": "cw_step_time_ratio_vs_trl < 1.03",
        },
        "setup": {
            "model": args.model,
            "lora": "r=8, alpha=16, dropout=0.05, all linear layers",
            "bf16_autocast": args.bf16,
            "batch_pairs": args.batch_size,
            "max_length": args.max_length,
            "tokens_in_batch": int(cw_batch["attention_mask"].sum()),
            "threads": args.threads,
            "repeats": args.repeats,
            "warmup_steps_each": args.warmup,
            "data": "HH-RLHF helpful-base test, first pairs under 600 characters",
        },
        "method": (
            "Speed: both trainers in one process, same collated batch, one step = training_step (policy + "
            "reference forward, backward) + AdamW step; variants alternate ABBA for each repeat after warm-up; "
            "ratio = median of per-repeat cw/trl ratios. The CPU (2 cores) was shared with other engineers' jobs, "
            "so single timings are noisy; interleaving cancels slow drifts. Memory: each variant alone in a fresh "
            "subprocess (model load + "
            f"{args.mem_steps} steps), peak RSS from getrusage(RUSAGE_SELF).ru_maxrss."
        ),
        "command": command_line(),
        "date": now_iso(),
        "machine": machine_info(),
    }
    write_json(args.output, result)
    print(json.dumps(result["metrics"], indent=2))


if __name__ == "__main__":
    main()
