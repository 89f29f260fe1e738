"""The frontier bench's parts: which are finished (from the points index), and a part runs its
workers together, then saves the archive."""

import json
import sys

import yaml

from benchmarks.frontier import parts, run

PLAN = {
    "checkpoints": [0.5, 1.0],
    "parts": {
        "A": [["--regime", "noisefree", "--seeds", "0", "--lrs", "5e-4", "--methods", "cw", "human"]],
        "B": [
            [
                "--regime",
                "crowd_bt",
                "--seeds",
                "0",
                "1",
                "--lrs",
                "5e-4",
                "--splits",
                "test",
                "--methods",
                "cw",
            ]
        ],
    },
}


def _index(results, rows):
    results.mkdir(parents=True, exist_ok=True)
    keys = ("regime", "method", "seed", "lr", "split", "step")
    (results / "points.jsonl").write_text(
        "".join(json.dumps(dict(zip(keys, r, strict=True))) + "\n" for r in rows)
    )


def test_a_unit_is_finished_when_every_point_of_every_split_is_indexed(tmp_path):
    rows = [("noisefree", "cw", 0, 5e-4, split, step) for split in ("val", "test") for step in (0, 1, 2)]
    rows += [("noisefree", "human", 0, 5e-4, "val", step) for step in (0, 1, 2)]  # test not scored yet
    rows += [("crowd_bt", "cw", s, 5e-4, "test", step) for s in (0, 1) for step in (0, 1, 2)]
    _index(tmp_path, rows)
    assert parts.status(PLAN, tmp_path) == {"A": (1, 2), "B": (2, 2)}
    _index(tmp_path, rows[:-1])  # one point missing
    assert parts.status(PLAN, tmp_path)["B"] == (1, 2)


def test_next_runs_the_first_unfinished_part_then_saves(tmp_path, monkeypatch, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN))
    seen = tmp_path / "seen"
    worker = f"import sys; open({str(seen)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')"
    monkeypatch.setattr(parts, "module_command", lambda m: [sys.executable, "-c", worker])
    saved = []
    monkeypatch.setattr(parts, "save_archive", lambda cache, archive: saved.append((cache, archive)))
    argv = ["--plan", str(plan), "--results", str(tmp_path / "r"), "--cache", str(tmp_path / "c")]
    assert parts.main(["next", *argv]) == 0
    (line,) = seen.read_text().splitlines()
    assert (
        line.startswith("--regime noisefree")
        and "--max-minutes 110.0" in line
        and str(tmp_path / "c") in line
    )
    assert saved == [(tmp_path / "c", run.ARCHIVE)]
    assert "A     0/2 units" in capsys.readouterr().out


def test_an_unknown_part_exits_2(tmp_path, capsys):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN))
    assert parts.main(["P9", "--plan", str(plan), "--results", str(tmp_path)]) == 2
    assert "part 'P9' is not in" in capsys.readouterr().err


def test_the_committed_plan_parses():
    plan = yaml.safe_load((run.HERE / "plan.yaml").read_text())
    assert all(parts.units(plan, w) for workers in plan["parts"].values() for w in workers)
