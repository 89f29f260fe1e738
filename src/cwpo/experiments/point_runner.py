"""The stages of one grid point of a recipe (:class:`PointRunner`): data, annotators, SFT, align,
evaluate, each through the stage cache (:func:`cwpo.experiments.cache.run_stage`). The data and SFT
stages, and the evaluation defaults, come from the recipe's track (:mod:`cwpo.experiments.tracks`);
:mod:`cwpo.experiments.pipeline` runs the points of a recipe."""

from __future__ import annotations

import shutil
from pathlib import Path

from cwpo.console import training_bar
from cwpo.data.schema import read_pairs, to_labeled, write_pairs
from cwpo.experiments.cache import Artifact, run_stage
from cwpo.experiments.launched import stage_call
from cwpo.experiments.methods import Method
from cwpo.experiments.recipe import Recipe
from cwpo.experiments.tracks import TRACKS
from cwpo.runtime import bf16_is_faster, parse_bf16

# settings that change how a stage is watched or run, never what it computes
UNKEYED = ("report_to", "activation_checkpointing")


def decided_precision(section: dict) -> dict:
    """A training section with ``bf16: auto`` replaced by what this machine decides, for cache keys:
    the stage is keyed by what it computes (and a recipe saying ``true`` shares it where bf16 wins);
    the :data:`UNKEYED` settings (e.g. ``report_to``) are left out."""

    out = {k: v for k, v in section.items() if k not in UNKEYED}
    if "bf16" in out and parse_bf16(out["bf16"]) == "auto":
        out["bf16"] = bf16_is_faster()
    if out.get("dtype") == "auto":  # annotate: the scoring weights' dtype
        out["dtype"] = "bfloat16" if bf16_is_faster() else "float32"
    return out


def _move_model(src: Path, dst: Path) -> None:
    """Move a finished model folder out of a stage's scratch space, without its checkpoints."""
    shutil.rmtree(src / "checkpoints", ignore_errors=True)
    shutil.move(str(src), str(dst))


