"""The README's "Use the trainer in your own TRL script" example, run as written on a tiny model.

The code is read from README.md itself, so the documentation and this test cannot drift apart;
only the model id (a hub id, unreachable offline) is swapped for a tiny local model.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cwpo
from cwpo.errors import CWPOError

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use the trainer in your own TRL script"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", body, flags=re.S)
    assert len(blocks) == 1, "the section should hold exactly one python example"
    return blocks[0]


def test_public_api_is_importable_from_the_package():
    from cwpo import WeightedDPOConfig, WeightedDPOTrainer, confidence, weighted_mean
    from cwpo.align.trainer import WeightedDPOTrainer as Inner

    assert WeightedDPOTrainer is Inner
    assert set(cwpo.__all__) == {"__version__", *cwpo._PUBLIC}  # every export resolves
    assert all(getattr(cwpo, name) is not None for name in cwpo.__all__)
    assert WeightedDPOConfig.__mro__[1].__name__ == "DPOConfig"
    assert callable(confidence) and callable(weighted_mean)
    with pytest.raises(AttributeError, match="no attribute"):
        cwpo.NotAThing  # noqa: B018


def test_readme_example_trains_with_the_weight_column(tmp_path, monkeypatch, tiny_causal_lm_dir):
    code = readme_example()
    model_line = re.search(r'^model_id = "([^"]+)"$', code, flags=re.M)
    assert model_line, "the example should name its model in one `model_id = ...` line"
    code = code.replace(model_line.group(0), f"model_id = {tiny_causal_lm_dir!r}")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102
    trainer = namespace["trainer"]
    assert type(trainer).__name__ == "WeightedDPOTrainer"
    assert trainer.state.global_step == 2
    logged = [h["weight/mean"] for h in trainer.state.log_history if "weight/mean" in h]
    assert logged and logged[0] == pytest.approx(0.55)  # the mean of the README's weights 0.9 and 0.2
    assert (tmp_path / "weighted-dpo").is_dir()


def test_readme_example_without_its_weight_column_is_refused(tmp_path, monkeypatch, tiny_causal_lm_dir):
    """What the README says of a missing column holds for the example itself."""
    code = re.sub(r'^model_id = "[^"]+"$', f"model_id = {tiny_causal_lm_dir!r}", readme_example(), flags=re.M)
    code = re.sub(r', "weight": [0-9.]+\}', "}", code)
    code = code.replace("trainer.train()", "")
    assert '"weight"' not in code
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CWPOError, match="'weight'"):
        exec(compile(code, str(README), "exec"), {})  # noqa: S102
