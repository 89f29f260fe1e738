"""What a person sees in the terminal, and where everything else goes.

Every ``cwpo`` command runs inside :func:`session`. The terminal then shows only

- one line per stage (:func:`stage_line`: what it does, how long it took, or that it was cached),
- one transient progress bar per long loop with its rate (:func:`progress`; training stages get
  :func:`training_bar`, a Trainer callback showing steps/s and the loss),
- cwpo's own warnings, and the command's result (a table, a path).

Everything else goes to the command's log file (``<output>.log``, see
:func:`cwpo.cli.main.log_file_for`): library
logging (transformers, datasets, accelerate, TRL, PEFT, huggingface_hub), the Trainer's per-step
metric dicts, the final state of every progress bar, and Python warnings. ``--verbose`` shows all
of it live as well. Per-step training metrics are saved in each stage's ``metrics.json`` either way.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from cwpo.errors import CWPOError

STAGE_LOGGER = "cwpo.stage"  # records on it are the stage lines of the terminal
_HF_LIBRARIES = ("transformers", "datasets", "huggingface_hub", "accelerate", "trl", "peft")
_FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Warnings raised inside dependencies on every run that a user can do nothing about. Each is
# silenced narrowly (its category, the module that raises it, the start of its message); any other
# warning still reaches the log file (and the terminal with --verbose).
KNOWN_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    # PEFT 0.18 reads the deprecated `model.is_gradient_checkpointing` when it wraps a model (every
    # LoRA training stage and every adapter load); transformers 5 warns about its own alias.
    (FutureWarning, r"transformers\.modeling_utils", r"`is_gradient_checkpointing` is deprecated"),
)


# what each stage does, as its terminal line says it (pipeline stages and stage commands)
STAGE_WHAT = {
    "data": "load, filter and split the preference pairs",
    "train-annotator": "train the weak annotator on D_l",
    "annotator": "train the weak annotator on D_l",
    "wsdpo_annotator": "train the WS-DPO weak LM (SFT + DPO on D_l)",
    "annotate": "label pairs with the weak annotator + confidence",
    "sft": "supervised fine-tuning of the strong model",
    "pairs": "sample response pairs from the SFT model",
    "prompts": "the fixed evaluation prompts",
    "labels": "gold rewards, simulated human labels, D_l/D_u split",
    "align": "preference optimization of the SFT model",
    "evaluate": "evaluate the policy against the SFT model",
}


def rank() -> int:
    """This process's rank under ``accelerate launch`` / torchrun (0 when not distributed)."""
    for var in ("RANK", "LOCAL_RANK"):
        value = os.environ.get(var)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def silence_known_warnings() -> None:
    """Install the narrow filters of :data:`KNOWN_WARNINGS`."""
    for category, module, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


