import json
import threading
import time

import pytest

from cwpo.errors import CWPOError
from cwpo.experiments.cache import CACHE_ONLY, LEFT_OUT, run_stage


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


def _counting_stage(calls):
    def fn(out, work):
        calls.append(1)
        (out / "rows.txt").write_text("rows")
        return {"value": len(calls)}

    return fn


def _leave_out(folder, **extra):
    (folder / "rows.txt").unlink()
    (folder / LEFT_OUT).write_text(json.dumps({"dropped": ["rows.txt"], **extra}))


def test_a_stage_with_files_left_out_stays_cached_but_refuses_to_feed_a_new_stage(tmp_path):
    calls = []
    first = run_stage(tmp_path, "data", {"a": 1}, {}, _counting_stage(calls))
    _leave_out(first.path)
    again = run_stage(tmp_path, "data", {"a": 1}, {}, _counting_stage(calls))
    assert again.cached and calls == [1]
    with pytest.raises(CWPOError, match=r"stage next needs the data stage .*delete that folder"):
        run_stage(tmp_path, "next", {"b": 1}, {"data": again}, _counting_stage(calls))
    assert calls == [1]


def test_a_stage_left_out_to_be_recomputed_is_computed_again_with_the_same_key(tmp_path):
    calls = []
    first = run_stage(tmp_path, "data", {"a": 1}, {}, _counting_stage(calls))
    _leave_out(first.path, recompute=True)
    token = CACHE_ONLY.set(True)
    try:  # a cache-only look counts it as cached and computes nothing
        assert run_stage(tmp_path, "data", {"a": 1}, {}, _counting_stage(calls)).cached
    finally:
        CACHE_ONLY.reset(token)
    assert calls == [1]
    again = run_stage(tmp_path, "data", {"a": 1}, {}, _counting_stage(calls))
    assert calls == [1, 1] and not again.cached
    assert (again.path, again.key) == (first.path, first.key)
    assert (again.path / "rows.txt").read_text() == "rows" and not (again.path / LEFT_OUT).exists()
    run_stage(tmp_path, "next", {"b": 1}, {"data": again}, _counting_stage(calls))  # feeds the next stage
    assert calls == [1, 1, 1]
