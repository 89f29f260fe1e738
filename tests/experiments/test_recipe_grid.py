"""A grid names settings a stage has and values it accepts: checked by --validate and before any stage."""

from __future__ import annotations

import pytest
import yaml

from cwpo.cli.main import main
from cwpo.experiments.recipe import Recipe, validate


def _recipe(tmp_path, grid, base) -> str:
    recipe = yaml.safe_load(base.read_text())
    recipe["grid"] = grid
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


@pytest.mark.parametrize(
    ("grid", "needle"),
    [
        ({"align.bta": [0.1, 0.2]}, "grid: 'align.bta' names no setting of align; valid align settings: ["),
        ({"algn.beta": [0.1]}, "grid: 'algn.beta' must start with a section name (data, annotator,"),
        ({"align.train": ["x.jsonl"]}, "grid: 'align.train' is set by the runner; valid align settings:"),
        ({"align.beta": [0.1, -1]}, "grid: align.beta=-1: align: "),
        ({"data.labeled_frac": [1.5]}, "grid: data.labeled_frac=1.5: data: "),
        ({"sft.max_steps": ["ten"]}, "grid: sft.max_steps: expected an integer or null, got str 'ten'"),
        ({"sft_data": ["weak", "human"]}, "grid: sft_data must be one of ['weak', 'labeled'], got 'human'"),
    ],
)
def test_validate_refuses_a_bad_grid_in_one_line(tmp_path, tiny_recipe_yaml, capsys, grid, needle):
    rc = main(["run", _recipe(tmp_path, grid, tiny_recipe_yaml), "--validate"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    if "valid align settings" in needle:
        assert "'beta'" in err[0] and "'train'" not in err[0]


def test_the_run_refuses_a_bad_grid_before_any_stage(tmp_path, tiny_recipe_yaml, capsys):
    out = tmp_path / "run"
    rc = main(["run", _recipe(tmp_path, {"align.bta": [0.1]}, tiny_recipe_yaml), "--output", str(out)])
    assert rc == 2 and "'align.bta' names no setting of align" in capsys.readouterr().err
    assert not out.exists()


def test_a_good_grid_still_validates(tiny_recipe_yaml):
    recipe = Recipe(**yaml.safe_load(tiny_recipe_yaml.read_text()))
    recipe.grid = {"align.beta": [0.1, 0.5], "data.labeled_frac": [0.2, 0.4], "sft_data": ["weak", "labeled"]}
    assert validate(recipe) == []