# ---- terminal output --------------------------------------------------------------------------
class _TqdmSafeHandler(logging.Handler):
    """Writes through ``tqdm.write`` (so a running bar is redrawn below the line) to the stream
    current at emit time (``sys.stdout`` or ``sys.stderr``: pytest's capture replaces them)."""

    def __init__(self, stream_name: str, level: int = logging.NOTSET):
        super().__init__(level)
        self.stream_name = stream_name

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=getattr(sys, self.stream_name))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class _TerminalFilter(logging.Filter):
    """Keeps stage lines (they have their own handler) and file-only records off the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(STAGE_LOGGER) and not getattr(record, "file_only", False)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_stage_line(
    label: str, what: str = "", seconds: float | None = None, cached: bool = False, detail: str = ""
) -> str:
    """``label  what  status  detail`` in fixed columns; status is the duration or ``cached``."""
    status = "cached" if cached else (format_seconds(seconds) if seconds is not None else "")
    line = f"{label:<16} {what:<52} {status:>8}"
    return f"{line}  {detail}".rstrip() if detail else line.rstrip()


def stage_line(
    label: str, what: str = "", seconds: float | None = None, cached: bool = False, detail: str = ""
) -> None:
    """Report a finished (or cached) stage: one terminal line inside :func:`session`, a log record
    otherwise (silent unless the application configured logging)."""
    logging.getLogger(STAGE_LOGGER).info(format_stage_line(label, what, seconds, cached, detail))


# ---- progress bars ----------------------------------------------------------------------------
class Bar(tqdm):
    """A tqdm bar that disappears when done and leaves its final rate in the log file."""

    def close(self) -> None:
        if not self.disable and not getattr(self, "_cwpo_logged", False) and self.n:
            self._cwpo_logged = True
            fmt = {**self.format_dict, "ncols": 0}
            logging.getLogger("cwpo.progress").info(self.format_meter(**fmt))
        super().close()


def progress(
    iterable=None,
    *,
    total=None,
    desc: str = "",
    unit: str = "it",
    enabled: bool = True,
    disable: bool = False,
    **kw,
):
    """The progress bar of one long loop: transient, rate in ``unit``/s, on stderr, rank 0 only.

    Takes tqdm's arguments (``disable`` as well as ``enabled``); the bar's last state is logged."""
    kw.setdefault("leave", False)
    kw.setdefault("dynamic_ncols", True)
    kw.setdefault("mininterval", 0.5)
    off = disable or not enabled or rank() != 0
    return Bar(iterable, total=total, desc=desc, unit=unit, disable=off, file=sys.stderr, **kw)


def short_ref(ref) -> str:
    """The last two parts of a model path (``stages/align-1a2b/model`` -> ``align-1a2b/model``)."""
    return "/".join(Path(str(ref)).parts[-2:])


@functools.cache
def _training_bar_class():
    from transformers import TrainerCallback  # imported here: transformers' Trainer pulls in torch

    class TrainingBar(TrainerCallback):
        """A Trainer callback drawing one bar (steps/s, loss) that replaces the Trainer's own bar and
        its per-step ``print(logs)`` (``replaces_default_progress``); each step's logs go to the
        log file instead (they are also in the trainer's ``log_history``, hence ``metrics.json``)."""

        replaces_default_progress = True

        def __init__(self, label: str, enabled: bool = True):
            self.label, self.enabled, self.bar = label, enabled, None
            self.log = logging.getLogger("cwpo.train")

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.bar = progress(
                    total=state.max_steps, initial=state.global_step, desc=self.label, unit="step",
                    enabled=self.enabled,
                )  # fmt: skip

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in logs.items()}
            self.log.info("%s step %d: %s", self.label, state.global_step, shown)
            if self.bar is not None and isinstance(logs.get("loss"), int | float):
                self.bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return TrainingBar


def training_bar(label: str, enabled: bool = True):
    """A ``transformers.TrainerCallback`` showing one bar for a training stage (see above)."""
    return _training_bar_class()(label, enabled)


# ---- the logging session of one command -------------------------------------------------------
def _quiet_libraries(verbose: bool) -> list:
    """Send the HF libraries' records to the root logger (instead of their own stderr handlers) and
    turn their progress bars off unless verbose. Returns the undo actions."""
    undo = []
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as tf_logging  # adds its handler on first use

        tf_logging.disable_default_handler()
        tf_logging.enable_propagation()
        undo += [tf_logging.enable_default_handler, tf_logging.disable_propagation]
        if not verbose and tf_logging.is_progress_bar_enabled():  # "Loading weights", "Writing model shards"
            tf_logging.disable_progress_bar()
            undo.append(tf_logging.enable_progress_bar)
    with contextlib.suppress(ImportError):
        from datasets import utils as ds_utils  # adds a handler to the "datasets" logger

        if not verbose and not ds_utils.are_progress_bars_disabled():  # "Tokenizing train dataset", "Map"
            ds_utils.disable_progress_bars()
            undo.append(ds_utils.enable_progress_bars)
    for name in _HF_LIBRARIES:
        lib = logging.getLogger(name)
        own = [h for h in lib.handlers if type(h) is logging.StreamHandler]
        for h in own:
            lib.removeHandler(h)
        undo.append(functools.partial(_restore, lib, own, lib.propagate))
        lib.propagate = True
    return undo


