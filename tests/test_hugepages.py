"""Huge pages for large CPU tensors: chosen from the kernel's THP mode before torch loads, said, and
overridable."""

import os

import pytest

from cwpo import hugepages
from cwpo.cli.main import main

VAR = hugepages.TORCH_VARIABLE


def test_the_kernel_mode_is_the_bracketed_word(tmp_path):
    (tmp_path / "enabled").write_text("always [madvise] never\n")
    assert hugepages.kernel_mode(tmp_path / "enabled") == "madvise"
    assert hugepages.kernel_mode(tmp_path / "absent") is None


@pytest.mark.parametrize(
    "mode, env, value, said",
    [
        ("madvise", {}, "1", "on (the kernel's THP mode is madvise)"),
        ("always", {}, None, "on (the kernel's THP mode is always)"),
        ("never", {}, None, "off (the kernel's THP mode is never)"),
        (None, {}, None, "off (the kernel's THP mode is not available)"),
        ("madvise", {"CWPO_THP": "0"}, None, "off (CWPO_THP=0)"),
        ("always", {"CWPO_THP": "1"}, "1", "on (CWPO_THP=1)"),
        ("never", {"CWPO_THP": "1"}, None, "off (the kernel's THP mode is never)"),
        ("madvise", {VAR: "0"}, "0", f"off ({VAR}=0 given)"),
    ],
)
def test_the_choice_follows_the_kernel_unless_told(mode, env, value, said):
    line = hugepages.choose(env, mode=mode)
    assert env.get(VAR) == value
    assert line.startswith(f"huge pages for large tensors: {said}") and [line] == hugepages.CHOSEN


def test_the_cli_chooses_before_a_stage_loads_torch(monkeypatch, capsys):
    monkeypatch.delenv(VAR, raising=False)
    monkeypatch.delenv("CWPO_THP", raising=False)
    monkeypatch.setattr(hugepages, "kernel_mode", lambda: "madvise")
    assert main(["accelerate-config"]) == 0
    assert os.environ[VAR] == "1"  # inherited by the stage's own children (accelerate, workers)
