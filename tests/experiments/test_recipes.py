"""Every shipped recipe validates; bad recipes report every problem at once; methods are data."""

from __future__ import annotations

from pathlib import Path

import pytest

from cwpo.errors import ConfigError
from cwpo.experiments.methods import METHODS, resolve_methods
from cwpo.experiments.recipe import Recipe, expand, load_recipe, validate
from cwpo.experiments.recipes import packaged_recipes

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "configs").rglob("*.yaml")) + sorted(
    p
    for p in (REPO / "src" / "cwpo" / "configs").rglob("*.yaml")
    if "accelerate" not in p.parts  # accelerate launch configs, not recipes
)


def test_there_are_recipes_for_the_paper_and_cpu():
    names = {p.stem for p in SHIPPED}
    assert "demo" in names
    assert any(p.parent.name == "paper" for p in SHIPPED) and any(p.parent.name == "cpu" for p in SHIPPED)
    assert "demo" in packaged_recipes()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_recipe_validates(path):
    recipe = load_recipe(path)
    assert validate(recipe) == []
    assert expand(recipe)


def test_bad_recipe_lists_every_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntrack: pairs\nmethods: [cw, nonsense]\n"
        "data: {labeled_frac: 1.5}\nalign: {beta: -1, train: f.jsonl}\nsft: {bogus: 1}\n"
        "grid: {nowhere.x: [1]}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_recipe(bad)
    msg = str(e.value)
    for needle in (
        "data.source is required",
        "unknown method 'nonsense'",
        "labeled_frac",
        "set by the runner",
        "sft: unknown setting(s) ['bogus']",
        "grid: 'nowhere.x'",
    ):
        assert needle in msg, needle


def test_a_recipe_cannot_hold_a_judge_key_but_takes_the_judge_settings(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: x\ntrack: pairs\ndata: {source: x}\nmethods: [cw]\n"
        "evaluate: {judge_url: 'http://h/v1', judge_model: m, judge_key: sk-RECIPE}\n"
    )
    with pytest.raises(ConfigError, match="evaluate.judge_key: .*OPENAI_API_KEY") as e:
        load_recipe(path)
    assert "sk-RECIPE" not in str(e.value)
    path.write_text(
        "name: x\ntrack: pairs\ndata: {source: x}\nmethods: [cw]\nevaluate: {judge_url: 'http://h/v1',"
        " judge_model: m, judge_timeout: 5, judge_retries: 1, judge_max_tokens: 32}\n"
    )
    assert load_recipe(path).evaluate["judge_retries"] == 1


def test_unknown_top_level_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrakc: pairs\n")
    with pytest.raises(ConfigError, match="unknown top-level key"):
        load_recipe(bad)


def test_grid_expansion_is_seeds_times_values():
    r = Recipe(track="pairs", data={"source": "x"}, seeds=[0, 1], grid={"data.labeled_frac": [0.1, 0.3, 0.5]})
    points = expand(r)
    assert len(points) == 6
    point, sub = points[-1]
    assert point == {"seed": 1, "data.labeled_frac": 0.5}
    assert sub.data["labeled_frac"] == 0.5 and sub.seeds == [1] and sub.grid == {}


def test_methods_are_label_source_weighting_loss():
    assert (METHODS["cw"].labels, METHODS["cw"].weighting, METHODS["cw"].loss) == (
        "weak",
        "confidence",
        "dpo",
    )
    assert METHODS["human"].weighting == "none" and METHODS["human"].labels == "human"
    custom = resolve_methods({"mine": {"labels": "weak", "weighting": "top-50", "loss": "ipo"}, "cw": "cw"})
    assert custom["mine"].loss == "ipo"
    with pytest.raises(ConfigError, match="labels must be one of"):
        resolve_methods({"x": {"labels": "oracle"}})
    with pytest.raises(ConfigError):
        resolve_methods({"x": {"labels": "weak", "weighting": "no-such-weighting"}})


