"""Run units of the reward–KL frontier bench: (regime, method, seed, lr) -> one training run with
policy snapshots, each snapshot scored on the validation and the test prompts.

Every step is a stage of the stage cache (``--cache``, outside the repository), so a unit killed at
any point resumes where it stopped; the data stages (SFT model, pool, labels, annotator) are those
of the v2 evidence bench, restored from ``benchmarks/archive/bench`` when the cache lacks them (the
archived SFT stub is trained again, same key). After each finished unit one line per scored
snapshot goes to ``benchmarks/frontier/results/points.jsonl`` (the index
:mod:`benchmarks.frontier.analyze` reads). The run only reads the archive: after a part,
``python -m benchmarks.tracks.stage_archive save --cache <the same cache>`` keeps its stages
(per-prompt rows, labels; no weights) for the next machine and for audit.

    OMP_NUM_THREADS=1 python -m benchmarks.frontier.run --regime noisefree --methods human cw \
        --seeds 0 --lrs 5e-4 [--max-minutes 110] [--plan benchmarks/frontier/plan.yaml]

``--max-minutes``: start no new unit after that long (a part of at most 2 hours); run the same
command again to continue.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import math
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from benchmarks.frontier.train_rows import (
    ROWS_VERSION,
    check_method,
    label_stats,
    needs_annotation,
    read_jsonl,
    train_rows,
)
from benchmarks.result_files import bench_parser
from benchmarks.tracks.archived_stages import restore_stages
from cwpo.atomic_files import write_json, write_jsonl
from cwpo.console import training_bar
from cwpo.errors import CWPOError
from cwpo.evaluate.frontier import point_summary, score_checkpoint
from cwpo.experiments.cache import Artifact, run_stage
from cwpo.experiments.frontier import bt_temperature_for
from cwpo.experiments.point_runner import PointRunner, decided_precision
from cwpo.experiments.recipe import load_recipe
from cwpo.experiments.sentiment_track import sentiment_config
from cwpo.hashing import sha256_path
from cwpo.machine import now_iso

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
POINTS = HERE / "results" / "points.jsonl"
ARCHIVE = REPO / "benchmarks" / "archive" / "bench"
# the per-prompt rows' format (a scoring stage's key): v2 scores the sampled token ids (end of
# sequence included), samples and scores in the plan's dtype, and draws the GRA reference apart
ROWS_FORMAT = "frontier-rows-v2"


def load_plan(path: Path) -> dict:
    plan = yaml.safe_load(path.read_text(encoding="utf-8"))
    for name, spec in plan["methods"].items():
        check_method(name, spec)
    return plan


def snapshot_steps(n_pairs: int, batch: int, checkpoints: list[float]) -> tuple[dict[int, float], int]:
    """Optimizer steps of the snapshots (step -> epochs) and steps per epoch (one process)."""
    per_epoch = math.ceil(n_pairs / batch)
    return {max(1, round(e * per_epoch)): e for e in checkpoints}, per_epoch


def saved_epochs(plan: dict) -> list[float]:
    """The snapshots a training run saves (in epochs): every ``saved_every`` up to the last epoch,
    and every scored checkpoint, so a denser scored grid later re-uses the training run."""
    every, epochs = plan.get("saved_every"), plan["grid"]["epochs"]
    fine = [k * every for k in range(1, int(round(epochs / every)) + 1)] if every else []
    return sorted({*fine, *plan["checkpoints"]})


def align_key(spec, values: dict, saved) -> dict:
    """The key of a method's training run: its settings, its method, the snapshots it saves, and
    the version of its rows' construction where that was fixed (never an old run's stage)."""
    key = {"align": {**values, "weighting": "confidence"}, "method": list(spec), "snapshots": sorted(saved)}
    if spec[0] in ROWS_VERSION:
        key["rows_version"] = ROWS_VERSION[spec[0]]
    return key


def weights_sha256(model_dir: Path) -> str:
    """sha256 over a model folder's weight files (names and bytes), not its configs and timestamps."""
    digest = hashlib.sha256()
    for f in sorted(Path(model_dir).rglob("*.safetensors")):
        digest.update(f.relative_to(model_dir).as_posix().encode() + b"\0" + sha256_path(f).encode())
    return digest.hexdigest()


def regime_recipe(plan: dict, regime: str, seed: int):
    """The recipe of one seed of a regime (its simulated humans), and the regime's settings."""
    recipe = load_recipe(REPO / plan["recipe"])
    spec = dict(plan["regimes"][regime])
    sent = {**recipe.sentiment, "eval_set": "test", "human_flip": spec.get("human_flip", 0.0)}
    sent["human_temperature"] = spec.get("human_temperature", 0.0)
    return dataclasses.replace(recipe, sentiment=sent), spec


