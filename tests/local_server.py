"""A real OpenAI-compatible model server on 127.0.0.1 for the slow tests (judge, LLM annotator).

``Server.transformers_serve(folder)`` runs ``transformers serve`` on a model folder (the serving
extra in requirements/serving.txt); ``Server.llama_cpp(gguf)`` runs llama-cpp-python's server on a
GGUF file (it returns token log-probabilities). Every life of a server has its own log file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SERVED = '"POST /v1/chat/completions HTTP/1.1" 200'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model: str, folder: Path, argv: list[str], health: str):
        self.model, self.folder, self.port = model, folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.health = health.replace("{port}", str(self.port))
        self.proc: subprocess.Popen | None = None
        self.logs: list[Path] = []

    @classmethod
    def transformers_serve(cls, model: str, folder: Path) -> Server:
        exe = str(Path(sys.executable).with_name("transformers"))
        argv = [exe, "serve", model, "--host", "127.0.0.1", "--port", "{port}", "--device", "cpu"]
        return cls(model, folder, argv, "http://127.0.0.1:{port}/health")

    @classmethod
    def llama_cpp(cls, python: str, gguf: Path, folder: Path) -> Server:
        argv = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                "--port", "{port}", "--n_threads", "1", "--n_ctx", "2048", "--logits_all", "true"]  # fmt: skip
        return cls(gguf.name, folder, argv, "http://127.0.0.1:{port}/v1/models")

    def start(self, wait: float = 240.0) -> None:
        log = self.folder / f"server-{len(self.logs)}.log"
        self.logs.append(log)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.argv[0]} exited {self.proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.health, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        pytest.fail(f"{self.argv[0]} did not answer in {wait:.0f} s:\n{log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def served(self) -> int:
        """Chat completions answered (HTTP 200), over every life of the server."""
        return sum(log.read_text(errors="replace").count(SERVED) for log in self.logs if log.exists())


def sampling_copy(model_folder: str, dest: Path) -> Path:
    """The model folder with ``do_sample: true`` in its generation config (links to the weights).

    ``transformers serve`` keeps the model's ``do_sample`` and only sets the temperature, so a folder
    whose generation config says ``do_sample: false`` (or nothing) answers greedily at any
    temperature; the sampling path of the LLM annotator needs a server that samples.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for item in Path(model_folder).iterdir():
        if item.name != "generation_config.json":
            target = dest / item.name
            if item.is_dir():
                shutil.copytree(item, target, symlinks=True)
            else:
                target.symlink_to(item.resolve())
    config = json.loads((Path(model_folder) / "generation_config.json").read_text())
    config.update(do_sample=True, temperature=1.0, top_p=1.0, top_k=0)
    (dest / "generation_config.json").write_text(json.dumps(config, indent=2))
    return dest
