"""benchmarks/tracks/workers.py: the order of a bench's pieces and the worker processes that run them."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.tracks import robustness, workers
from benchmarks.tracks.workers import finished, method_pieces, pieces, run_workers
from cwpo.experiments.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]

FAKE = """
import sys, pathlib
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
out = pathlib.Path(args["--runs"]) / "ran.txt"
with open(out, "a") as fh:
    fh.write(f"{args['--seeds']} {args['--methods']}\\n")
sys.exit(3 if args["--methods"] == "bad" else 0)
"""


def test_headline_pieces_come_first_seed_by_seed():
    recipe = load_recipe(REPO / "configs/cpu/sentiment-v2-crowd.yaml")
    order = pieces(recipe)
    assert len(order) == 4 * 5 + 11 * 3 == len(set(order))
    assert order[:4] == [(0, "human"), (0, "ws"), (0, "cw"), (0, "human100")]
    assert {m for _, m in order[:20]} == {"human", "ws", "cw", "human100"}
    assert [s for s, _ in order[:20]] == sorted(s for s, _ in order[:20])
    assert order[20] == (0, "top30")


def test_workers_run_every_piece_once_and_stop_after_a_failure(tmp_path, capsys):
    script = tmp_path / "fake_bench.py"
    script.write_text(FAKE)
    command = [sys.executable, str(script)]
    todo = [(0, "a"), (0, "b"), (1, "a"), (1, "b")]
    assert run_workers(command, "p", method_pieces("p", todo), 2, tmp_path, ["--runs", str(tmp_path)])
    ran = sorted((tmp_path / "ran.txt").read_text().splitlines())
    assert ran == ["0 a", "0 b", "1 a", "1 b"]
    assert "p: seed 1 b: done" in capsys.readouterr().out
    (tmp_path / "ran.txt").unlink()
    assert not run_workers(
        command,
        "p",
        method_pieces("p", [(0, "a"), (0, "bad"), (1, "a")]),
        1,
        tmp_path,
        ["--runs", str(tmp_path)],
    )
    assert (tmp_path / "ran.txt").read_text().splitlines() == ["0 a", "0 bad"]  # nothing after the failure
    assert "p: seed 0 bad: failed (exit 3" in capsys.readouterr().out


def test_a_grid_piece_is_finished_only_at_every_grid_point(tmp_path, monkeypatch):
    recipe = load_recipe(REPO / "configs/cpu/sentiment-v2-split.yaml")  # 4 labelled shares
    fracs = recipe.grid["sentiment.labeled_frac"]
    rows = [{"seed": 0, "method": "cw", "sentiment.labeled_frac": f} for f in fracs]
    rows += [{"seed": 1, "method": "cw", "sentiment.labeled_frac": 0.3}]  # shared with another part
    rows += [{"seed": 0, "method": "human_dl", "sentiment.labeled_frac": f} for f in fracs[:3]]
    monkeypatch.setattr(workers, "run_recipe", lambda *a, **k: {"rows": rows})
    assert finished(recipe, tmp_path, "x") == {(0, "cw")}


def test_robustness_pieces_are_the_unfinished_seed_and_grid_points(tmp_path, monkeypatch):
    fracs = load_recipe(REPO / "configs/cpu/robustness-poison.yaml").grid["data.poison_frac"]
    rows = [{"seed": 0, "data.poison_frac": f} for f in fracs] + [{"seed": 1, "data.poison_frac": fracs[0]}]
    monkeypatch.setattr(workers, "run_recipe", lambda *a, **k: {"rows": rows})
    todo = robustness.point_pieces(["poison"], tmp_path)
    assert [args for _, args in todo] == [
        ["--part", "poison", "--seeds", str(s), "--point", str(i)]
        for s, i in [(1, 1), (1, 2), (1, 3)] + [(2, i) for i in range(4)]
    ]
    assert todo[0][0] == f"robustness poison: seed 1 poison_frac={robustness.level_label(fracs[1])}"
