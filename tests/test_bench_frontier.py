"""The frontier bench's training pairs: label sources and weight constructions as data."""

import json
from collections import Counter

import pytest

from benchmarks.frontier.run import align_key, record, saved_epochs, snapshot_steps
from benchmarks.frontier.train_rows import check_method, label_stats, train_rows
from cwpo.experiments.frontier import effective_sample_size


@pytest.fixture
def files(tmp_path):
    pool, annotated = [], []
    for i in range(40):
        ga, gb = (i % 7) / 7, ((i * 3) % 5) / 5
        pool.append(
            {
                "prompt_id": i,
                "prompt": f"p{i}",
                "response_a": f"a{i}",
                "response_b": f"b{i}",
                "gold_a": ga,
                "gold_b": gb,
            }
        )
        weak = "a" if i % 3 else "b"
        chosen, rejected = (f"a{i}", f"b{i}") if weak == "a" else (f"b{i}", f"a{i}")
        annotated.append(
            {"prompt_id": i, "prompt": f"p{i}", "chosen": chosen, "rejected": rejected, "confidence": (i + 1) / 41,
             "human_label": "a" if ga >= gb else "b"}
        )  # fmt: skip
    unlabeled = [
        {k: p[k] for k in ("prompt_id", "prompt", "response_a", "response_b")}
        | {"human_label": a["human_label"]}
        for p, a in zip(pool, annotated, strict=True)
    ]
    out = {k: tmp_path / f"{k}.jsonl" for k in ("pool", "annotated", "unlabeled")}
    for key, rows in (("pool", pool), ("annotated", annotated), ("unlabeled", unlabeled)):
        out[key].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_weight_constructions(files):
    c = [(i + 1) / 41 for i in range(40)]
    cw = train_rows(("weak", "c", "dpo"), files, seed=0)
    assert [r["confidence"] for r in cw] == c and cw[0]["chosen"] == "b0"
    shuffled = train_rows(("weak", "shuffled_c", "dpo"), files, seed=0)
    assert Counter(r["confidence"] for r in shuffled) == Counter(c)  # the same distribution
    assert [r["confidence"] for r in shuffled] != c
    assert [r["chosen"] for r in shuffled] == [r["chosen"] for r in cw]  # the same labels
    human_c = train_rows(("human", "c", "dpo"), files, seed=0)
    assert human_c[0]["chosen"] == "a0" and [r["confidence"] for r in human_c] == c  # human labels x c
    human = train_rows(("human", "none", "dpo"), files, seed=0)  # from D_u's file, no annotator
    assert [(r["chosen"], r["rejected"]) for r in human] == [(r["chosen"], r["rejected"]) for r in human_c]
    assert {r["confidence"] for r in human} == {1.0}
    oracle = train_rows(("human", "oracle_c", "dpo"), files, seed=0)
    by_gap = sorted(range(40), key=lambda i: abs((i % 7) / 7 - ((i * 3) % 5) / 5))
    assert [oracle[i]["confidence"] for i in by_gap] == sorted(c)
    ess = train_rows(("weak", "ess_subset", "dpo"), files, seed=0)
    assert len(ess) == round(effective_sample_size(c)) and {r["confidence"] for r in ess} == {1.0}
    top = train_rows(("weak", "top-30", "dpo"), files, seed=0)
    assert len(top) == 12 and min(r["confidence"] for r in top) == 1.0


