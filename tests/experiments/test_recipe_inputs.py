"""A recipe with a wrong type, an unknown --methods or a missing source fails before any work,
with one clear error, and leaves nothing behind."""

from __future__ import annotations

import pytest

from cwpo.cli.main import main
from cwpo.errors import ConfigError
from cwpo.experiments.pipeline import run_recipe
from cwpo.experiments.recipe import Recipe, expand, load_recipe, validate

OK = "name: x\ndata: {source: 'cwpo:hh-rlhf-slice', subset: hh}\nmethods: [human, cw]\n"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("name: x\nmethods: human\ndata: {source: 'cwpo:hh-rlhf-slice'}\n", "methods: expected a list"),
        ("name: x\ndata: hh\n", "data: expected a mapping, got str 'hh'"),
        ("name: x\nseeds: 3\ndata: {source: s}\n", "seeds: expected a list, got int 3"),
        ("name: x\ndata: {source: s}\nalign: fast\n", "align: expected a mapping, got str 'fast'"),
    ],
)
def test_recipe_field_of_the_wrong_shape_is_one_line(text, needle, tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_recipe(path)
    assert main(["run", str(path), "--validate"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "AttributeError" not in err, err


def test_recipe_type_errors_name_section_and_field_all_at_once(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: x\ndata: {source: s, labeled_frac: abc}\nalign: {max_steps: ten, lr: fast}\n"
        "grid: {sft.lr: [1e-4, fast]}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_recipe(path)
    msg = str(e.value)
    assert "not supported" not in msg
    for needle in (
        "4 problem(s)",
        "data.labeled_frac: expected a number, got str 'abc'",
        "align.max_steps: expected an integer or null, got str 'ten'",
        "align.lr: expected a number, got str 'fast'",
        "grid: sft.lr: expected a number, got str 'fast'",
    ):
        assert needle in msg, needle


def test_yaml_number_strings_reach_the_stages_as_numbers(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(OK + "align: {lr: 1e-5}\ngrid: {annotator.lr: [1e-4, 2e-4]}\n")
    recipe = load_recipe(path)
    assert recipe.align["lr"] == 1e-5
    assert [r.annotator["lr"] for _, r in expand(recipe)] == [1e-4, 2e-4]
    assert validate(Recipe(methods="human")) == [
        "methods: expected a list or a mapping or null, got str 'human'"
    ]


@pytest.mark.parametrize(
    "recipe_text, extra, needle",
    [
        (OK, ["--methods", "human", "nonsense"], "--methods ['nonsense'] are not in the recipe's methods"),
        (
            OK.replace("cwpo:hh-rlhf-slice", "no/such/file.jsonl"),
            [],
            "data.source: no/such/file.jsonl: no such",
        ),
        (
            "name: x\ntrack: sentiment\nsentiment: {imdb: /no/such/imdb}\n",
            [],
            "sentiment.imdb: /no/such/imdb: no such folder",
        ),
    ],
)
def test_validate_catches_what_the_run_would_fail_on_and_leaves_nothing(
    recipe_text, extra, needle, tmp_path, capsys
):
    path = tmp_path / "r.yaml"
    path.write_text(recipe_text)
    assert main(["run", str(path), "--validate", *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err
    out = tmp_path / "results"
    assert main(["run", str(path), "--output", str(out), "--no-progress", *extra]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()  # no skeleton results folder
    with pytest.raises(ConfigError, match="no such|not in the recipe"):
        run_recipe(load_recipe(path), out, progress=False, only_methods=extra[1:] or None)
    assert not out.exists()


def test_validate_says_ok_for_a_runnable_recipe(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(OK)
    assert main(["run", str(path), "--validate", "--methods", "cw"]) == 0
    assert "ok" in capsys.readouterr().out


def test_validate_checks_the_models_a_recipe_names(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(
        OK + "strong_model: nobody-xyz/no-model\nannotator: {backbone: smollm2}\n"  # HF_HUB_OFFLINE in tests
    )
    assert main(["run", str(path), "--validate"]) == 2
    err = capsys.readouterr().err
    assert "strong_model: cannot reach hub model 'nobody-xyz/no-model'" in err, err
    assert "annotator.backbone: unknown model 'smollm2'" in err, err
    assert main(["run", str(path), "--output", str(tmp_path / "results")]) == 2
    assert not (tmp_path / "results").exists()
