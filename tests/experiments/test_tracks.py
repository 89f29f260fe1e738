"""Tracks: the recipe checks and the grid point's stages ask the registered track, never its name.

A toy track registered for one test is accepted by the recipe checks (with its own errors), and a
PointRunner takes its data, SFT model and evaluation defaults from it.
"""

from __future__ import annotations

from pathlib import Path

from cwpo.experiments.cache import Artifact
from cwpo.experiments.point_runner import PointRunner
from cwpo.experiments.recipe import Recipe, validate
from cwpo.experiments.sentiment import SentimentConfig
from cwpo.experiments.tracks import TRACKS


class ToyTrack:
    name = "toy"

    def recipe_errors(self, recipe) -> list[str]:
        return [] if recipe.data.get("rows") else ["data.rows is required for the toy track"]

    def input_errors(self, recipe) -> list[str]:
        return []

    def data(self, runner) -> Artifact:
        runner.files = {"labeled": Path("l"), "unlabeled": Path("u"), "test": None}
        runner.prompts = Path("p")
        return Artifact(Path("toy-data"), "k1", {"rows": runner.r.data["rows"]}, cached=False)

    def sft(self, runner, data, weak) -> Artifact:
        return Artifact(Path("toy-sft"), "k2", {"from": str(data.path)}, cached=False)

    def evaluate_defaults(self, recipe) -> dict:
        return {"gold": "toy-gold", "max_new_tokens": 7}


def test_recipe_checks_ask_the_registered_track(monkeypatch):
    (error,) = [e for e in validate(Recipe(track="toy")) if "track" in e]
    assert error == "track must be 'pairs' or 'sentiment', got 'toy'"
    assert "data.source is required for the pairs track" in validate(Recipe(track="pairs"))
    monkeypatch.setitem(TRACKS, "toy", ToyTrack())
    assert "data.rows is required for the toy track" in validate(Recipe(track="toy"))
    assert not [e for e in validate(Recipe(track="toy", data={"rows": 3})) if "track" in e]


def test_point_runner_takes_its_stages_from_the_track(monkeypatch, tmp_path):
    monkeypatch.setitem(TRACKS, "toy", ToyTrack())
    recipe = Recipe(track="toy", data={"rows": 3}, evaluate={"max_new_tokens": 9})
    runner = PointRunner(tmp_path, {"seed": 2}, recipe, progress=False)
    data = runner.data()
    assert (data.metrics, runner.prompts, runner.files["test"]) == ({"rows": 3}, Path("p"), None)
    assert runner.sft(data, None).metrics == {"from": "toy-data"}
    # the recipe's evaluate section wins over the track's defaults
    assert runner.evaluate_values() == {"max_new_tokens": 9, "seed": 2, "gold": "toy-gold"}


def test_sentiment_track_evaluates_with_its_gold(tmp_path):
    recipe = Recipe(track="sentiment", sentiment={"imdb": str(tmp_path)})
    cfg = SentimentConfig(imdb=str(tmp_path))
    assert PointRunner(tmp_path, {"seed": 0}, recipe).evaluate_values() == {
        "seed": 0,
        "gold": cfg.gold,
        "max_new_tokens": cfg.max_new_tokens,
    }
    assert TRACKS["pairs"].evaluate_defaults(Recipe()) == {}