def test_human_labels_follow_each_d_u_rows_own_order(files):
    """The split stores D_u rows in their own (shuffled) order, and prompt ids repeat in the pool:
    the human's chosen response must be the one its label names in that row, never the pool's."""
    pool = [json.loads(x) for x in files["pool"].read_text().splitlines()]
    pool[5]["prompt_id"] = pool[4]["prompt_id"]  # two pairs of one prompt id
    files["pool"].write_text("".join(json.dumps(r) + "\n" for r in pool))
    unlabeled, annotated = [], []
    for i, p in enumerate(pool):
        a, b = (p["response_b"], p["response_a"]) if i % 2 else (p["response_a"], p["response_b"])
        gold = {p["response_a"]: p["gold_a"], p["response_b"]: p["gold_b"]}
        unlabeled.append({"prompt_id": p["prompt_id"], "prompt": p["prompt"], "response_a": a, "response_b": b,
                          "human_label": "a" if gold[a] >= gold[b] else "b"})  # fmt: skip
        chosen, rejected = sorted((a, b), key=lambda x: -len(x) - (x < "b"))  # the weak choice: any
        annotated.append({"prompt_id": p["prompt_id"], "prompt": p["prompt"], "chosen": chosen, "rejected": rejected,
                          "confidence": 0.5, "human_label": unlabeled[-1]["human_label"]})  # fmt: skip
    files["unlabeled"].write_text("".join(json.dumps(r) + "\n" for r in unlabeled))
    files["annotated"].write_text("".join(json.dumps(r) + "\n" for r in annotated))
    better = {p["prompt"]: p["response_a"] if p["gold_a"] > p["gold_b"] else p["response_b"]
              for p in pool if p["gold_a"] != p["gold_b"]}  # fmt: skip
    for weights in ("none", "c", "oracle_c"):  # from D_u's file, and beside the annotator's c
        rows = train_rows(("human", weights, "dpo"), files, seed=0)
        assert len(rows) == 40 and all(r["chosen"] == better.get(r["prompt"], r["chosen"]) for r in rows), (
            weights
        )
    assert label_stats(files)["n_decided"] == sum(p["gold_a"] != p["gold_b"] for p in pool)


def test_runs_on_fixed_rows_are_keyed_anew():
    """Human-label methods trained on inverted rows before the fix: their key differs from then,
    the other methods' keys are as they were (their rows did not change)."""
    before = {
        "align": {"lr": 5e-4, "weighting": "confidence"},
        "method": ["human", "none", "dpo"],
        "snapshots": [6],
    }
    assert align_key(("human", "none", "dpo"), {"lr": 5e-4}, {6: 0.0625}) == {**before, "rows_version": 2}
    assert align_key(("human", "c", "dpo"), {"lr": 5e-4}, [6])["rows_version"] == 2
    for spec in (("weak", "c", "dpo"), ("human_all", "none", "dpo")):
        assert align_key(spec, {"lr": 5e-4}, [6]) == {**before, "method": list(spec)}


def test_label_stats_and_method_checks(files):
    stats = label_stats(files)
    assert stats["n_pairs"] == 40 and -1 <= stats["corr_c_gold_gap"] <= 1
    assert 0 <= stats["weak_label_acc"] <= 1
    with pytest.raises(ValueError, match="no confidence"):
        check_method("x", ["human_all", "c", "dpo"])
    with pytest.raises(ValueError, match="weights"):
        check_method("x", ["weak", "nope", "dpo"])


def test_snapshot_steps():
    steps, per_epoch = snapshot_steps(1445, 16, [0.25, 1.0, 3.0])
    assert per_epoch == 91 and steps == {23: 0.25, 91: 1.0, 273: 3.0}


def test_saved_snapshots_hold_the_fine_grid_and_every_scored_one():
    plan = {"grid": {"epochs": 1}, "checkpoints": [0.3, 1.0], "saved_every": 0.25}
    assert saved_epochs(plan) == [0.25, 0.3, 0.5, 0.75, 1.0]
    assert saved_epochs({**plan, "saved_every": None}) == [0.3, 1.0]
    steps, _ = snapshot_steps(1445, 16, plan["checkpoints"])
    saved, _ = snapshot_steps(1445, 16, saved_epochs(plan))
    assert set(steps) <= set(saved)  # every scored snapshot is saved by the training run


