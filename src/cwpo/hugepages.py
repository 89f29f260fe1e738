"""Large CPU tensors on transparent huge pages, where the kernel leaves that to the program.

Each training step of a causal LM allocates and frees logits buffers of hundreds of MB (batch x
length x vocabulary); glibc hands each back to the kernel, and the next step faults it in again
4 KiB at a time. On the sentiment bench's align step (SmolLM2-135M, 16 pairs x 64 tokens, one
thread) that is about 0.9 M page faults and 11% of the step's CPU time. PyTorch can align large CPU
allocations to 2 MiB and mark them as huge pages (``THP_MEM_ALLOC_ENABLE=1``), but reads that
variable once, at the process's first tensor allocation, so :func:`choose` runs before torch loads
(the ``cwpo`` command and the benchmarks package call it first thing).

The choice follows the kernel's THP mode (``/sys/kernel/mm/transparent_hugepage/enabled``):
``madvise`` turns it on (the kernel gives huge pages only to memory that asks); ``always`` needs
nothing (every large allocation gets them); ``never`` or no such file leaves it off. An explicit
``THP_MEM_ALLOC_ENABLE``, or ``CWPO_THP=0|1``, wins. Only where the memory comes from changes:
trained weights are bit-identical either way. ``benchmarks/speed/hugepages.py`` measures the step
both ways side by side.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

KERNEL_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
TORCH_VARIABLE = "THP_MEM_ALLOC_ENABLE"
CHOSEN: list[str] = []  # what :func:`choose` decided in this process, said beside the bf16 choice


def kernel_mode(path: Path = KERNEL_SETTING) -> str | None:
    """The kernel's THP mode (``always``, ``madvise`` or ``never``), or None where it has none."""
    try:
        text = path.read_text()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def choose(environ: MutableMapping[str, str] | None = None, mode: str | None = "probe") -> str:
    """Set ``THP_MEM_ALLOC_ENABLE`` for this process and its children; return what was chosen, why.

    ``mode``: the kernel's THP mode, read from the kernel by default."""
    line = _choose(os.environ if environ is None else environ, kernel_mode() if mode == "probe" else mode)
    CHOSEN[:] = [line]
    return line


def _choose(env: MutableMapping[str, str], mode: str | None) -> str:
    late = " (torch was already loaded: from the next process on)" if "torch" in sys.modules else ""
    if TORCH_VARIABLE in env:
        state = "on" if env[TORCH_VARIABLE] == "1" else "off"
        return f"huge pages for large tensors: {state} ({TORCH_VARIABLE}={env[TORCH_VARIABLE]} given)"
    wanted = env.get("CWPO_THP")
    if wanted == "0":
        return "huge pages for large tensors: off (CWPO_THP=0)"
    if mode == "always" and wanted != "1":
        return "huge pages for large tensors: on (the kernel's THP mode is always)"
    if mode in ("madvise", "always"):
        env[TORCH_VARIABLE] = "1"
        why = "CWPO_THP=1" if wanted == "1" else f"the kernel's THP mode is {mode}"
        return f"huge pages for large tensors: on ({why}){late}"
    return f"huge pages for large tensors: off (the kernel's THP mode is {mode or 'not available'})"
