import threading
import time

import pytest

from cwpo.experiments.cache import run_stage


def _slow_stage(calls):
    def fn(out, work):
        calls.append(time.time())
        time.sleep(0.5)  # long enough for the other run to arrive while this one computes
        (out / "result.txt").write_text("done")
        return {"value": 1}

    return fn


def test_concurrent_runs_compute_a_shared_stage_once(tmp_path):
    calls, results, errors = [], [], []

    def run():
        try:
            results.append(run_stage(tmp_path, "stage", {"a": 1}, {}, _slow_stage(calls)))
        except Exception as exc:  # surfaced below: a thread's exception would otherwise be lost
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(calls) == 1, "the second run must wait and reuse the stage, not compute it again"
    assert sorted(r.cached for r in results) == [False, True]
    assert results[0].path == results[1].path and results[0].key == results[1].key
    assert (results[0].path / "result.txt").read_text() == "done"
    assert results[0].metrics["value"] == results[1].metrics["value"] == 1


def test_a_failed_stage_releases_its_lock_and_can_be_rerun(tmp_path):
    def boom(out, work):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        run_stage(tmp_path, "stage", {"a": 1}, {}, boom)
    calls = []
    art = run_stage(tmp_path, "stage", {"a": 1}, {}, _slow_stage(calls))
    assert len(calls) == 1 and not art.cached
    assert run_stage(tmp_path, "stage", {"a": 1}, {}, boom).cached  # now complete: never recomputed
