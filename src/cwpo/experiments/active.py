"""Active labelling in rounds: select -> label -> train the annotator -> annotate, resumable.

The pool's rows carry the labels the humans *would* give (``human_label``: "a"/"b"; on the
sentiment track the simulated noise-free or crowd humans): a round reveals them only for the pairs
it selects. ``budgets`` are cumulative label counts: round 0 labels ``budgets[0]`` pairs chosen at
random; round r trains the weak annotator on the ``budgets[r-1]`` labels so far, labels the rest
of the pool with it, and selects pairs up to ``budgets[r]`` with the strategy
(:mod:`cwpo.annotator.select`); a final round trains on all ``budgets[-1]`` labels.

Each trained annotator is scored on the rest of the pool (what alignment would train on: it
differs between strategies, since each removes other pairs) and, with ``eval_pairs``, on a fixed
set of pairs no strategy can select (the fair comparison of strategies at equal budgets).

Every round lives in ``workdir/round-NN/`` and ends by writing ``round.json`` atomically; a run
killed at any point resumes at the first round without it, and its stages (training, annotation,
selection) are seeded, so the resumed run's choices are those of an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cwpo.annotator.config import TrainAnnotatorConfig
from cwpo.annotator.score import annotate
from cwpo.annotator.select import row_id, select
from cwpo.annotator.train import train_annotator
from cwpo.atomic_files import read_json, write_json, write_jsonl
from cwpo.data.schema import HUMAN_LABEL, read_pairs
from cwpo.errors import ConfigError, DataError
from cwpo.hashing import sha256_path


@dataclass
class ActiveConfig:
    pool: str
    workdir: str
    budgets: list[int] = field(default_factory=lambda: [50, 100, 150])
    strategy: str = "uncertainty"
    eval_pairs: str | None = None
    seed: int = 0
    pool_factor: float = 3.0
    annotator: dict = field(default_factory=dict)  # TrainAnnotatorConfig fields (backbone, epochs, ...)
    annotate_batch_size: int = 32
    # every annotator trains for at least this many optimizer steps (more epochs on few labels), the
    # same rule for every strategy: a handful of steps on the first labels leaves it at chance
    min_steps: int = 0

    def __post_init__(self):
        b = list(self.budgets)
        if not b or b[0] < 2 or any(y <= x for x, y in zip(b, b[1:], strict=False)):
            raise ConfigError(f"budgets must be increasing label counts starting at >= 2, got {b}")


def _labeled_view(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        a_wins = r[HUMAN_LABEL] == "a"
        chosen, rejected = (
            (r["response_a"], r["response_b"]) if a_wins else (r["response_b"], r["response_a"])
        )
        out.append({"prompt": r["prompt"], "chosen": chosen, "rejected": rejected})
    return out


def _unlabeled(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != HUMAN_LABEL} for r in rows]


def _train_and_annotate(
    cfg: ActiveConfig, labeled: list[dict], rest: list[dict], folder: Path
) -> tuple[list[dict], list[dict] | None]:
    """Train on ``labeled``; return the annotations of ``rest`` and of the fixed eval pairs."""
    write_jsonl(folder / "labeled.jsonl", _labeled_view(labeled))
    write_jsonl(folder / "rest.jsonl", _unlabeled(rest))
    ann = folder / "annotator"  # written atomically: a killed round leaves none, or a complete one
    train_cfg = replace(
        TrainAnnotatorConfig(train=str(folder / "labeled.jsonl"), output=str(ann)),
        **{"progress": False, "seed": cfg.seed, "overwrite": True, **cfg.annotator},
    )
    per_epoch = math.ceil(len(labeled) / train_cfg.batch_size)
    if cfg.min_steps and train_cfg.epochs * per_epoch < cfg.min_steps:
        train_cfg = replace(train_cfg, epochs=math.ceil(cfg.min_steps / per_epoch))
    train_annotator(train_cfg)
    kw = {"batch_size": cfg.annotate_batch_size, "progress": False, "overwrite": True}
    annotate(ann, folder / "rest.jsonl", folder / "annotated.jsonl", **kw)
    held = None
    if cfg.eval_pairs:
        write_jsonl(folder / "eval.jsonl", _unlabeled(read_pairs(cfg.eval_pairs)))
        annotate(ann, folder / "eval.jsonl", folder / "eval_annotated.jsonl", **kw)
        held = read_pairs(folder / "eval_annotated.jsonl")
    return read_pairs(folder / "annotated.jsonl"), held


def _agreement(annotated: list[dict], rest: list[dict], per_pair: bool = False) -> dict:
    """The weak labels of the rest of the pool against the humans' (and the gold, where known).
    ``per_pair``: also each pair's gold outcome in ``rest``'s order (1 right, 0 wrong, None a gold tie)."""
    by_id = {row_id(r): r for r in rest}
    human, gold, outcome = [], [], {}
    for a in annotated:
        r = by_id[row_id(a)]
        a_is_chosen = a["chosen"] == r["response_a"]
        human.append(float((r[HUMAN_LABEL] == "a") == a_is_chosen))
        if r.get("gold_a") is not None and r["gold_a"] != r.get("gold_b"):
            gold.append(float((r["gold_a"] > r["gold_b"]) == a_is_chosen))
            outcome[row_id(a)] = int(gold[-1])
    out = {
        "human_agreement": sum(human) / len(human) if human else None,
        "gold_accuracy": sum(gold) / len(gold) if gold else None,
        "n_rest": len(rest),
        "n_gold": len(gold),
    }
    if per_pair:
        out["gold_correct"] = [outcome.get(row_id(r)) for r in rest]
    return out


def _check_same_run(work: Path, cfg: ActiveConfig) -> None:
    """Resume only the run this config describes: its settings and the content of its pool and
    evaluation pairs are kept in ``workdir/config.json``; anything else is refused in one line."""
    mine = {
        **{k: v for k, v in asdict(cfg).items() if k not in ("pool", "workdir", "eval_pairs")},
        "pool_sha256": sha256_path(cfg.pool),
        "eval_sha256": sha256_path(cfg.eval_pairs) if cfg.eval_pairs else None,
    }
    path = work / "config.json"
    if path.exists():
        theirs = read_json(path)
        if theirs != mine:
            diff = sorted(k for k in set(theirs) | set(mine) if theirs.get(k) != mine.get(k))
            raise ConfigError(
                f"{work} holds the rounds of another active-labelling run (differs in {', '.join(diff)}): "
                "choose another workdir"
            )
    elif any(work.glob("round-*/round.json")):
        raise ConfigError(f"{work} holds rounds without their config.json: choose another workdir")
    else:
        write_json(path, mine)


def run_rounds(cfg: ActiveConfig, progress=None) -> dict:
    """Run (or resume) every round; return the per-round history (see the module docstring)."""
    pool = read_pairs(cfg.pool)
    if not pool or any(r.get(HUMAN_LABEL) not in ("a", "b") for r in pool):
        raise DataError(
            f"every pool pair needs a {HUMAN_LABEL} ('a' or 'b'): the labels humans would give", cfg.pool
        )
    ids = [row_id(r) for r in pool]
    if len(set(ids)) != len(ids):
        raise DataError(
            "the pool has duplicate pairs: deduplicate it first (cwpo data reports them)", cfg.pool
        )
    if cfg.budgets[-1] >= len(pool):
        raise ConfigError(
            f"a budget of {cfg.budgets[-1]} labels leaves no unlabelled pair in a pool of {len(pool)}"
        )
    eval_rows = read_pairs(cfg.eval_pairs) if cfg.eval_pairs else None
    if eval_rows is not None and set(ids) & {row_id(r) for r in eval_rows}:
        raise DataError(
            "the eval pairs overlap the pool: they must be pairs no strategy can select", cfg.eval_pairs
        )
    work = Path(cfg.workdir)
    work.mkdir(parents=True, exist_ok=True)
    _check_same_run(work, cfg)
    labeled_idx: list[int] = []
    history = []
    for r in range(len(cfg.budgets) + 1):  # round 0: random start; then train, (select); the last: final
        folder = work / f"round-{r:02d}"
        done = folder / "round.json"
        if done.exists():
            state = read_json(done)
            labeled_idx = state["labeled"]
            history.append(state["metrics"])
            continue
        folder.mkdir(parents=True, exist_ok=True)
        metrics: dict = {"round": r}
        if r == 0:
            labeled_idx = select(pool, cfg.budgets[0], "random", seed=cfg.seed)
            metrics.update(selected_by="random", n_labeled=len(labeled_idx))
        else:
            chosen = set(labeled_idx)
            rest_idx = [i for i in range(len(pool)) if i not in chosen]
            rest = [pool[i] for i in rest_idx]
            annotated, held = _train_and_annotate(cfg, [pool[i] for i in labeled_idx], rest, folder)
            metrics["trained_on"] = len(labeled_idx)
            metrics["rest"] = _agreement(annotated, rest)
            if held is not None:
                metrics["eval"] = _agreement(held, eval_rows, per_pair=True)
            if r < len(cfg.budgets):
                conf = {row_id(a): float(a["confidence"]) for a in annotated}
                picked = select(
                    rest, cfg.budgets[r] - len(labeled_idx), cfg.strategy,
                    confidences=[conf[row_id(x)] for x in rest], seed=cfg.seed + r, pool_factor=cfg.pool_factor,
                )  # fmt: skip
                labeled_idx = labeled_idx + [rest_idx[j] for j in picked]
                metrics.update(selected_by=cfg.strategy, n_labeled=len(labeled_idx))
        write_json(done, {"labeled": labeled_idx, "metrics": metrics})
        history.append(metrics)
        if progress is not None:
            progress(metrics)
    return {"rounds": history, "n_pool": len(pool), "strategy": cfg.strategy, "budgets": list(cfg.budgets)}
