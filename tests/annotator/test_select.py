"""Active labelling: the selection strategies, ``cwpo select``, and rounds that resume after a kill."""

from __future__ import annotations

import json
import random

import pytest

from cwpo.annotator import select as select_module
from cwpo.annotator.select import pair_id, select, word_vectors
from cwpo.atomic_files import write_jsonl
from cwpo.cli.main import main
from cwpo.errors import ConfigError, DataError
from cwpo.experiments import active
from cwpo.experiments.active import ActiveConfig, run_rounds


def _rows(n: int) -> list[dict]:
    topics = ["cats purr softly", "rockets reach orbit", "bread needs yeast", "rivers meet the sea"]
    return [
        {"prompt": f"{topics[i % 4]} {i}", "response_a": f"yes {topics[i % 4]}", "response_b": f"no {i}"}
        for i in range(n)
    ]


def test_strategies_pick_what_they_say():
    rows = _rows(12)
    conf = [0.9, 0.1, 0.5, 0.05, 0.7, 0.3, 0.2, 0.95, 0.6, 0.4, 0.8, 0.15]
    assert select(rows, 3, "uncertainty", confidences=conf) == [3, 1, 11]  # lowest confidence first
    r1, r2 = select(rows, 4, "random", seed=1), select(rows, 4, "random", seed=1)
    assert r1 == r2 and len(set(r1)) == 4 and select(rows, 4, "random", seed=2) != r1
    # uncertain_diverse: among the 6 least confident (3, 1, 11, 6, 5, 9), farthest-first from pair 3:
    # its topic (rivers, i % 4 == 3) is not picked again while other topics are left
    picked = select(rows, 3, "uncertain_diverse", confidences=conf, pool_factor=2)
    assert picked[0] == 3 and set(picked) <= {3, 1, 11, 6, 5, 9}
    assert len({rows[i]["prompt"].split()[0] for i in picked}) == 3
    assert select(rows, 3, "uncertainty", confidences=conf) != picked
    assert select(rows, 50, "uncertainty", confidences=conf) == sorted(range(12), key=lambda i: conf[i])


def test_bad_selection_requests_are_refused():
    rows = _rows(4)
    with pytest.raises(ConfigError, match="needs the current annotator"):
        select(rows, 2, "uncertainty")
    with pytest.raises(ConfigError, match="unknown selection strategy"):
        select(rows, 2, "entropy", confidences=[0.1] * 4)
    with pytest.raises(ConfigError, match="NaN"):
        select(rows, 2, "uncertainty", confidences=[0.1, float("nan"), 0.2, 0.3])


def test_pair_id_ignores_response_order_and_word_vectors_are_unit():
    assert pair_id("p", "x", "y") == pair_id("p", "y", "x") != pair_id("q", "x", "y")
    v = word_vectors(_rows(3))
    assert v.shape[0] == 3 and abs(float((v**2).sum(axis=1)[0]) - 1.0) < 1e-6


