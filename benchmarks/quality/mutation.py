"""Mutation testing of the loss math, the weight functions and the trainer's weighted path (mutmut).

mutmut changes one operator, constant or call at a time in the functions below and runs the
tests that reach the changed function; a mutant the tests do not notice "survives". In scope:
every function of ``cwpo/losses.py`` and ``cwpo/weighting.py``, and the weighted path of
``cwpo/align/trainer.py`` (the collator's weight, the kept ``weight`` column, the reference
forward without it, and ``_compute_loss``; not the speed paths, the TRL version check or the
step timer). The tests are the fast ones of these modules (hand-computed vectors, no model):
``tests/test_losses.py``, ``tests/test_weighting.py``, ``tests/align/test_weighted_step.py``.

The run happens in a scratch copy of ``src/`` and those tests (mutmut writes ``mutants/`` beside
its config), one worker per core, ``OMP_NUM_THREADS=1``. The score is (killed + timeout) over
the mutants that are not equivalent: :data:`EQUIVALENT` lists each surviving mutant that no
test can kill, with the reason, and the result file lists them; a listed mutant that is killed
or no longer exists is reported (``stale_equivalents``) so the list stays true to the code.

    python -m benchmarks.quality.mutation                  # about 10 minutes on 2 cores
    python -m benchmarks.quality.mutation --workdir /tmp/mut --keep   # keep mutants/ to inspect
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from benchmarks.result_files import REPO, bench_parser, write_result

OUT = Path(__file__).resolve().parent / "results" / "mutation.json"
TESTS = [
    "tests/test_losses.py",
    "tests/test_loss_registry.py",
    "tests/test_weighting.py",
    "tests/align/test_weighted_step.py",
]
MODULES = {
    "cwpo/losses.py": ["cwpo.losses.*"],
    "cwpo/weighting.py": ["cwpo.weighting.*"],
    "cwpo/align/trainer.py (weighted path)": [
        "cwpo.align.trainer.xǁWeightedPreferenceCollatorǁtorch_call__mutmut_*",
        "cwpo.align.trainer.x_check_weight_column__mutmut_*",
        "cwpo.align.trainer.xǁWeightedDPOTrainerǁ_set_signature_columns_if_needed__mutmut_*",
        "cwpo.align.trainer.xǁWeightedDPOTrainerǁcompute_ref_log_probs__mutmut_*",
        "cwpo.align.trainer.xǁWeightedDPOTrainerǁ_compute_loss__mutmut_*",
    ],
}
SOURCES = {"cwpo/losses.py", "cwpo/weighting.py", "cwpo/align/trainer.py"}

# Surviving mutants no test can kill (the program computes the same thing), with the reason.
EQUIVALENT: dict[str, str] = {
    "cwpo.weighting.xǁWeightingǁ__call____mutmut_16": "`.to(None)` for `.to(float64)`: every registered "
    "function already returns float64 on the float64 margins, so the cast is a no-op",
    "cwpo.weighting.x__top_fraction__mutmut_4": "`if n or True`: with n = 0, keep = 1 takes order[:1] of "
    "an empty order, the same empty weights",
    "cwpo.weighting.x__top_fraction__mutmut_14": "`else 1`: with n = 0, order[:1] of an empty order is "
    "empty, the same empty weights",
    "cwpo.weighting.x__top_fraction__mutmut_26": "zeros in float32: 0 and 1 are exact in float32 and "
    "Weighting.__call__ casts the weights to float64",
    "cwpo.weighting.x__top_fraction__mutmut_28": "zeros without dtype (float32): 0 and 1 are exact and "
    "Weighting.__call__ casts the weights to float64",
    "cwpo.weighting.x__normalized__mutmut_5": "torch.tensor(1.0) as the max of no margins: the empty "
    "tensor divided by 1 is the same empty tensor",
    "cwpo.losses.x_weighted_mean__mutmut_3": "`weights.to(None)`: multiplying by the float64 losses "
    "promotes the weights to float64 anyway, the same values as the explicit cast",
    "cwpo.align.trainer.xǁWeightedPreferenceCollatorǁtorch_call__mutmut_13": "`learning=None` for "
    "`learning=False`: check_weights only tests its truth, and None is false",
    "cwpo.align.trainer.xǁWeightedPreferenceCollatorǁtorch_call__mutmut_26": "`torch.tensor(weights, "
    "dtype=None)`: a list of Python floats becomes torch's default dtype, float32, as written",
    "cwpo.align.trainer.xǁWeightedPreferenceCollatorǁtorch_call__mutmut_28": "`torch.tensor(weights)`: "
    "a list of Python floats becomes torch's default dtype, float32, as written",
    "cwpo.align.trainer.xǁWeightedDPOTrainerǁ_compute_loss__mutmut_24": "`logps.chunk(2, )`: chunk's "
    "dim defaults to 0",
    "cwpo.align.trainer.xǁWeightedDPOTrainerǁ_compute_loss__mutmut_50": "`completion_mask.chunk(2, )`: "
    "chunk's dim defaults to 0",
}

STATUS = {1: "killed", 3: "killed", 0: "survived", 33: "no tests", 5: "no tests", 34: "skipped"}
STATUS |= {36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}


def scratch_copy(work: Path) -> None:
    """``src/cwpo``, the conftest and the selected tests, and a mutmut config, in ``work``."""
    shutil.copytree(
        REPO / "src" / "cwpo", work / "src" / "cwpo", ignore=shutil.ignore_patterns("__pycache__")
    )
    for rel in ["tests/conftest.py", *TESTS]:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, work / rel)
    only = ", ".join(f'"src/{s}"' for s in sorted(SOURCES))
    tests = ", ".join(f'"{t}"' for t in TESTS)
    (work / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        'source_paths = ["src/cwpo"]\n'
        f"only_mutate = [{only}]\n"
        'pytest_add_cli_args = ["-p", "no:warnings", "-p", "no:cacheprovider", "-q"]\n'
        f"pytest_add_cli_args_test_selection = [{tests}]\n"
        "use_git_change_detection = false\n"
        # the tests take milliseconds: a mutant still running after (1 s + its tests) x 3 x 2 CPU
        # seconds loops (counted as caught, as mutmut does), and need not hold a core for 30 s
        "timeout_multiplier = 3.0\n"
    )


def exit_codes(work: Path) -> dict[str, int | None]:
    """Every mutant of the three files with mutmut's exit code (its ``.meta`` files)."""
    out = {}
    for src in SOURCES:
        meta = json.loads((work / "mutants" / "src" / f"{src}.meta").read_text())
        out.update(meta["exit_code_by_key"])
    return out


