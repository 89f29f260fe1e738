"""The output guard under random trees, every command's output path and interruptions.

Each case builds a random tree in a fresh folder: user files (hidden ones, names that look like
cwpo's temporaries or manifests, nested folders, symbolic links inside and to a folder outside)
inside and beside an ``--output``, often over an earlier complete output of the same command. Then
it runs one command's output path with or without ``--overwrite``, interrupted (an exception, as
Ctrl-C raises) at a random file-system step (a write, rename or delete), or not at all. A few cases
run ``cwpo data`` in a child process and SIGKILL it at a random moment.

The invariant checked after every case (a violation is any exception to it):

- every file and link the user made is unchanged (sha256; a link's target text), and so is the
  folder outside that links point to;
- an earlier complete output is either unchanged or replaced by a complete new one (its
  manifest lists every file in it); a command that finished leaves a complete output.

``data`` and ``run`` (the recipe stages stubbed) run their real code; ``sft``/``align`` their real
output code (resume/refuse, save, swap) around a stub trainer; the others the guard and swap calls
their stage makes (``guard_output``, ``atomic_dir``; ``annotate``: the file and side-car guards).

    python -m benchmarks.reliability.output_safety [--cases 4000] [--kills 30] [--seed 0]

Writes ``benchmarks/reliability/results/output_safety.json``. tests/test_output_properties.py runs
the same cases under hypothesis, with a bounded number of examples.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cwpo import outputs
from cwpo.atomic_files import read_json, write_json, write_jsonl
from cwpo.errors import CWPOError

COMMANDS = (
    "data",
    "train-annotator",
    "evaluate",
    "report",
    "align-online",
    "sft",
    "align",
    "annotate",
    "run",
)
FILE_OUTPUT = {"annotate"}

# names a user may have, chosen to look like what cwpo writes or used to treat as its own
USER_NAMES = (
    "notes.txt",
    ".env",
    ".session.tmp",
    ".db.old-7",
    ".out.1234.tmp",
    "manifest.json",
    ".cwpo-scratch.json",
    "model.safetensors",
    "stats.json",
    "labeled.jsonl",
    "checkpoints/checkpoint-500/trainer_state.json",
    "sub/deeper/data.bin",
    ".hidden/inner.txt",
    "report/report.md",
)
# where beside the output a user file may sit (``{o}`` is the output's name)
BESIDE = (
    "{o}.log",
    ".{o}.cwpo-training/notes.txt",
    "{o}.parts/meta.json",
    "{o}.stats.json",
    ".{o}.x1.tmp/a",
    "{o}.cwpo-1.log",
)


class Interrupted(BaseException):
    """Raised at the chosen file-system step, as Ctrl-C raises KeyboardInterrupt."""


@dataclass
class Case:
    command: str
    overwrite: bool
    resume: bool
    earlier: bool
    inside: list[str] = field(default_factory=list)  # user files inside the output
    beside: list[str] = field(default_factory=list)  # user files beside it
    links: list[tuple[str, str]] = field(default_factory=list)  # (link name inside, "in"/"out"/"dir")
    interrupt_at: int | None = None  # the n-th mutating step raises Interrupted; None: never


def random_case(rng: random.Random) -> Case:
    command = rng.choice(COMMANDS)
    return Case(
        command=command,
        overwrite=rng.random() < 0.6,
        resume=rng.random() < 0.3,
        earlier=rng.random() < 0.7,
        inside=rng.sample(USER_NAMES, rng.randint(1, 3)) if rng.random() < 0.4 else [],
        beside=rng.sample(BESIDE, rng.randint(0, 2)),
        links=[(f"link{i}", rng.choice(("in", "out", "dir"))) for i in range(rng.randint(0, 2))]
        if rng.random() < 0.3
        else [],
        interrupt_at=rng.randint(0, 14) if rng.random() < 0.75 else None,
    )


# ---- counting (and interrupting) every file-system step that changes something -------------------
class StepCounter:
    """Patch the functions that write, rename or delete; count their calls; raise at the chosen one."""

    def __init__(self, stop_at: int | None):
        self.stop_at, self.count, self.patches = stop_at, 0, []

    def _tick(self) -> None:
        self.count += 1
        if self.stop_at is not None and self.count > self.stop_at:
            self.stop_at = None  # interrupt once; cleanup code may then run
            raise Interrupted

    def _wrap(self, module, name: str, when=None) -> None:
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            if when is None or when(*args, **kwargs):
                self._tick()
            return original(*args, **kwargs)

        self.patches.append((module, name, original))
        setattr(module, name, wrapper)

    def __enter__(self):
        for name in ("replace", "rename", "unlink", "remove", "rmdir", "mkdir", "symlink"):
            self._wrap(os, name)
        for name in ("rmtree", "move", "copyfile"):
            self._wrap(shutil, name)
        self._wrap(outputs, "_exchange")

        def writes(file, mode="r", *args, **kwargs):
            return any(c in str(mode) for c in "wax+")

        self._wrap(builtins, "open", writes)
        io_open = builtins.open
        self.patches.append((io, "open", io.open))
        io.open = io_open
        return self

    def __exit__(self, *exc):
        for module, name, original in reversed(self.patches):
            setattr(module, name, original)
        return False


# ---- the commands' output paths ---------------------------------------------------------------
def _source(root: Path, seed: int) -> Path:
    rows = [{"prompt": f"Q{i}?", "chosen": f" yes {i} {seed}", "rejected": f" no {i}"} for i in range(12)]
    path = root / "inputs" / "pairs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        write_jsonl(path, rows)
    return path


class _StubTrainer:
    """What ``save_final`` asks of a Trainer."""

    def is_world_process_zero(self) -> bool:
        return True

    def save_model(self, folder: str) -> None:
        Path(folder, "model.safetensors").write_bytes(os.urandom(64))
        Path(folder, "config.json").write_text("{}")


def _recipe(root: Path, seed: int):
    from cwpo.experiments.recipe import Recipe

    return Recipe(
        name=f"recipe-{seed}",
        track="pairs",
        strong_model="smollm2-135m-instruct",
        seeds=[0],
        methods=["human"],
        data={"source": str(_source(root, 0)), "max_tokens": 0},
    )


def _stub_point(root, point, recipe, methods, progress):
    row = {"seed": 0, "method": "human", "labels": "human", "weighting": "none", "loss": "dpo"}
    return [{**row, "pref_acc": 0.5, "recipe": recipe.name}]


def run_command(command: str, root: Path, out: Path, seed: int, overwrite: bool, resume: bool) -> None:
    """One command's output path writing ``out`` (settings vary with ``seed``)."""
    if command == "data":
        from cwpo.data.prepare import DataConfig, prepare_data

        cfg = DataConfig(
            source=str(_source(root, 0)), output=str(out), max_tokens=0, seed=seed, overwrite=overwrite
        )
        prepare_data(cfg)
    elif command in ("train-annotator", "evaluate", "align-online", "report"):
        outputs.guard_output(out, command, overwrite=overwrite, in_place=command == "report")
        with outputs.atomic_dir(out) as tmp:
            (tmp / "sub").mkdir()
            (tmp / "sub" / "weights.bin").write_bytes(os.urandom(32))
            write_json(tmp / "metrics.json", {"seed": seed})
            outputs.write_manifest(tmp, command, {"seed": seed}, f"k{seed}")
    elif command in ("sft", "align"):
        from cwpo.align.stage_output import checkpoint_to_resume, save_final

        work, _last = checkpoint_to_resume(out, resume, command, overwrite)
        ckpt = work / "checkpoints" / f"checkpoint-{seed + 1}"
        ckpt.mkdir(parents=True, exist_ok=True)
        write_json(ckpt / "trainer_state.json", {"global_step": seed + 1})
        save_final(
            _StubTrainer(), work, Path(os.path.abspath(out)), "base", {"seed": seed}, command, {}, f"k{seed}"
        )
    elif command == "annotate":
        stats = out.with_name(out.name + ".stats.json")
        outputs.guard_output(out, "annotate", kind="file", overwrite=overwrite, marker=stats)
        outputs.guard_sidecar(stats, out, "statistics")
        write_jsonl(out, [{"prompt": "p", "chosen": "a", "rejected": "b", "seed": seed}])
        write_json(stats, {"key": f"k{seed}", "output": str(out)})
    elif command == "run":
        from cwpo.experiments import pipeline

        original = pipeline.run_point
        pipeline.run_point = _stub_point
        try:
            pipeline.run_recipe(_recipe(root, seed), out, progress=False, overwrite=overwrite)
        finally:
            pipeline.run_point = original
    else:
        raise ValueError(command)