def test_record_replaces_another_training_run_of_the_same_unit(tmp_path):
    def pt(step, split, stage, method="cw"):
        return {"regime": "r", "method": method, "seed": 0, "lr": 1e-3, "step": step, "split": split,
                "align_stage": stage}  # fmt: skip

    record([pt(0, "val", "A"), pt(6, "val", "A"), pt(6, "val", "H", "human")], tmp_path)
    record([pt(6, "test", "A")], tmp_path)  # the same run, another split: kept beside
    lines = lambda: [json.loads(x) for x in (tmp_path / "points.jsonl").read_text().splitlines()]  # noqa: E731
    assert len(lines()) == 4
    record([pt(0, "val", "B"), pt(11, "val", "B")], tmp_path)  # a new plan's run: the old one's lines go
    assert sorted((p["method"], p["step"], p["align_stage"]) for p in lines()) == [
        ("cw", 0, "B"), ("cw", 11, "B"), ("human", 6, "H")
    ]  # fmt: skip
    first = {**pt(11, "val", "B"), "stage": "S11", "unit_seconds": 3600.0}
    record([first], tmp_path)
    record([{**first, "unit_seconds": 0.0}], tmp_path)  # the same scoring stage, re-run from the cache
    assert [p["unit_seconds"] for p in lines() if p.get("stage") == "S11"] == [3600.0]
    record([{**first, "stage": "S11b", "unit_seconds": 5.0}], tmp_path)  # scored anew: replaced
    assert [p["unit_seconds"] for p in lines() if p["step"] == 11] == [5.0]


def test_human_labels_of_dl_beside_the_weak_labels_of_du(files, tmp_path):
    files["labeled"] = tmp_path / "labeled.jsonl"
    dl = [{"prompt": f"q{i}", "chosen": f"good{i}", "rejected": f"bad{i}"} for i in range(3)]
    files["labeled"].write_text("".join(json.dumps(r) + "\n" for r in dl))
    rows = train_rows(("labeled_and_weak", "c", "dpo"), files, seed=0)
    assert rows[:3] == [{**r, "confidence": 1.0} for r in dl]  # D_l: human labels, weight 1
    assert rows[3:] == train_rows(("weak", "c", "dpo"), files, seed=0)  # D_u: weak labels x c
    assert check_method("cw_dl", ["labeled_and_weak", "c", "dpo"])


# The rows every planned method builds from the fixture, pinned. The align key holds the method and
# its input stages but not the code that builds its rows: a change here would reuse cached runs
# trained on the old rows. So a change of these hashes must come with a new ROWS_VERSION entry for
# that label source (benchmarks/frontier/train_rows.py), and then a new pin.
ROWS_PINNED = {
    "human": "2b881315e02d302c",
    "ws": "a16f722158ea860e",
    "cw": "be7d1b23b68fde89",
    "human100": "5d33839059f0769f",
    "human_dl": "5d33839059f0769f",
    "cw_dl": "3194e8b65d2cafe8",
    "shuffled_c": "9a8dd04b1fef9dca",
    "human_x_c": "059b8e43f8593249",
    "human_x_oracle": "e20e68ac500d53c5",
    "ws_ess": "aec5d04c164e9f54",
    "human_rdpo": "2b881315e02d302c",
    "top30": "13fa971293b8ceae",
    "top40": "0dd07b453e5658ef",
}


def test_the_rows_of_every_planned_method_are_pinned(files, tmp_path):
    import hashlib

    import yaml

    from benchmarks.frontier.run import HERE
    from benchmarks.frontier.train_rows import ROWS_VERSION

    human = [
        {"prompt": f"q{i}", "chosen": f"c{i}", "rejected": f"r{i}", "prompt_id": 100 + i} for i in range(3)
    ]
    for key in ("labeled", "all_human"):
        files[key] = tmp_path / f"{key}.jsonl"
        files[key].write_text("".join(json.dumps(r) + "\n" for r in human))
    methods = yaml.safe_load((HERE / "plan.yaml").read_text())["methods"]
    got = {
        name: hashlib.sha256(
            json.dumps(train_rows(tuple(spec), files, seed=1), sort_keys=True).encode()
        ).hexdigest()[:16]
        for name, spec in methods.items()
    }
    changed = sorted(m for m in got if ROWS_PINNED.get(m) != got[m])
    assert not changed, (
        f"the rows of {changed} changed: add or bump ROWS_VERSION for their label source "
        f"(now {ROWS_VERSION}) so that no cached run is reused, then pin {got}"
    )