def in_module(name: str, patterns: list[str]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(name, p) for p in patterns)


def mutant_diff(work: Path, name: str, env: dict) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=work, env=env, capture_output=True, text=True
    )
    lines = [
        ln
        for ln in proc.stdout.splitlines()
        if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))
    ]
    return " | ".join(ln.strip() for ln in lines)


def summarize(codes: dict[str, int | None], work: Path, env: dict) -> dict:
    modules, survivors, equivalent = {}, [], []
    totals = Counter(dict.fromkeys(("killed", "survived", "timeout", "equivalent"), 0))
    for module, patterns in MODULES.items():
        counts = Counter(dict.fromkeys(("killed", "survived", "timeout", "equivalent"), 0))
        for name, code in sorted(codes.items()):
            if not in_module(name, patterns):
                continue
            status = STATUS.get(code, "not checked" if code is None else "suspicious")
            if status == "survived" and name in EQUIVALENT:
                status = "equivalent"
                equivalent.append(
                    {"mutant": name, "diff": mutant_diff(work, name, env), "why": EQUIVALENT[name]}
                )
            elif status in ("survived", "no tests", "suspicious", "not checked"):
                survivors.append({"mutant": name, "status": status, "diff": mutant_diff(work, name, env)})
            counts[status] += 1
        scored = sum(counts.values()) - counts["equivalent"] - counts["skipped"]
        caught = counts["killed"] + counts["timeout"]
        modules[module] = {
            **dict(sorted(counts.items())),
            "total": sum(counts.values()),
            "score": round(caught / max(1, scored), 4),
        }
        totals.update(counts)
    scored = sum(totals.values()) - totals["equivalent"] - totals["skipped"]
    score = (totals["killed"] + totals["timeout"]) / max(1, scored)
    stale = sorted(n for n in EQUIVALENT if codes.get(n) != 0)
    return {
        "score": round(score, 4),
        "bar": 0.90,
        "passes": score >= 0.90,
        "counts": dict(sorted(totals.items())),  # "timeout": still running at its CPU limit (caught)
        "by_module": modules,
        "surviving_not_equivalent": survivors,
        "equivalent": equivalent,
        "stale_equivalents": stale,
    }


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (mutants/ to inspect)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="parallel mutant runs")
    parser.add_argument("--output", type=Path, default=OUT)
    parser.add_argument(
        "--summarize-only", action="store_true", help="no run: summarize the finished run in --workdir"
    )
    args = parser.parse_args()
    started = time.time()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cwpo-mutation-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    patterns = [p for pats in MODULES.values() for p in pats]
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children), *patterns]
    t = time.time()
    if args.summarize_only:
        proc = subprocess.CompletedProcess(cmd, 0)
    else:
        if work.exists() and any(work.iterdir()):
            raise SystemExit(f"--workdir {work} is not empty")
        work.mkdir(parents=True, exist_ok=True)
        scratch_copy(work)
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    run_s = time.time() - t
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).replace("\r", "\n").splitlines()[-30:]
        raise SystemExit(f"mutmut failed (exit {proc.returncode}):\n" + "\n".join(tail))
    metrics = summarize(exit_codes(work), work, env)
    if not args.summarize_only:
        metrics["mutmut_seconds"] = round(run_s, 1)
    write_result(
        args.output,
        metrics,
        started,
        tool={"name": "mutmut", "version": version("mutmut")},
        mutmut_command=" ".join(["mutmut", "run", "--max-children", str(args.max_children), *patterns]),
        tests=TESTS,
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"mutation score {metrics['score']:.3f} ({metrics['counts']}); wrote {args.output}")


if __name__ == "__main__":
    main()