def test_cwpo_select_excludes_labelled_pairs(tmp_path, capsys):
    rows = _rows(10)
    write_jsonl(tmp_path / "pool.jsonl", rows)
    annotated = [
        {"prompt": r["prompt"], "chosen": r["response_b"], "rejected": r["response_a"], "margin": 1.0,
         "confidence": c} for r, c in zip(rows, [0.5, 0.1, 0.2, 0.9, 0.3, 0.8, 0.05, 0.7, 0.6, 0.4], strict=True)
    ]  # fmt: skip
    write_jsonl(tmp_path / "weak.jsonl", annotated)
    write_jsonl(tmp_path / "done.jsonl", [{"prompt": rows[6]["prompt"], "chosen": rows[6]["response_a"],
                                          "rejected": rows[6]["response_b"]}])  # fmt: skip
    args = ["select", "--pool", str(tmp_path / "pool.jsonl"), "--annotated", str(tmp_path / "weak.jsonl"),
            "--labeled", str(tmp_path / "done.jsonl"), "--budget", "3", "--output", str(tmp_path / "next.jsonl")]  # fmt: skip
    assert main(args) == 0
    picked = [json.loads(x) for x in (tmp_path / "next.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in picked] == [rows[i]["prompt"] for i in (1, 2, 4)]  # 6 is labelled already
    assert [r["annotator_confidence"] for r in picked] == [0.1, 0.2, 0.3]
    assert "3 of 9 unlabelled pairs chosen (uncertainty)" in capsys.readouterr().out
    # a strategy that needs confidences without --annotated: one line, exit 2, nothing written
    assert main(["select", "--pool", str(tmp_path / "pool.jsonl"), "--budget", "2", "--output",
                 str(tmp_path / "n2.jsonl")]) == 2  # fmt: skip
    assert "needs --annotated" in capsys.readouterr().err and not (tmp_path / "n2.jsonl").exists()


def _pool(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        good, bad = f"a kind helpful answer number {i}", f"go away {i}"
        a_first = rng.random() < 0.5
        rows.append({
            "prompt": f"question {i} about {rng.choice(['cats', 'rockets', 'bread'])}",
            "response_a": good if a_first else bad, "response_b": bad if a_first else good,
            "human_label": "a" if a_first else "b", "gold_a": 1.0 if a_first else 0.0, "gold_b": 0.0 if a_first else 1.0,
        })  # fmt: skip
    return rows


def test_rounds_resume_after_a_kill_exactly(tmp_path, tiny_encoder_dir, monkeypatch):
    pool = _pool(52)
    write_jsonl(tmp_path / "pool.jsonl", pool[:40])
    write_jsonl(tmp_path / "eval.jsonl", pool[40:])
    ann = {"backbone": tiny_encoder_dir, "epochs": 1, "batch_size": 8, "max_length": 48}
    cfg = dict(pool=str(tmp_path / "pool.jsonl"), eval_pairs=str(tmp_path / "eval.jsonl"), strategy="uncertainty",
               budgets=[8, 14, 20], annotator=ann)  # fmt: skip
    full = run_rounds(ActiveConfig(workdir=str(tmp_path / "full"), **cfg))
    assert [m["round"] for m in full["rounds"]] == [0, 1, 2, 3]
    assert [m.get("trained_on") for m in full["rounds"]] == [None, 8, 14, 20]
    assert [m.get("n_labeled") for m in full["rounds"]] == [8, 14, 20, None]
    final = full["rounds"][-1]
    assert final["rest"]["n_rest"] == 20 and final["eval"]["n_rest"] == 12
    assert final["eval"]["gold_accuracy"] is not None

    calls = {"n": 0}
    real = active.annotate

    def killed(*args, **kwargs):  # the process dies in round 2, after its annotator was trained
        calls["n"] += 1
        if calls["n"] == 3:  # round 1 annotated the rest and the eval pairs; round 2's first call
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(active, "annotate", killed)
    with pytest.raises(KeyboardInterrupt):
        run_rounds(ActiveConfig(workdir=str(tmp_path / "resumed"), **cfg))
    assert (tmp_path / "resumed" / "round-01" / "round.json").exists()
    assert (tmp_path / "resumed" / "round-02" / "annotator" / "manifest.json").exists()
    assert not (tmp_path / "resumed" / "round-02" / "round.json").exists()
    monkeypatch.setattr(active, "annotate", real)
    resumed = run_rounds(ActiveConfig(workdir=str(tmp_path / "resumed"), **cfg))
    assert resumed["rounds"] == full["rounds"]
    labeled = [
        json.loads((tmp_path / d / "round-03" / "round.json").read_text())["labeled"]
        for d in ("full", "resumed")
    ]
    assert labeled[0] == labeled[1] and len(set(labeled[0])) == 20
    # each round labels the pairs its annotator was least sure of, among those not labelled yet
    for r in (1, 2):
        folder = tmp_path / "full" / f"round-{r:02d}"
        before = json.loads((tmp_path / "full" / f"round-{r - 1:02d}" / "round.json").read_text())["labeled"]
        after = json.loads((folder / "round.json").read_text())["labeled"]
        assert after[: len(before)] == before and not set(before) & set(after[len(before) :])
        conf = {pair_id(a["prompt"], a["chosen"], a["rejected"]): a["confidence"]
                for a in map(json.loads, (folder / "annotated.jsonl").read_text().splitlines())}  # fmt: skip
        new = {
            pair_id(pool[i]["prompt"], pool[i]["response_a"], pool[i]["response_b"])
            for i in after[len(before) :]
        }
        assert max(conf[k] for k in new) <= min(c for k, c in conf.items() if k not in new)


def test_rounds_need_labels_and_room(tmp_path):
    rows = _pool(10)
    write_jsonl(tmp_path / "pool.jsonl", rows)
    with pytest.raises(ConfigError, match="leaves no unlabelled pair"):
        run_rounds(
            ActiveConfig(pool=str(tmp_path / "pool.jsonl"), workdir=str(tmp_path / "w"), budgets=[4, 10])
        )
    with pytest.raises(ConfigError, match="increasing"):
        ActiveConfig(pool="p", workdir="w", budgets=[4, 4])
    write_jsonl(tmp_path / "eval.jsonl", rows[:2])
    with pytest.raises(DataError, match="overlap"):
        run_rounds(ActiveConfig(pool=str(tmp_path / "pool.jsonl"), workdir=str(tmp_path / "w"), budgets=[2, 4],
                                eval_pairs=str(tmp_path / "eval.jsonl")))  # fmt: skip
    assert select_module.STRATEGIES.keys() == {"random", "uncertainty", "uncertain_diverse"}


def test_agreement_scores_weak_labels_against_humans_and_gold():
    rest = [
        {
            "prompt": "p1",
            "response_a": "x",
            "response_b": "y",
            "human_label": "a",
            "gold_a": 2.0,
            "gold_b": 1.0,
        },
        {
            "prompt": "p2",
            "response_a": "x",
            "response_b": "y",
            "human_label": "a",
            "gold_a": 0.0,
            "gold_b": 1.0,
        },
        {
            "prompt": "p3",
            "response_a": "x",
            "response_b": "y",
            "human_label": "b",
            "gold_a": 1.0,
            "gold_b": 1.0,
        },
    ]
    weak = [{"prompt": "p1", "chosen": "x", "rejected": "y"}, {"prompt": "p2", "chosen": "y", "rejected": "x"},
            {"prompt": "p3", "chosen": "x", "rejected": "y"}]  # fmt: skip
    # humans: right, wrong, wrong; gold: right, right (the gold tie of p3 is not scored)
    assert active._agreement(weak, rest) == {
        "human_agreement": pytest.approx(1 / 3), "gold_accuracy": 1.0, "n_rest": 3, "n_gold": 2,
    }  # fmt: skip


def test_cwpo_select_bad_input_is_one_line(tmp_path, capsys):
    rows = _rows(4)
    write_jsonl(tmp_path / "pool.jsonl", rows)
    out = tmp_path / "next.jsonl"

    def run(*extra, pool="pool.jsonl"):
        args = ["select", "--pool", str(tmp_path / pool), "--budget", "2", "--output", str(out), *extra]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        return err

    def annotated(name, rows_):
        write_jsonl(tmp_path / name, rows_)
        return ["--annotated", str(tmp_path / name)]

    weak = [{"prompt": r["prompt"], "chosen": r["response_a"], "rejected": r["response_b"], "margin": 1.0,
             "confidence": 0.5} for r in rows]  # fmt: skip
    assert "no confidence column" in run(*annotated("a1.jsonl", [{k: v for k, v in w.items() if k != "confidence"}
                                                                  for w in weak]))  # fmt: skip
    assert "not a number" in run(*annotated("a2.jsonl", [{**w, "confidence": "high"} for w in weak]))
    assert "not in the annotated file" in run(*annotated("a3.jsonl", weak[:3]))
    (tmp_path / "empty.jsonl").write_text("")
    assert "empty.jsonl" in run("--strategy", "random", pool="empty.jsonl")
    assert "missing.jsonl" in run("--strategy", "random", pool="missing.jsonl")
    write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p", "text": "x"}])
    assert "bad.jsonl" in run("--strategy", "random", pool="bad.jsonl")
    assert "budget" in run("--strategy", "random", "--budget", "0")
    assert not out.exists()
    # an --output (or the statistics beside it) that cwpo did not write is never replaced
    out.write_text("mine\n")
    assert "next.jsonl" in run("--strategy", "random")
    assert out.read_text() == "mine\n"
    out.unlink()
    (tmp_path / "next.jsonl.stats.json").write_text("{}")
    assert "stats.json" in run("--strategy", "random")
    assert not out.exists() and (tmp_path / "next.jsonl.stats.json").read_text() == "{}"


def test_random_selection_with_a_partly_annotated_pool_writes_valid_json(tmp_path):
    rows = _rows(6)
    write_jsonl(tmp_path / "pool.jsonl", rows)
    write_jsonl(tmp_path / "weak.jsonl", [{"prompt": r["prompt"], "chosen": r["response_a"], "rejected": r["response_b"],
                                           "margin": 1.0, "confidence": 0.25} for r in rows[:2]])  # fmt: skip
    args = ["select", "--pool", str(tmp_path / "pool.jsonl"), "--annotated", str(tmp_path / "weak.jsonl"),
            "--strategy", "random", "--budget", "6", "--output", str(tmp_path / "next.jsonl")]  # fmt: skip
    assert main(args) == 0
    text = (tmp_path / "next.jsonl").read_text() + (tmp_path / "next.jsonl.stats.json").read_text()
    assert "NaN" not in text
    picked = [json.loads(x) for x in (tmp_path / "next.jsonl").read_text().splitlines()]
    assert sorted(r.get("annotator_confidence") is not None for r in picked) == [False] * 4 + [True] * 2
    assert json.loads((tmp_path / "next.jsonl.stats.json").read_text())["mean_confidence_selected"] == 0.25


def test_rounds_refuse_to_resume_another_run_and_train_a_minimum_of_steps(tmp_path, tiny_encoder_dir):
    pool = _pool(52)
    write_jsonl(tmp_path / "pool.jsonl", pool[:40])
    write_jsonl(tmp_path / "eval.jsonl", pool[40:])
    ann = {"backbone": tiny_encoder_dir, "epochs": 1, "batch_size": 8, "max_length": 48}
    cfg = dict(pool=str(tmp_path / "pool.jsonl"), eval_pairs=str(tmp_path / "eval.jsonl"), strategy="random",
               budgets=[8, 16], annotator=ann, workdir=str(tmp_path / "w"))  # fmt: skip
    out = run_rounds(ActiveConfig(**cfg, min_steps=3))
    steps = [
        json.loads((tmp_path / "w" / f"round-{r:02d}" / "annotator" / "metrics.json").read_text())[
            "train_steps"
        ]
        for r in (1, 2)
    ]
    assert steps == [3, 4]  # 8 labels: 1 step an epoch, 3 epochs; 16 labels: 2 steps an epoch, 2 epochs
    final = out["rounds"][-1]["eval"]
    assert len(final["gold_correct"]) == 12 and set(final["gold_correct"]) <= {0, 1, None}
    decided = [x for x in final["gold_correct"] if x is not None]
    assert sum(decided) / len(decided) == pytest.approx(final["gold_accuracy"])
    assert run_rounds(ActiveConfig(**cfg, min_steps=3))["rounds"] == out["rounds"]  # the same run resumes
    with pytest.raises(ConfigError, match=r"another active-labelling run \(differs in min_steps\)"):
        run_rounds(ActiveConfig(**cfg, min_steps=5))
    write_jsonl(tmp_path / "pool.jsonl", pool[1:40])  # the pool changed under the rounds
    with pytest.raises(ConfigError, match="differs in pool_sha256"):
        run_rounds(ActiveConfig(**cfg, min_steps=3))