class PointRunner:
    """The stages of one grid point. Stages whose configs match are shared through the cache."""

    def __init__(self, root: Path, point: dict, recipe: Recipe, progress: bool = True):
        self.root, self.point, self.r, self.progress = root, point, recipe, progress
        self.seed = point["seed"]
        self.track = TRACKS[recipe.track]
        self.prompts_art: Artifact | None = None  # set by a track whose evaluation prompts are a stage

    # ---- data ---------------------------------------------------------------------------
    def data(self) -> Artifact:
        return self.track.data(self)

    # ---- annotators -----------------------------------------------------------------------
    def annotator(self, data: Artifact, section: str = "annotator") -> tuple[Artifact, Artifact]:
        from cwpo.annotator.score import AnnotateConfig, annotate
        from cwpo.annotator.train import TrainAnnotatorConfig, train_annotator

        values = {**getattr(self.r, section), "seed": self.seed}
        if section == "wsdpo_annotator":  # Tao & Li: the weak causal LM trained with SFT + DPO on D_l
            values["objective"] = "dpo"
            values.setdefault("backbone", "smollm2-135m-instruct")
        test = self.files.get("test")

        def train_fn(out: Path, work: Path) -> dict:
            cfg = TrainAnnotatorConfig(
                **{
                    **values,
                    "train": str(self.files["labeled"]),
                    "eval": str(test) if test else None,
                    "output": str(out / "annotator"),
                    "progress": self.progress,
                }
            )
            return stage_call(train_annotator, cfg, work=work)

        short = "annotator" if section == "annotator" else "wsdpo-annotator"
        ann = run_stage(self.root, section, decided_precision(values), {"data": data}, train_fn, label=short)
        ann_values = dict(self.r.annotate)
        AnnotateConfig(**{**ann_values, "annotator": "x", "input": "x", "output": "x"})

        def annotate_fn(out: Path, work: Path) -> dict:
            # written in the persistent work folder so that an interrupted annotation resumes its chunks
            stats = stage_call(
                annotate,
                ann.path / "annotator",
                self.files["unlabeled"],
                work / "annotated.jsonl",
                work=work,
                **{**ann_values, "progress": self.progress},
            )
            shutil.move(str(work / "annotated.jsonl"), str(out / "annotated.jsonl"))
            return stats

        labels = run_stage(
            self.root,
            f"annotate-{section}",
            decided_precision(ann_values),
            {"annotator": ann, "data": data},
            annotate_fn,
            label="annotate" if section == "annotator" else "annotate[wsdpo]",
            what=f"label D_u with the {short} + confidence",
        )
        return ann, labels

    # ---- strong model -----------------------------------------------------------------------
    def sft_key(self, seed: int | None = None) -> dict:
        seed = self.seed if seed is None else seed
        return {"sft": decided_precision(self.r.sft), "model": self.r.strong_model, "seed": seed}

    def train_sft(self, train_file: Path, out: Path, work: Path, seed: int | None = None) -> dict:
        from cwpo.align.sft import SFTConfig, sft

        model_dir = work / "model"
        cfg = SFTConfig(
            **{
                **self.r.sft,
                "train": str(train_file),
                "model": self.r.strong_model,
                "output": str(model_dir),
                "seed": self.seed if seed is None else seed,
                # continue the checkpoints of an interrupted run; a model finished before the stage
                # was interrupted is replaced (both are cwpo's own, in the stage's scratch)
                "resume": True,
                "overwrite": True,
            }
        )
        metrics = stage_call(sft, cfg, work=work, callbacks=[training_bar("sft", self.progress)])
        _move_model(model_dir, out / "model")
        return metrics

    def sft(self, data: Artifact, weak: Artifact | None) -> Artifact:
        return self.track.sft(self, data, weak)

    def _train_file(self, method: Method, labels: dict[str, Artifact], work: Path) -> Path:
        if method.labels == "human":
            return self.files["unlabeled"]  # unlabeled + human_label: align converts to the human pairs
        if method.labels == "human_labeled":
            return self.files["labeled"]
        if method.labels == "human_all":
            if self.files.get("all_human"):
                return self.files["all_human"]

            rows = read_pairs(self.files["labeled"]) + to_labeled(read_pairs(self.files["unlabeled"]))
            write_pairs(work / "all_human.jsonl", rows)
            return work / "all_human.jsonl"
        source = labels["weak"] if method.labels == "weak" else labels["weak_dpo"]
        return source.path / "annotated.jsonl"

    def align(
        self, name: str, method: Method, sft: Artifact, data: Artifact, labels: dict[str, Artifact]
    ) -> Artifact:
        from cwpo.align.align import AlignConfig, align

        values = {**self.r.align, "loss": method.loss, "weighting": method.weighting, "seed": self.seed}
        key_values = {
            **decided_precision(self.r.align),
            "loss": method.loss,
            "weighting": method.weighting,
            "seed": self.seed,
        }
        label_art = {"weak": labels.get("weak"), "weak_dpo": labels.get("weak_dpo")}.get(
            method.labels
        ) or data

        def fn(out: Path, work: Path) -> dict:
            model_dir = work / "model"
            train = self._train_file(method, labels, work)
            cfg = AlignConfig(
                **{
                    **values,
                    "train": str(train),
                    "policy": str(sft.path / "model"),
                    "output": str(model_dir),
                    "resume": True,  # as for sft: continue an interrupted run, replace a finished one
                    "overwrite": True,
                }
            )
            bar = training_bar(f"align[{name}]", self.progress)
            metrics = stage_call(align, cfg, work=work, callbacks=[bar])
            _move_model(model_dir, out / "model")
            return metrics

        return run_stage(
            self.root,
            "align",
            {"align": key_values, "labels": method.labels},
            {"sft": sft, "labels": label_art},
            fn,
            label=f"align[{name}]",
            what=_method_line(method),
        )

    def evaluate_values(self) -> dict:
        """The recipe's ``evaluate`` section and the seed, then what the track implies."""
        values = {**self.r.evaluate, "seed": self.seed}
        for key, value in self.track.evaluate_defaults(self.r).items():
            values.setdefault(key, value)
        return values

    def evaluate(self, name: str, policy: Artifact, sft: Artifact) -> Artifact:
        from cwpo.evaluate.evaluate import EvalConfig, evaluate

        values = self.evaluate_values()
        pairs = self.files.get("test")
        prompts = self.prompts

        def fn(out: Path, work: Path) -> dict:
            cfg = EvalConfig(
                **{
                    **values,
                    "policy": str(policy.path / "model"),
                    "reference": str(sft.path / "model"),
                    "prompts": str(prompts),
                    "pairs": str(pairs) if pairs else None,
                    "output": str(out / "eval"),
                }
            )
            return stage_call(evaluate, cfg, work=work, progress=self.progress)

        # how long to wait for a judge does not change a verdict: not part of the cache key
        key = {k: v for k, v in values.items() if k not in ("judge_timeout", "judge_retries")}
        return run_stage(
            self.root,
            "evaluate",
            {"evaluate": key},
            # v2 sentiment: the fixed prompts are their own stage, so they key the evaluation too
            {"policy": policy, "sft": sft, **({"prompts": self.prompts_art} if self.prompts_art else {})},
            fn,
            label=f"evaluate[{name}]",
            what=f"evaluate {name} against the SFT model",
        )


def _method_line(method: Method) -> str:
    """``DPO on weak labels, weights: confidence``: what an align stage does."""
    line = f"{method.loss.upper()} on {method.labels.replace('_', ' ')} labels"
    return line if method.weighting == "none" else f"{line}, weights: {method.weighting}"
