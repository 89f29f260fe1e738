"""GPU smoke test: CW-DPO on one process and on N, with tokens/s, peak memory and loss equality.

For a machine with GPUs: CW-DPO (confidence weights, LoRA) on a 0.5B model for 50 steps, first on
one process with a per-device batch of ``batch × N``, then under ``accelerate launch`` on N
processes with ``batch`` each (the same global batch, so the per-step losses must agree). Reports
per run the tokens/s, the peak GPU memory of each rank (``torch.cuda.max_memory_allocated``; peak
RSS on a CPU) and the largest relative difference of the per-step losses against its tolerance
(1e-4 in fp32, 2e-2 in bf16, whose reductions round differently with the batch split). Precision
is cwpo's ``--bf16 auto`` unless given. Budget on one GPU node: under 10 minutes.

It runs on a CPU too (a tiny random Llama with SmolLM2's tokenizer, a few steps): the test suite
runs it so, to keep it alive. Needs ``accelerate`` on the PATH of this Python.

    python -m benchmarks.speed.gpu_smoke --model Qwen/Qwen2.5-0.5B-Instruct --steps 50 --processes 8
    python -m benchmarks.speed.gpu_smoke --model tiny --steps 2 --processes 2 --output /tmp/smoke.json
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.result_files import bench_parser, repo_env, write_result

HERE = Path(__file__).resolve().parent
MODULE = "benchmarks.speed.gpu_smoke"


def tiny_model(out: Path) -> str:
    """A 2-layer, hidden-64 random Llama with SmolLM2's tokenizer (offline), saved as a folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from cwpo.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def write_pairs(path: Path, n: int, model: str, max_length: int) -> None:
    """``n`` synthetic preference pairs of varied length with a confidence column, each shorter than
    ``max_length`` tokens: TRL drops a pair that does not fit, and a number of pairs the global
    batch does not divide ends in a partial batch that N processes fill with repeats (accelerate's
    ``even_batches``), so the one- and N-process losses would differ on that step."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    rows = []
    for i in range(n):
        words = " ".join(f"detail{j}" for j in range(i % 7 * 4))
        rows.append(
            {
                "prompt": f"\n\nHuman: Explain topic {i} briefly. {words}\n\nAssistant:",
                "chosen": f" Topic {i} is explained here with care and a clear example. {words}",
                "rejected": f" No idea about {i}.",
                "confidence": round(0.05 + 0.9 * ((i * 37) % 100) / 100, 3),
            }
        )
    longest = max(len(tok(r["prompt"] + r["chosen"])["input_ids"]) for r in rows)
    if longest >= max_length:
        raise SystemExit(f"--max-length {max_length} is too short for the smoke pairs ({longest} tokens)")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def worker(args) -> None:
    """One training run (under a launcher or not); each rank writes ``rank<r>.json`` into ``--run``."""
    import torch
    from transformers import TrainerCallback

    from cwpo.align import AlignConfig, align
    from cwpo.distributed import ranks

    run = Path(args.run)

    class Peak(TrainerCallback):
        def on_train_begin(self, *a, **k):
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()

    cfg = AlignConfig(
        train=str(run.parent / "pairs.jsonl"), policy=args.model, output=str(run / "model"),
        max_steps=args.steps, batch_size=args.batch, max_length=args.max_length, weighting="confidence",
        bf16=args.bf16, lora_dropout=0.0, save_steps=10**6,
    )  # fmt: skip
    summary = align(cfg, callbacks=[Peak()])
    peak = (
        {"peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20}
        if torch.cuda.is_available()
        else {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    )
    (run / f"rank{ranks().rank}.json").write_text(json.dumps({**summary, **peak}))


def launch(args, run: Path, processes: int, batch: int) -> dict:
    """Run :func:`worker` on ``processes`` processes; return rank 0's summary and every rank's peak."""
    run.mkdir(parents=True)
    cmd = [sys.executable, "-m", MODULE, "--worker", "--run", str(run), "--model", args.model]
    cmd += ["--steps", str(args.steps), "--batch", str(batch), "--max-length", str(args.max_length)]
    cmd += ["--bf16", str(args.bf16)]
    if processes > 1:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        accelerate = str(Path(sys.executable).with_name("accelerate"))
        cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1"]
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port)]
        cmd += [
            "-m",
            MODULE,
            "--worker",
            "--run",
            str(run),
            "--model",
            args.model,
            "--steps",
            str(args.steps),
        ]
        cmd += ["--batch", str(batch), "--max-length", str(args.max_length), "--bf16", str(args.bf16)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=repo_env())
    if proc.returncode != 0:
        raise SystemExit(f"{processes}-process run failed:\n{proc.stderr[-3000:]}")
    ranks = [json.loads((run / f"rank{r}.json").read_text()) for r in range(processes)]
    steps = json.loads((run / "model" / "metrics.json").read_text())["steps"]
    head = ranks[0]
    return {
        "processes": processes,
        "per_device_batch": batch,
        "precision": head["precision"],
        "train_runtime_s": head["train_runtime_s"],
        "tokens": steps[-1]["num_tokens"],
        "tokens_per_s": steps[-1]["num_tokens"] / head["train_runtime_s"],
        "peak_per_rank": [{k: v for k, v in r.items() if k.startswith("peak_")} for r in ranks],
        "losses": [s["loss"] for s in steps],
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--model", default="Qwen/Qwen2.5-0.5B-Instruct", help="hub id, folder, or 'tiny'")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2, help="N of the multi-process run")
    parser.add_argument("--batch", type=int, default=4, help="pairs per device on the N-process run")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--bf16", default="auto", help="auto (cwpo's probe), true or false")
    parser.add_argument("--output", default=str(HERE / "results" / "gpu_smoke.json"))
    parser.add_argument("--work", default=None, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--worker", action="store_true", help=argparse_hidden())
    parser.add_argument("--run", help=argparse_hidden())
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    import tempfile

    started = time.time()
    work = Path(args.work or tempfile.mkdtemp(prefix="cwpo-gpu-smoke-"))
    if args.model == "tiny":
        args.model = tiny_model(work / "tiny-model")
    write_pairs(work / "pairs.jsonl", args.steps * args.batch * args.processes, args.model, args.max_length)
    one = launch(args, work / "one", 1, args.batch * args.processes)
    many = launch(args, work / f"n{args.processes}", args.processes, args.batch)
    bf16 = one["precision"]["weights"] == "bfloat16" or one["precision"]["autocast_bf16"]
    tolerance = 2e-2 if bf16 else 1e-4
    diff = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(one["losses"], many["losses"], strict=True))
    metrics = {
        "model": args.model if Path(args.model).name != "tiny-model" else "tiny random Llama (hidden 64)",
        "steps": args.steps,
        "global_batch": args.batch * args.processes,
        "runs": [one, many],
        "loss_max_rel_diff": diff,
        "loss_tolerance": tolerance,
        "losses_equal": diff <= tolerance,
        "speedup_tokens_per_s": many["tokens_per_s"] / one["tokens_per_s"],
    }
    write_result(Path(args.output), metrics, started)
    print(json.dumps({k: v for k, v in metrics.items() if k != "runs"}, indent=1))
    for r in (one, many):
        print(f"{r['processes']} process(es): {r['tokens_per_s']:.0f} tokens/s, peaks {r['peak_per_rank']}")


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
