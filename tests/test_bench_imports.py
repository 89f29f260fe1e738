"""Every benchmark module imports as part of the package (a renamed helper breaks a bench long
before anyone runs it), and none puts its own folder on ``sys.path``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(p.relative_to(REPO).with_suffix("").parts)
    for p in (REPO / "benchmarks").rglob("*.py")
    if p.name != "__init__.py" and "archive" not in p.relative_to(REPO).parts
)


def test_the_benchmarks_are_found():
    assert "benchmarks.tracks.sentiment" in MODULES and "benchmarks.summary.verdicts" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_benchmark_module_imports(module):
    importlib.import_module(module)  # top-level code only: every script runs its work under __main__
    source = (REPO / (module.replace(".", "/") + ".py")).read_text()
    assert "sys.path.insert" not in source and "noqa: E402" not in source


@pytest.mark.parametrize("module", MODULES)
def test_every_benchmark_module_has_a_readme_row(module):
    rel = module.split(".", 1)[1].replace(".", "/") + ".py"  # benchmarks.speed.demo -> speed/demo.py
    rows = [
        line
        for line in (REPO / "benchmarks" / "README.md").read_text().splitlines()
        if line.startswith("| `")
    ]
    assert any(line.startswith(f"| `{rel}` |") for line in rows), f"benchmarks/README.md has no row for {rel}"


@pytest.mark.parametrize("module", MODULES)
def test_every_benchmark_script_takes_its_options_through_bench_parser(module):
    source = (REPO / (module.replace(".", "/") + ".py")).read_text()
    if 'if __name__ == "__main__":' in source:  # a script, not a module of one
        assert "bench_parser(" in source and "ArgumentParser(" not in source


def test_a_bench_script_silences_the_warnings_the_cli_silences():
    import warnings

    from benchmarks.result_files import bench_parser

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bench_parser("doc")
        for module, message in (
            ("transformers.modeling_utils", "`is_gradient_checkpointing` is deprecated and will be removed"),
            ("transformers.modeling_utils", "some other deprecation"),  # not a known one: still shown
        ):
            warnings.warn_explicit(message, FutureWarning, "modeling_utils.py", 1, module=module)
    assert [str(w.message) for w in seen] == ["some other deprecation"]