# ---- trees and checks ----------------------------------------------------------------------------
def _digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Checksums of every file and link under ``folder`` (links not followed)."""
    out = {}
    if not folder.exists():
        return out
    if folder.is_file() or folder.is_symlink():
        return {"": _digest(folder)}
    for name in outputs.listing(folder):
        out[name] = _digest(folder / name)
    return out


def _complete(out: Path, command: str) -> bool:
    """Whether ``out`` holds a complete output of ``command``: every file its record lists exists."""
    if command in FILE_OUTPUT:
        return out.is_file() and outputs.marks(out.with_name(out.name + ".stats.json"), out)
    try:
        manifest = read_json(out / outputs.MANIFEST)
    except (OSError, ValueError):
        return False
    if command == "run":
        return manifest.get("stage") == "run" and (out / "results.jsonl").is_file()
    return all((out / f).exists() for f in manifest.get("files", []) if "checkpoints/" not in f)


def _put(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() and not path.is_symlink():
        path.write_text(text)


def build_tree(case: Case, root: Path, rng: random.Random) -> tuple[Path, Path, set[str], dict[str, str]]:
    """The tree of ``case`` in ``root``: the output path, the folder outside, the files of an
    earlier output (relative to the output's folder) and the checksums of its listed files."""
    outside = root / "outside"
    _put(outside / "precious.txt", "outside\n")
    name = "out.jsonl" if case.command in FILE_OUTPUT else "out"
    out = root / "work" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    earlier_files: set[str] = set()  # what the earlier run wrote (relative to the output's folder)
    earlier_before: dict[str, str] = {}
    if case.earlier:
        run_command(case.command, root, out, seed=1, overwrite=False, resume=False)
        if case.command in FILE_OUTPUT:
            earlier_files = {out.name, out.name + ".stats.json"}
            earlier_before = snapshot(out)
        else:
            written = outputs.listing(out)
            earlier_files = {f"{out.name}/{f}" for f in written}
            owned = set(read_json(out / outputs.MANIFEST).get("files") or []) | {outputs.MANIFEST}
            earlier_before = {k: v for k, v in snapshot(out).items() if k in owned}
    if case.command not in FILE_OUTPUT or not case.earlier:
        for rel in case.inside:
            if case.command in FILE_OUTPUT:
                _put(out, f"user's {rel}\n")  # a user's file where the output goes
                break
            target = out / rel
            if not (target.parent.exists() and not target.parent.is_dir()):
                _put(target, f"user {rel} {rng.random()}\n")
        if case.command not in FILE_OUTPUT:
            for link, kind in case.links:
                if out.is_file():
                    break
                out.mkdir(parents=True, exist_ok=True)
                src = {"in": "notes.txt", "out": str(outside / "precious.txt"), "dir": str(outside)}[kind]
                with contextlib.suppress(FileExistsError):
                    os.symlink(src, out / link)
    for pattern in case.beside:
        _put(out.parent / pattern.format(o=out.name), f"beside {pattern}\n")
    return out, outside, earlier_files, earlier_before


@dataclass
class Outcome:
    finished: bool
    refused: bool
    interrupted: bool
    steps: int
    files_checked: int
    violations: list[str]


def check(
    case, out: Path, outside: Path, user_before: dict, outside_before: dict, earlier_before: dict, finished
) -> tuple[int, list[str]]:
    """The invariant; returns (files checked, violations)."""
    violations = []
    base = out.parent
    for rel, digest in user_before.items():
        path = base / rel
        if not (path.exists() or path.is_symlink()) or _digest(path) != digest:
            violations.append(f"{case.command}: user file {rel} changed or gone")
    if snapshot(outside) != outside_before:
        violations.append(f"{case.command}: the folder outside changed")
    if earlier_before:
        now = snapshot(out)
        unchanged = all(now.get(k) == v for k, v in earlier_before.items())
        if not unchanged and not _complete(out, case.command):
            violations.append(
                f"{case.command}: the earlier output is neither kept nor replaced by a complete one"
            )
    if finished and not _complete(out, case.command):
        violations.append(f"{case.command}: finished without a complete output")
    return len(user_before) + len(outside_before) + len(earlier_before), violations


def user_files(root: Path, out: Path, earlier_files: set[str]) -> dict[str, str]:
    """Checksums of every file and link under the output's folder that cwpo did not write."""
    base = out.parent
    found = snapshot(base)
    return {rel: d for rel, d in found.items() if rel not in earlier_files}


def run_case(case: Case, rng: random.Random) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="cwpo-safety-") as tmp:
        root = Path(tmp)
        out, outside, earlier_files, earlier_before = build_tree(case, root, rng)
        user_before = user_files(root, out, earlier_files)
        outside_before = snapshot(outside)
        finished = refused = interrupted = False
        counter = StepCounter(case.interrupt_at)
        try:
            with counter:
                run_command(case.command, root, out, seed=2, overwrite=case.overwrite, resume=case.resume)
            finished = True
        except CWPOError:
            refused = True
        except Interrupted:
            interrupted = True
        files, violations = check(case, out, outside, user_before, outside_before, earlier_before, finished)
        return Outcome(finished, refused, interrupted, counter.count, files, violations)