def test_extends_merges_sections_over_the_base(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(
        "name: base\ntrack: pairs\nseeds: [0]\nmethods: [human]\ndata: {source: hh}\nalign: {lr: 0.001, beta: 0.1}\n"
    )
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.yaml"
    child.write_text("extends: ../base.yaml\nname: child\nseeds: [1, 2]\nalign: {beta: 0.5}\n")
    recipe = load_recipe(child)
    assert recipe.name == "child" and recipe.seeds == [1, 2] and recipe.methods == ["human"]
    assert recipe.align == {"lr": 0.001, "beta": 0.5}
    # a recipe's own grid replaces the base's (it is one study, not a merge of two)
    base.write_text(base.read_text() + "grid: {align.lr: [0.1, 0.2]}\n")
    child.write_text(child.read_text() + "grid: {align.beta: [0.1, 0.2]}\n")
    assert load_recipe(child).grid == {"align.beta": [0.1, 0.2]}


def test_extends_loop_and_missing_base_are_one_line(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("extends: b.yaml\nname: a\n")
    b.write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(ConfigError, match="leads back to itself"):
        load_recipe(a)
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\nname: c\n")
    with pytest.raises(ConfigError, match="recipe not found"):
        load_recipe(tmp_path / "c.yaml")


def test_v2_recipes_share_the_settings_chosen_on_validation_prompts():
    hp = load_recipe(REPO / "configs" / "cpu" / "sentiment-v2-hp.yaml")
    assert hp.sentiment["eval_set"] == "val"
    for name in ("sentiment-v2", "sentiment-v2-crowd", "sentiment-v2-split"):
        r = load_recipe(REPO / "configs" / "cpu" / f"{name}.yaml")
        assert r.align == hp.align and r.sft == hp.sft and r.annotator == hp.annotator
        assert r.sentiment["eval_set"] == "test" and r.sentiment["pool_seed"] == hp.sentiment["pool_seed"]
        assert {k: v for k, v in r.sentiment.items() if k not in ("eval_set", "human_flip")} == {
            k: v for k, v in hp.sentiment.items() if k != "eval_set"
        }


def test_method_seeds_give_some_methods_more_seeds(tmp_path, monkeypatch):
    """method_seeds: 5 seeds for the headline methods, ``seeds`` for the rest; a part of the seeds
    (benchmarks' --seeds) keeps each method on its own seeds among them."""
    from cwpo.experiments import pipeline
    from cwpo.experiments.recipe import all_seeds, restrict_seeds, seeds_of, validate

    r = Recipe(track="pairs", data={"source": "x"}, seeds=[0, 1], methods=["human", "cw", "top30"],
               method_seeds={"human": [0, 1, 2, 3], "cw": [0, 1, 2, 3]})  # fmt: skip
    assert validate(r) == []
    assert all_seeds(r) == [0, 1, 2, 3] and [p["seed"] for p, _ in expand(r)] == [0, 1, 2, 3]
    assert seeds_of(r, "top30") == [0, 1] and seeds_of(r, "cw") == [0, 1, 2, 3]
    ran = []

    def fake_point(root, point, recipe, methods, progress=True):
        ran.extend((point["seed"], m) for m in methods)
        return [{**point, "method": m} for m in methods]

    monkeypatch.setattr(pipeline, "run_point", fake_point)
    monkeypatch.setattr(pipeline, "check_run", lambda recipe, only=None: resolve_methods(recipe.methods))
    monkeypatch.setattr(pipeline, "summarize", lambda rows, keys: {})
    pipeline.run_recipe(r, tmp_path / "run", progress=False)
    assert sorted(ran) == sorted([(s, m) for s in (0, 1) for m in ("human", "cw", "top30")]
                                 + [(s, m) for s in (2, 3) for m in ("human", "cw")])  # fmt: skip
    restrict_seeds(r, [1, 3])
    assert r.seeds == [1] and r.method_seeds == {"human": [1, 3], "cw": [1, 3]}
    # seeds only the headline methods have: the others drop out of this part, which stays valid
    part = Recipe(track="pairs", data={"source": "x"}, seeds=[0, 1], methods={"human": "human", "top30": "top30"},
                  method_seeds={"human": [0, 1, 2, 3]})  # fmt: skip
    restrict_seeds(part, [3, 2])
    assert validate(part) == [] and list(part.methods) == ["human"]
    assert part.method_seeds == {"human": [2, 3]} and sorted(part.seeds) == [2, 3]
    assert sorted(p["seed"] for p, _ in expand(part)) == [2, 3] and seeds_of(part, "human") == [2, 3]
    bad = Recipe(track="pairs", data={"source": "x"}, methods=["human"],
                 method_seeds={"cw": [0], "human": []})  # fmt: skip
    errors = validate(bad)
    assert any("method_seeds: 'cw' is not one of the recipe's methods" in e for e in errors)
    assert any("method_seeds.human must be a non-empty list of integers" in e for e in errors)
