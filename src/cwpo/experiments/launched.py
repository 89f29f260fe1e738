"""``cwpo run --processes N``: the pipeline stays one process; each stage that trains or generates
runs in a child ``accelerate launch`` on N processes.

:func:`stage_call` is how :class:`cwpo.experiments.point_runner.PointRunner` calls ``sft``,
``align``, ``train_annotator``, ``annotate`` and ``evaluate``: directly when no launcher is set (the
default), else the function and its arguments are pickled into the stage's work folder, run on
every rank by ``python -m cwpo.experiments.launched JOB`` under the launcher, and rank 0's return
value comes back the same way. Each stage writes the same files either way, so the stage cache,
its locks and resuming are those of one process. The global batch stays the recipe's: ``sft`` and
``align`` (whose ``batch_size`` is per device) get ``batch_size / N`` on each of the N processes, so
a launched run computes what one process does (to float rounding) and shares its cache keys. A training stage's own progress bar is the child's
(callbacks do not cross processes).
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
import pickle
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cwpo.errors import CWPOError

JOB, RESULT = "launched-job.pkl", "launched-result.pkl"


@dataclass(frozen=True)
class Launcher:
    """``accelerate launch`` with ``processes`` processes and an optional ``--config_file``."""

    processes: int
    config_file: str | None = None

    def command(self) -> list[str]:
        with socket.socket() as sock:  # a free port: the default 29500 may be held by another run
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        accelerate = str(Path(sys.executable).with_name("accelerate"))
        cmd = [accelerate, "launch", "--num_processes", str(self.processes), "--num_machines", "1"]
        if self.config_file:
            cmd += ["--config_file", self.config_file]
        else:  # --multi_gpu starts N ranks, on CPUs too (accelerate 1.15's --cpu starts one)
            cmd += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
        return [*cmd, "--main_process_port", str(port)]


# set by run_recipe(launcher=...): None runs every stage in this process
LAUNCHER: contextvars.ContextVar[Launcher | None] = contextvars.ContextVar("cwpo_launcher", default=None)


def stage_call(fn: Callable, *args, work: Path, **kwargs):
    """``fn(*args, **kwargs)``, on the launcher's processes if one is set (see the module docstring).
    ``work`` is the stage's work folder (the job and result files go there); ``callbacks`` are
    dropped in a launched child."""
    launcher = LAUNCHER.get()
    if launcher is None or launcher.processes < 2 and not launcher.config_file:
        return fn(*args, **kwargs)
    kwargs.pop("callbacks", None)
    args = tuple(_per_device(a, launcher.processes) for a in args)
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / RESULT).unlink(missing_ok=True)
    with open(work / JOB, "wb") as fh:
        pickle.dump((fn, args, kwargs), fh)
    src = str(Path(__file__).resolve().parents[2])  # this cwpo, first on the child's path
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    cmd = [*launcher.command(), "-m", "cwpo.experiments.launched", str(work / JOB)]
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0 or not (work / RESULT).exists():
        raise CWPOError(
            f"{fn.__name__} on {launcher.processes} processes failed (exit {proc.returncode}); "
            "its output is above, and a re-run resumes"
        )
    with open(work / RESULT, "rb") as fh:
        return pickle.load(fh)


def per_device_errors(sections: dict[str, dict], processes: int) -> list[str]:
    """The training sections (``sft``, ``align``) whose global batch ``processes`` does not divide."""
    from cwpo.align.training_config import TrainingConfig

    default = TrainingConfig.batch_size
    return [
        f"{name}.batch_size {values.get('batch_size', default)} is the global batch: --processes "
        f"{processes} must divide it"
        for name, values in sections.items()
        if values.get("batch_size", default) % processes
    ]


def _per_device(arg, processes: int):
    """A Trainer stage's config with the per-device share of its (global) batch."""
    from cwpo.align.training_config import TrainingConfig

    if not isinstance(arg, TrainingConfig):
        return arg
    errors = per_device_errors({type(arg).__name__: {"batch_size": arg.batch_size}}, processes)
    if errors:
        raise CWPOError(errors[0])
    return dataclasses.replace(arg, batch_size=arg.batch_size // processes)


def _child(job: str) -> None:
    """Run a pickled stage call on this rank; rank 0 pickles the return value beside the job."""
    from cwpo.distributed import ranks

    with open(job, "rb") as fh:
        fn, args, kwargs = pickle.load(fh)
    result = fn(*args, **kwargs)
    if ranks().is_main:
        with open(Path(job).with_name(RESULT), "wb") as fh:
            pickle.dump(result, fh)


if __name__ == "__main__":
    _child(sys.argv[1])