class Unit:
    """The data stages of one (regime, seed), shared by its methods and learning rates."""

    def __init__(
        self, plan: dict, regime: str, seed: int, cache: Path, annotation: Path | None = None, tag: str = ""
    ):
        self.plan, self.regime, self.seed, self.cache = plan, regime, seed, cache
        # D_u as another annotator labelled it (an active-labelling round, say), instead of the
        # unit's own: methods that read labels or c train on it and are recorded as ``name@tag``
        self.annotation, self.tag = annotation, tag
        recipe, spec = regime_recipe(plan, regime, seed)
        if "bt_agreement" in spec:  # the BT temperature that gives the target agreement on this pool
            probe = PointRunner(cache, {"seed": seed}, recipe, progress=False)
            probe.data()
            pool = read_jsonl(probe.pairs_art.path / "pairs.jsonl")
            t = bt_temperature_for([r["gold_a"] - r["gold_b"] for r in pool], spec["bt_agreement"])
            recipe = dataclasses.replace(
                recipe, sentiment={**recipe.sentiment, "human_temperature": round(t, 4)}
            )
        self.recipe = recipe
        self.pr = PointRunner(cache, {"seed": seed}, recipe, progress=True)
        self.data = self.pr.data()
        self.sft = self.pr.sft_art
        self.weak: Artifact | None = None  # the annotator's labels, trained when a method needs them
        self.files = {
            "unlabeled": self.pr.files["unlabeled"],
            "pool": self.pr.pairs_art.path / "pairs.jsonl",
            "labeled": self.pr.files["labeled"],
            "all_human": self.pr.files["all_human"],
        }
        self.agreement = self.data.metrics.get("human_gold_agreement")
        cfg = sentiment_config(self.pr.r)
        ev = plan["eval"]
        from cwpo.experiments import sentiment as st

        self.prompts = {
            "val": st.test_prompts(dataclasses.replace(cfg, eval_set="val"), seed)[: ev["n_val_prompts"]],
            "test": st.test_prompts(dataclasses.replace(cfg, eval_set="test"), seed)[: ev["n_test_prompts"]],
        }

    def annotate(self) -> None:
        if self.annotation is not None:
            self.files["annotated"] = self.annotation / "annotated.jsonl"
            if (self.annotation / "labeled.jsonl").exists():  # the human labels that annotator learned from
                self.files["labeled"] = self.annotation / "labeled.jsonl"
            return
        if self.weak is None:
            _, self.weak = self.pr.annotator(self.data, "annotator")
            self.files["annotated"] = self.weak.path / "annotated.jsonl"

    def align(self, name: str, lr: float) -> tuple[Artifact, dict[int, float]]:
        from cwpo.align.align import AlignConfig, align
        from cwpo.align.snapshots import SnapshotCallback

        spec = check_method(name, self.plan["methods"][name])
        if needs_annotation(spec):
            self.annotate()
        rows = train_rows(spec, self.files, self.seed)
        settings = self.recipe.align
        steps, per_epoch = snapshot_steps(len(rows), settings["batch_size"], self.plan["checkpoints"])
        saved, _ = snapshot_steps(len(rows), settings["batch_size"], saved_epochs(self.plan))
        epochs = self.plan["grid"]["epochs"]
        # rDPO at the regime's true flip rate (1 - the simulated humans' agreement with the gold)
        epsilon = round(1 - self.agreement, 4) if spec[2] == "rdpo" else settings.get("epsilon", 0.1)
        values = {
            **settings,
            "lr": lr,
            "epochs": epochs,
            "loss": spec[2],
            "epsilon": epsilon,
            "seed": self.seed,
        }
        key = align_key(spec, decided_precision(values), saved)
        if self.annotation is not None and needs_annotation(spec):  # its content, not its path
            key["annotation"] = sha256_path(self.files["annotated"])
            if spec[0] == "labeled_and_weak":
                key["labeled"] = sha256_path(self.files["labeled"])
        sft_model = self.sft.path / "model"

        def fn(out: Path, work: Path) -> dict:
            write_jsonl(work / "train.jsonl", rows)
            weighting = "none" if all(r["confidence"] == 1.0 for r in rows) else "confidence"
            model_dir = work / "model"
            cfg = AlignConfig(
                **{
                    **values,
                    "weighting": weighting,
                    "train": str(work / "train.jsonl"),
                    "policy": str(sft_model),
                    "output": str(model_dir),
                    "resume": True,  # continue a killed run's checkpoints (none: a fresh start)
                    "overwrite": True,  # a model finished in the stage's scratch before a kill is cwpo's
                }
            )
            callbacks = [
                training_bar(f"align[{name}]", True),
                SnapshotCallback(work / "snapshots", saved, str(sft_model)),
            ]
            cpu = time.process_time()
            metrics = align(cfg, callbacks=callbacks)
            metrics["cpu_seconds"] = round(time.process_time() - cpu, 1)  # of this process, all threads
            shutil.move(str(work / "snapshots"), str(out / "snapshots"))
            shutil.copy(model_dir / "metrics.json", out / "metrics.json")
            return {**metrics, "n_pairs": len(rows), "steps_per_epoch": per_epoch, "epsilon": epsilon}

        art = run_stage(
            self.cache,
            "frontier-align",
            key,
            {
                "sft": self.sft,
                "labels": self.data,
                "pool": self.pr.pairs_art,
                **({"weak": self.weak} if needs_annotation(spec) and self.weak else {}),
            },
            fn,
            label=f"align[{self.method_name(name)}, lr={lr}]",
            what=f"{spec[2].upper()} on {spec[0]} labels, weights {spec[1]}, {epochs} epochs, snapshots",
        )
        return art, steps

    def method_name(self, name: str) -> str:
        return f"{name}@{self.tag}" if self.tag else name

    def score(self, label: str, policy: Path, policy_art: Artifact | None, step: int, split: str) -> Artifact:
        ev = self.plan["eval"]
        prompts = self.prompts[split]
        config = {
            "format": ROWS_FORMAT,
            "eval": ev,
            "split": split,
            "step": step,
            "gold": self.recipe.sentiment["gold"],
            "seed": self.seed,
            "prompt_ids": [p["id"] for p in prompts],
        }

        def fn(out: Path, work: Path) -> dict:
            cpu = time.process_time()
            rows = score_checkpoint(
                str(policy),
                str(self.sft.path / "model"),
                prompts,
                gold=self.recipe.sentiment["gold"],
                second_gold=ev["second_gold"],
                n_samples=ev["n_samples"],
                seed=self.seed,
                max_new_tokens=ev["max_new_tokens"],
                temperature=ev["temperature"],
                batch_size=ev["batch_size"],
                dtype=ev["dtype"],
                attn_implementation=ev["attn_implementation"],
                cache_dir=self.cache / "frontier-cache",
                progress=True,
            )
            write_jsonl(out / "rows.jsonl", rows)
            summary = point_summary(rows)
            write_json(out / "summary.json", summary)
            # the reference these rows were scored against (its weights only): analyze refuses to mix two
            sft_sha = weights_sha256(self.sft.path / "model")
            return {**summary, "sft_sha": sft_sha, "cpu_seconds": round(time.process_time() - cpu, 1)}

        inputs = {"sft": self.sft, **({"policy": policy_art} if policy_art else {})}
        return run_stage(
            self.cache, "frontier-eval", config, inputs, fn, label=f"score[{label}, step {step}, {split}]",
            what="reward, GRA, KL, second scorer, fluency",
        )  # fmt: skip