# ---- SIGKILL of a real `cwpo data` ------------------------------------------------------------------
def kill_case(rng: random.Random, src: Path) -> Outcome:
    """`cwpo data --overwrite` over an earlier output and user files, SIGKILLed at a random moment."""
    with tempfile.TemporaryDirectory(prefix="cwpo-kill-") as tmp:
        root = Path(tmp)
        out = root / "out"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
        cmd = [sys.executable, "-m", "cwpo.cli.main", "data", "--source", str(src), "--max-tokens", "0"]
        subprocess.run([*cmd, "--output", str(out)], env=env, check=True, capture_output=True, timeout=300)
        owned = set(read_json(out / outputs.MANIFEST)["files"]) | {outputs.MANIFEST}
        earlier_before = {k: v for k, v in snapshot(out).items() if k in owned}
        for rel in rng.sample(USER_NAMES[:6], 2):
            _put(root / rel, f"user {rel}\n")
        _put(root / ".out.77.tmp" / "x", "user\n")
        user_before = {k: v for k, v in snapshot(root).items() if not k.startswith("out/")}
        proc = subprocess.Popen(
            [*cmd, "--output", str(out), "--seed", "5", "--overwrite"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.0, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        finished = proc.returncode == 0
        outside = root / "no-outside"
        case = Case("data", True, False, True)
        user_now = {k: v for k, v in user_before.items() if not k.startswith(("out.log", "out.cwpo-"))}
        files, violations = check(case, out, outside, user_now, {}, earlier_before, finished)
        return Outcome(finished, False, not finished, 0, files, violations)


def main() -> None:
    from benchmarks.result_files import bench_parser, write_result

    parser = bench_parser(__doc__)
    parser.add_argument("--cases", type=int, default=4000, help="in-process cases (default 4000)")
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLed `cwpo data` runs (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).resolve().parent / "results" / "output_safety.json"
    )
    args = parser.parse_args()
    started = time.time()
    rng = random.Random(args.seed)
    totals = {"cases": 0, "interrupted": 0, "refused": 0, "finished": 0, "files_checked": 0, "steps": 0}
    # cases over an earlier complete output with --overwrite, and those of them interrupted
    totals |= {"replacements": 0, "replacements_interrupted": 0}
    by_command: dict[str, int] = {}
    violations: list[str] = []
    for _ in range(args.cases):
        case = random_case(rng)
        result = run_case(case, rng)
        totals["cases"] += 1
        totals["interrupted"] += result.interrupted
        totals["refused"] += result.refused
        totals["finished"] += result.finished
        totals["files_checked"] += result.files_checked
        totals["steps"] += result.steps
        replacing = case.earlier and case.overwrite
        totals["replacements"] += replacing
        totals["replacements_interrupted"] += replacing and result.interrupted
        by_command[case.command] = by_command.get(case.command, 0) + 1
        violations += result.violations
    kills = {"runs": 0, "killed_before_the_end": 0, "files_checked": 0}
    with tempfile.TemporaryDirectory() as tmp:
        src = _source(Path(tmp), 0)
        for _ in range(args.kills):
            result = kill_case(rng, src)
            kills["runs"] += 1
            kills["killed_before_the_end"] += not result.finished
            kills["files_checked"] += result.files_checked
            violations += result.violations
    metrics = {
        **totals,
        "by_command": by_command,
        "sigkill": kills,
        "violations": len(violations),
        "violation_examples": violations[:10],
    }
    path = write_result(args.output, metrics, started)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
