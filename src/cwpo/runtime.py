"""Run-time choices that depend on the CPU: bf16 or fp32, decided by a short cached probe.

The same torch build is 2x faster in bf16 on one x86 CPU (AMX, or AVX512-BF16 on AMD Zen4) and
slower than fp32 on another (an Intel Xeon whose AVX512-BF16 path is emulated): see
``shared/design/ENVIRONMENT.md``. So ``bf16: auto`` (the default of every training stage, the demo
and the recipes) asks :func:`bf16_is_faster`, which times ``torch.mm`` at a transformer-sized shape
in fp32 and bf16 with the current thread count (about 0.5 s), and caches the answer per (CPU model,
CPU flags, torch version, threads) in ``$CWPO_CACHE/runtime-probe.json``. ``CWPO_BF16=0|1``
overrides the probe. On CUDA, ``auto`` means ``torch.cuda.is_bf16_supported()``.
Explicit ``true``/``false`` always win (GPU users keep their settings).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import torch

from cwpo import hugepages

log = logging.getLogger("cwpo")

BF16_CHOICES = ("auto", True, False)
# bf16 must beat fp32 by this factor in the probe to be chosen: a tie keeps the exact fp32 path
BF16_MARGIN = 1.15


def parse_bf16(value) -> bool | str:
    """``True``, ``False`` or ``"auto"`` from a YAML/CLI value (bool, "auto", "true"/"false", 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"bf16 must be auto, true or false, got {value!r}")


def bf16_errors(value) -> list[str]:
    try:
        parse_bf16(value)
    except ValueError as e:
        return [str(e)]
    return []


def _cpu_key() -> str:
    model, flags = "unknown", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = " ".join(
                    sorted(f for f in line.split(":", 1)[1].split() if "avx512" in f or "amx" in f)
                )
    except OSError:
        pass
    return f"{model}|{flags}|torch {torch.__version__}|threads {torch.get_num_threads()}"


def _probe_file() -> Path:
    from cwpo.models import cache_dir

    return cache_dir() / "runtime-probe.json"


def matmul_gflops(dtype: torch.dtype, n: int = 1024, seconds: float = 0.25, m: int | None = None) -> float:
    """Best-of throughput of ``torch.mm`` ([m, n] x [n, n]) in GFLOP/s with the current threads."""
    m = m or n
    # a private generator: the probe runs lazily, inside a seeded stage, the first time a process
    # meets ``auto`` without a cached decision; drawing from the global RNG there would change that
    # stage's initialisation and shuffling, so results would depend on whether the cache existed
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(m, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    torch.mm(a, b)
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * m * n * n / best / 1e9


def probe_bf16() -> dict:
    """Time fp32 against bf16 matmuls at a training-like shape (512 tokens x 576/1536 widths)."""
    shapes = [(512, 576), (512, 1536)]
    fp32 = sum(matmul_gflops(torch.float32, n, m=m) for m, n in shapes)
    bf16 = sum(matmul_gflops(torch.bfloat16, n, m=m) for m, n in shapes)
    return {
        "fp32_gflops": round(fp32, 1),
        "bf16_gflops": round(bf16, 1),
        "bf16_faster": bf16 > BF16_MARGIN * fp32,
    }


def bf16_is_faster(use_cache: bool = True) -> bool:
    """Whether bf16 matmuls beat fp32 here (cached probe; ``CWPO_BF16=0|1`` overrides)."""
    env = os.environ.get("CWPO_BF16")
    if env in ("0", "1"):
        return env == "1"
    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    key = _cpu_key()
    path = _probe_file()
    cache: dict = {}
    if use_cache and path.exists():
        try:
            cache = json.loads(path.read_text())
        except ValueError:
            cache = {}
        if key in cache:
            return bool(cache[key]["bf16_faster"])
    result = probe_bf16()
    cache[key] = result
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass
    log.info("bf16 probe (%s): %s", key, result)
    return bool(result["bf16_faster"])


_ANNOUNCED: set[bool] = set()


def resolve_bf16(value) -> bool:
    """The bf16 decision for a stage setting (``auto`` asks the probe): on the terminal once per
    process (a ``cwpo run`` decides it for every stage), in the log file at every call."""
    choice = parse_bf16(value)
    if choice == "auto":
        decided = bf16_is_faster()
        line = "; ".join([f"bf16 auto -> {'bf16' if decided else 'fp32'} on this machine", *hugepages.CHOSEN])
        log.info(line, extra={"file_only": True})
        if decided not in _ANNOUNCED:
            _ANNOUNCED.add(decided)
            print(f"cwpo: {line}", file=sys.stderr, flush=True)
        return decided
    return choice


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    ``VmHWM`` of ``/proc/self/status`` (reset by ``exec``), not ``ru_maxrss``, which a child
    process started by ``fork`` + ``exec`` inherits from its parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