def _restore(logger: logging.Logger, handlers: list, propagate: bool) -> None:
    for h in handlers:
        logger.addHandler(h)
    logger.propagate = propagate


class _LogFile(logging.FileHandler):
    """The command's log file, opened (its folder created) at its first record, so a user error
    caught before any work leaves no file behind; it starts with a line naming the command."""

    def __init__(self, path: Path, title: str):
        super().__init__(path, encoding="utf-8", delay=True)
        self.setFormatter(logging.Formatter(_FILE_FORMAT))
        title = title if title.startswith("cwpo") else f"cwpo {title}".strip()
        # it starts with cwpo.outputs.LOG_HEADER: how cwpo knows a log file is its own to append to
        self.header = f"=== {title} (pid {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')}) ===\n"

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        stream = super()._open()
        stream.write(self.header)
        return stream


@contextlib.contextmanager
def session(log_file: str | Path | None, verbose: bool = False, title: str = "") -> Iterator[Path | None]:
    """Configure logging for one command; restore the previous configuration on exit.

    ``log_file`` (created with its folder at its first record; appended to) receives everything at INFO and above from
    cwpo, WARNING and above from libraries, and Python warnings. The terminal gets stage lines on
    stdout and cwpo's warnings on stderr; with ``verbose``, every record and library progress bars.
    Under ``accelerate launch`` a rank > 0 writes ``<log_file>.rank<N>`` and prints nothing.
    """
    root = logging.getLogger()
    cwpo = logging.getLogger("cwpo")
    handlers: list[tuple[logging.Logger, logging.Handler]] = []
    old = {"root": root.level, "cwpo": cwpo.level}
    path = Path(log_file) if log_file else None
    if path is not None and rank() > 0:
        path = path.with_name(f"{path.name}.rank{rank()}")
    with warnings.catch_warnings():
        silence_known_warnings()
        logging.captureWarnings(True)
        undo = _quiet_libraries(verbose)
        try:
            root.setLevel(logging.INFO if verbose else logging.WARNING)
            cwpo.setLevel(logging.INFO)
            file_handler = _LogFile(path, title) if path is not None else None
            if file_handler is not None:
                handlers.append((root, file_handler))
            if rank() == 0:
                stage = _TqdmSafeHandler("stdout")
                stage.setFormatter(logging.Formatter("%(message)s"))
                handlers.append((logging.getLogger(STAGE_LOGGER), stage))
                term = _TqdmSafeHandler("stderr", logging.INFO if verbose else logging.WARNING)
                term.addFilter(_TerminalFilter())
                term.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
                handlers.append((root if verbose else cwpo, term))
            for logger, handler in handlers:
                logger.addHandler(handler)
            try:
                yield path
            except BaseException as e:  # the terminal shows it (one line for a user error): log it too
                user_error = isinstance(e, CWPOError)
                if user_error and (file_handler is None or file_handler.stream is None):
                    raise  # refused before anything was logged: no log file for a typo
                logging.getLogger("cwpo.session").error(
                    "stopped: %s: %s", type(e).__name__, e,
                    exc_info=not (user_error or isinstance(e, KeyboardInterrupt)), extra={"file_only": True},
                )  # fmt: skip
                raise
        finally:
            for logger, handler in handlers:
                logger.removeHandler(handler)
                handler.close()
            for action in reversed(undo):
                action()
            logging.captureWarnings(False)
            root.setLevel(old["root"])
            cwpo.setLevel(old["cwpo"])


__all__ = [
    "KNOWN_WARNINGS",
    "format_stage_line",
    "progress",
    "session",
    "silence_known_warnings",
    "stage_line",
    "training_bar",
]
