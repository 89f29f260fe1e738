"""The pairs track (:class:`PairsTrack`): real preference pairs (HH-RLHF, a JSONL/CSV/Parquet file,
a hub layout) split into D_l, D_u and test by :func:`cwpo.data.prepare.prepare_data`; the SFT model
is trained on D_l's or the weak labels' chosen responses."""

from __future__ import annotations

from pathlib import Path

from cwpo.data.load import check_source, resolve_source
from cwpo.errors import CWPOError
from cwpo.experiments.cache import Artifact, run_stage
from cwpo.hashing import sha256_path


class PairsTrack:
    """Its data stage sets on the runner ``files`` (labeled, unlabeled, test) and ``prompts`` (test)."""

    name = "pairs"

    def recipe_errors(self, recipe) -> list[str]:
        return [] if recipe.data.get("source") else ["data.source is required for the pairs track"]

    def input_errors(self, recipe) -> list[str]:

        errors = []
        d = recipe.data
        for source in dict.fromkeys([d["source"], *recipe.grid.get("data.source", [])]):
            try:
                check_source(source, d.get("format", "auto"), d.get("subset"), d.get("split", "test"))
            except CWPOError as e:
                errors.append(f"data.source: {e}")
        return errors

    def evaluate_defaults(self, recipe) -> dict:
        return {}

    def data(self, runner) -> Artifact:
        from cwpo.data.prepare import DataConfig, prepare_data

        values = {**runner.r.data, "seed": runner.seed}
        # settings that change nothing stay out of the cache key, so the clean level of every
        # robustness study (no poison, no imbalance) is one shared stage
        if not values.get("poison_frac"):
            values.pop("poison_frac", None)
            values.pop("poison_subset", None)
        if values.get("labeled_mix") is None:
            values.pop("labeled_mix", None)

        src = Path(resolve_source(values["source"])).expanduser()
        content = sha256_path(src) if src.exists() else values["source"]

        def fn(out: Path, work: Path) -> dict:
            return prepare_data(DataConfig(**{**values, "output": str(out / "data")}))

        art = run_stage(runner.root, "data", {"data": values, "content": content}, {}, fn)
        runner.files = {
            "labeled": art.path / "data" / "labeled.jsonl",
            "unlabeled": art.path / "data" / "unlabeled.jsonl",
            "test": art.path / "data" / "test.jsonl",
        }
        runner.prompts = runner.files["test"]
        return art

    def sft(self, runner, data: Artifact, weak: Artifact | None) -> Artifact:
        use_weak = runner.r.sft_data == "weak" and weak is not None
        train = (weak.path / "annotated.jsonl") if use_weak else runner.files["labeled"]

        def fn(out: Path, work: Path) -> dict:
            return runner.train_sft(train, out, work)

        inputs = {"labels": weak} if use_weak else {"data": data}
        return run_stage(runner.root, "sft", {**runner.sft_key(), "sft_data": runner.r.sft_data}, inputs, fn)
