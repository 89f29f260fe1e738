"""An unreachable hub is decided once and fails in seconds with only cwpo's line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

PAIRS = '{"prompt": "p %d", "chosen": "a kind answer %d", "rejected": "no %d"}\n'


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--tokenizer", "nobody-xyz/no-model"], "cannot reach hub model 'nobody-xyz/no-model': the hub"),
        (["--source", "nobody-here/no-such-set"], "cannot load hub dataset 'nobody-here/no-such-set'"),
    ],
    ids=["model", "dataset"],
)
def test_unreachable_endpoint_fails_in_seconds_with_one_line(args, needle, tmp_path):
    (tmp_path / "pairs.jsonl").write_text("".join(PAIRS % (i, i, i) for i in range(10)))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", HF_HOME=str(tmp_path / "hf-home"))
    cmd = [sys.executable, "-m", "cwpo.cli.main", "data", "--source", str(tmp_path / "pairs.jsonl")]
    cmd += ["--output", str(tmp_path / "out"), *args]
    # the same command failing locally (a missing file) measures start-up on this machine's load
    base = [sys.executable, "-m", "cwpo.cli.main", "data", "--source", str(tmp_path / "missing.jsonl")]
    start = time.monotonic()
    subprocess.run([*base, "--output", str(tmp_path / "o2")], env=env, capture_output=True, timeout=300)
    startup = time.monotonic() - start
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - start
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("cwpo data: error: ") and needle in lines[0], proc.stderr
    # the libraries' retries took ~49 s beyond start-up; the probe gives up after 3 s
    assert elapsed < startup + 15, f"{elapsed:.1f} s against {startup:.1f} s of start-up"
    assert not (tmp_path / "out").exists()


def test_hf_hub_offline_is_honoured_without_a_request(monkeypatch):
    from huggingface_hub import constants

    from cwpo.errors import ModelNotFoundError
    from cwpo.models import registry

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(registry, "_probe", lambda *a: pytest.fail("probed the hub although offline"))
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="'nobody-xyz/no-model': HF_HUB_OFFLINE is set"):
        registry.resolve_model("nobody-xyz/no-model")
    assert time.monotonic() - start < 2