def run_unit(u: Unit, name: str, lr: float, splits: list[str]) -> list[dict]:
    art, steps = u.align(name, lr)
    out = []
    points = [(0, 0.0, u.sft.path / "model", None)] + [
        (s, e, art.path / "snapshots" / f"step-{s}", art) for s, e in sorted(steps.items())
    ]
    for step, epochs, policy, policy_art in points:
        for split in splits:
            ev = u.score(f"{u.method_name(name)}, lr={lr}", policy, policy_art, step, split)
            out.append(
                {
                    "regime": u.regime,
                    "method": u.method_name(name),
                    "seed": u.seed,
                    "lr": lr,
                    "step": step,
                    "epochs": epochs,
                    "split": split,
                    "stage": ev.path.name,
                    "align_stage": art.path.name,
                    "human_gold_agreement": u.agreement,
                    "human_temperature": u.recipe.sentiment["human_temperature"],
                    **ev.metrics,
                }
            )
    return out


@contextmanager
def results_lock(results: Path):
    """Two workers of a part (one per core) update the same result files: one at a time."""
    results.mkdir(parents=True, exist_ok=True)
    with open(results / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_label_stats(unit: Unit, results: Path) -> None:
    """corr(c, |gold gap|), corr(c, label correct) and the ESS of c, per regime and seed."""
    path = results / "label_stats.json"
    entry = {
        **label_stats(unit.files),
        "human_gold_agreement": unit.agreement,
        "human_temperature": unit.recipe.sentiment["human_temperature"],
    }
    with results_lock(results):
        stats = json.loads(path.read_text()) if path.exists() else {}
        stats["/".join([unit.regime, str(unit.seed), *([unit.tag] if unit.tag else [])])] = entry
        write_json(path, stats)


def record(points: list[dict], results: Path) -> None:
    """Add (or replace) the index lines of these points in ``results/points.jsonl``. The lines of
    another training run of the same (regime, method, seed, lr), an earlier plan's, go too. A point
    whose scoring stage is already indexed keeps its first line (a unit re-run from the cache would
    record its time as 0)."""
    key = ("regime", "method", "seed", "lr", "step", "split")
    run = key[:4]
    index = results / POINTS.name
    with results_lock(results):
        old = read_jsonl(index) if index.exists() else []
        new = {tuple(p[k] for k in key): p for p in points}
        for p in old:
            same = new.get(tuple(p[k] for k in key))
            if same is not None and same.get("stage") is not None and same.get("stage") == p.get("stage"):
                new[tuple(p[k] for k in key)] = p
        runs = {tuple(p[k] for k in run): p["align_stage"] for p in points}
        kept = [
            p
            for p in old
            if tuple(p[k] for k in key) not in new
            and runs.get(tuple(p[k] for k in run), p["align_stage"]) == p["align_stage"]
        ]
        write_jsonl(index, kept + list(new.values()))


def build_parser():
    ap = bench_parser(__doc__)
    ap.add_argument("--plan", type=Path, default=HERE / "plan.yaml")
    ap.add_argument("--regime", required=True)
    ap.add_argument("--methods", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, required=True)
    ap.add_argument("--lrs", nargs="+", type=float, required=True)
    ap.add_argument("--splits", nargs="+", default=["val", "test"], choices=["val", "test"])
    ap.add_argument("--cache", type=Path, default=REPO / "runs" / "bench" / "cache")
    ap.add_argument("--archive", default=str(ARCHIVE), help="the stage archive ('': none)")
    ap.add_argument("--results", type=Path, default=POINTS.parent, help="points.jsonl, label_stats.json")
    ap.add_argument("--max-minutes", type=float, default=110.0)
    ap.add_argument("--checkpoints", nargs="+", type=float, help="override the plan's (epochs)")
    ap.add_argument("--epochs", type=float, help="override the plan's last checkpoint (epochs)")
    ap.add_argument("--n-test-prompts", type=int, help="override the plan's (a pilot)")
    ap.add_argument("--n-val-prompts", type=int, help="override the plan's (a pilot)")
    ap.add_argument(
        "--annotation",
        type=Path,
        help="a folder with annotated.jsonl: D_u labelled by another annotator (an active-labelling "
        "round), used instead of the unit's own; needs --tag",
    )
    ap.add_argument("--tag", default="", help="recorded methods are NAME@TAG (with --annotation)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.annotation is not None and not (args.tag and (args.annotation / "annotated.jsonl").is_file()):
        print(
            f"error: --annotation {args.annotation}: needs --tag and a file annotated.jsonl in it",
            file=sys.stderr,
        )
        return 2
    try:
        plan = load_plan(args.plan)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: plan {args.plan}: {e}", file=sys.stderr)
        return 2
    for flag, value in (("regime", [args.regime]), ("methods", args.methods)):
        table = plan["regimes"] if flag == "regime" else plan["methods"]
        unknown = [v for v in value if v not in table]
        if unknown:
            print(f"error: --{flag}: unknown {unknown}; the plan has {sorted(table)}", file=sys.stderr)
            return 2
    if args.checkpoints:
        plan["checkpoints"] = args.checkpoints
    if args.epochs:
        plan["grid"]["epochs"] = args.epochs
    if args.n_test_prompts:
        plan["eval"]["n_test_prompts"] = args.n_test_prompts
    if args.n_val_prompts:
        plan["eval"]["n_val_prompts"] = args.n_val_prompts
    try:
        return run_part(args, plan)
    except CWPOError as e:  # a stub without weights, a missing file: one line, nothing lost
        print(f"error: {e}", file=sys.stderr)
        return 2


def run_part(args, plan: dict) -> int:
    """The units of one part, in order, stopping before a new unit after ``--max-minutes``."""
    args.cache.mkdir(parents=True, exist_ok=True)
    archive = Path(args.archive) if args.archive else None
    if archive:
        restore_stages(archive, args.cache, rebuild=("sft",))  # its stub has no weights: ~3 min
    start = time.time()
    for seed in args.seeds:
        unit = Unit(plan, args.regime, seed, args.cache, args.annotation, args.tag)
        for name in args.methods:
            for lr in args.lrs:
                if (time.time() - start) / 60 > args.max_minutes:
                    print(f"stopped after {args.max_minutes} minutes; run the same command again to continue")
                    return 0
                t = time.time()
                points = run_unit(unit, name, lr, args.splits)
                if "annotated" in unit.files:  # its own annotator ran, or --annotation
                    write_label_stats(unit, args.results)
                stamp = {"unit_seconds": round(time.time() - t, 1), "recorded": now_iso()}
                record([{**p, **stamp} for p in points], args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
