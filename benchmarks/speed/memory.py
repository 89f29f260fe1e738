"""Peak host memory (RSS) per rank when loading and training a model: lean loading against the old path.

Model: a randomly initialised Qwen2 of Qwen2.5-0.5B-Instruct's shape (494M parameters, its vocabulary
of 151,936 and tied embeddings), saved once in bf16 as the hub ships it, with SmolLM2's tokenizer.
The stage trained is ``cwpo align`` (CW-DPO, LoRA r=8 on every linear layer, bf16 base, ``--steps``
optimizer steps of ``--batch-size`` pairs of up to ``--max-length`` tokens).

Variants (the loading function of the training stage is the only difference):

* ``before``: the path before lean loading, kept here as it was: the checkpoint read in fp32, then
  cast to the training dtype (bf16 for a LoRA base);
* ``after``: today's path, the checkpoint read straight in bf16 (transformers 5 fills a model built
  on the meta device, which is what ``low_cpu_mem_usage`` did);
* ``after_ckpt`` (training only): ``after`` with ``activation_checkpointing: true``.

Phases: ``load`` (``load_trainable`` alone) and ``train`` (the whole stage: load, train, save).
Each measurement runs alone in a fresh process, so no two share a heap; it reports the peak RSS
(``ru_maxrss``) and the peak above what the process held after its imports. With ``--ranks 2`` the
training runs under ``accelerate launch`` on two gloo CPU ranks (DDP) and every rank reports its own
peak. 4-bit loading (QLoRA) needs a CUDA GPU and is not measured here.

    python -m benchmarks.speed.memory [--ranks 1 2]    # writes benchmarks/speed/results/memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.result_files import bench_parser, module_command, repo_env, write_result
from cwpo.data.schema import write_pairs

RESULT = Path(__file__).resolve().parent / "results" / "memory.json"
MODULE = "benchmarks.speed.memory"

# Qwen2.5-0.5B-Instruct's config.json (the architecture and sizes; the weights here are random)
QWEN25_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_model(out: Path) -> dict:
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from cwpo.models import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m-instruct"))
    config = Qwen2Config(
        **QWEN25_05B,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return {"architecture": "Qwen2ForCausalLM", "parameters": sum(p.numel() for p in model.parameters())}


def old_load_trainable(model_ref, seed, lora, dtype="float32", attention=None, **_):
    """The loading of a training stage before lean loading (verbatim but for the imports)."""
    import torch
    from transformers import set_seed

    from cwpo.models.loading import load_causal_lm

    set_seed(seed)
    model, tokenizer = load_causal_lm(model_ref)  # fp32: an adapter folder is merged at full precision
    if dtype != "float32":
        model.to(getattr(torch, dtype))
    if attention:
        model.set_attn_implementation(attention)
    model.train()
    if not lora:
        model.requires_grad_(True)
    return model, tokenizer


def pairs(n: int) -> list[dict]:
    words = [
        "the",
        "model",
        "answers",
        "every",
        "question",
        "with",
        "care",
        "and",
        "a",
        "short",
        "clear",
        "example",
    ]
    rows = []
    for i in range(n):
        body = " ".join(words[(i + k) % len(words)] for k in range(40))
        rows.append(
            {
                "prompt": f"\n\nHuman: question {i}: {body}?\n\nAssistant:",
                "chosen": f" A helpful answer: {body}.",
                "rejected": f" No. {body[: 20 + i]}",
                "confidence": 0.1 + 0.8 * i / max(1, n - 1),
            }
        )
    return rows


def child(args) -> None:
    """One measurement in this fresh process; prints one JSON line per rank."""
    import torch  # the imports every variant pays, before the baseline

    import cwpo.align.training_stage as stage
    from cwpo.align import AlignConfig, align
    from cwpo.align.trainable_model import load_trainable

    baseline = peak_rss_mb()
    if args.variant == "before":
        stage.load_trainable = old_load_trainable
    t0 = time.perf_counter()
    if args.phase == "load":
        load = old_load_trainable if args.variant == "before" else load_trainable
        model, _ = load(args.model, 0, True, "bfloat16")
        assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    else:
        work = Path(args.work)
        train = work / "pairs.jsonl"  # written by the parent
        align(
            AlignConfig(
                train=str(train),
                policy=args.model,
                output=str(work / f"out-{args.variant}"),
                weighting="confidence",
                max_steps=args.steps,
                batch_size=args.batch_size,
                max_length=args.max_length,
                bf16=True,
                save_steps=10_000,
                activation_checkpointing=args.variant == "after_ckpt",
                overwrite=True,
            )
        )
    print(
        json.dumps(
            {
                "rank": int(os.environ.get("RANK", "0")),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "peak_above_imports_mb": round(peak_rss_mb() - baseline, 1),
                "after_imports_mb": round(baseline, 1),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        ),
        flush=True,
    )


def measure(variant: str, phase: str, ranks: int, model: Path, work: Path, args) -> list[dict]:
    """Run one measurement in a fresh process (or ``ranks`` processes under accelerate launch)."""
    opts = ["--child", "--variant", variant, "--phase", phase, "--model", str(model), "--work", str(work)]
    opts += [
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--max-length",
        str(args.max_length),
    ]
    env = repo_env({**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1" if ranks > 1 else "2"})
    if ranks == 1:
        cmd = [*module_command(MODULE), *opts]
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        accelerate = str(Path(sys.executable).with_name("accelerate"))
        cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", str(ranks), "--num_machines", "1"]
        cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port)]
        cmd += ["-m", MODULE, *opts]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{variant}/{phase} x{ranks} failed:\n{proc.stderr[-3000:]}")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"rank"')]
    return sorted(rows, key=lambda r: r["rank"])


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1], help="process counts to train with")
    parser.add_argument("--steps", type=int, default=1, help="optimizer steps per training run")
    parser.add_argument(
        "--batch-size", dest="batch_size", type=int, default=1, help="pairs per rank and step"
    )
    parser.add_argument("--max-length", dest="max_length", type=int, default=64, help="tokens per sequence")
    parser.add_argument("--output", type=Path, default=RESULT, help="result file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=["before", "after", "after_ckpt"], help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["load", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="cwpo-memory-bench-") as tmp:
        model = Path(tmp) / "qwen2-0.5b-random"
        made = subprocess.run(
            [sys.executable, "-c", f"from {MODULE} import make_model; import json, pathlib; "
             f"print(json.dumps(make_model(pathlib.Path({str(model)!r}))))"],
            capture_output=True, text=True, env=repo_env({**os.environ, "HF_HUB_OFFLINE": "1"}), check=True,
        )  # fmt: skip
        info = json.loads(made.stdout.strip().splitlines()[-1])
        runs: dict = {"load": {}, "train": {}}
        for variant in ("before", "after"):
            runs["load"][variant] = measure(variant, "load", 1, model, Path(tmp), args)
            print(f"load  {variant:10s} {runs['load'][variant]}", flush=True)
        for ranks in args.ranks:
            for variant in ("before", "after", "after_ckpt"):
                work = Path(tmp) / f"train-{variant}-x{ranks}"
                work.mkdir()
                write_pairs(work / "pairs.jsonl", pairs(64))
                runs["train"][f"{variant}_x{ranks}"] = measure(variant, "train", ranks, model, work, args)
                print(f"train {variant:10s} x{ranks} {runs['train'][f'{variant}_x{ranks}']}", flush=True)
    summary = {}
    for phase, by in runs.items():
        for key, rows in by.items():
            summary[f"{phase}/{key}"] = max(r["peak_rss_mb"] for r in rows)
    metrics = {
        "model": {**info, "shape": "Qwen2.5-0.5B-Instruct (random weights)", "checkpoint_dtype": "bfloat16"},
        "setup": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "lora_r": 8,
        },
        "peak_rss_mb_per_rank": runs,
        "max_peak_rss_mb_over_ranks": summary,
        "load_saving_mb": round(summary["load/before"] - summary["load/after"], 1),
    }
    write_result(args.output, metrics, started)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
