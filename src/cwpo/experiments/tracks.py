"""Tracks: where a grid point's data, SFT model and evaluation settings come from.

A recipe names its ``track``; :class:`cwpo.experiments.point_runner.PointRunner` and the recipe
checks ask the :class:`Track` registered under that name instead of branching on it. A new track
is one module with a class that has these methods, plus its line in :data:`TRACKS`.
"""

from __future__ import annotations

from typing import Protocol

from cwpo.experiments.cache import Artifact
from cwpo.experiments.pairs_track import PairsTrack
from cwpo.experiments.sentiment_track import SentimentTrack


class Track(Protocol):
    name: str

    def recipe_errors(self, recipe) -> list[str]:
        """What the recipe lacks for this track (checked without reading anything)."""

    def input_errors(self, recipe) -> list[str]:
        """Inputs of this track that do not exist (checked without reading them)."""

    def data(self, runner) -> Artifact:
        """Run the data stages of ``runner``'s grid point; set ``runner.files`` (labeled,
        unlabeled, test or None, optionally all_human) and ``runner.prompts`` (evaluation prompts)."""

    def sft(self, runner, data: Artifact, weak: Artifact | None) -> Artifact:
        """The SFT model of the grid point (the policy's start and reference)."""

    def evaluate_defaults(self, recipe) -> dict:
        """Evaluation settings this track implies (a recipe's ``evaluate`` section overrides them)."""


TRACKS: dict[str, Track] = {t.name: t for t in (PairsTrack(), SentimentTrack())}
