"""benchmarks/frontier/analyze.py on synthetic scored snapshots: selection on validation prompts,
matched-KL claims (a method better only because it moved further is not better at matched KL)."""

import json

import numpy as np
import pytest

from benchmarks.frontier.analyze import N_BOOT, Points, analyze, matched, select


def _rows(seed: int, kl: float, reward_at: float, n: int = 12) -> list[dict]:
    """Per prompt one sample whose log-ratio is ``kl`` and gold reward ``reward_at`` + prompt noise."""
    rng = np.random.default_rng(seed * 1000 + int(kl * 100))
    return [
        {"prompt_id": i, "sample": 0, "response": "w", "gold": reward_at + 0.05 * rng.standard_normal(),
         "gold_ref": 0.5 * np.sin(7 * i), "second": 1.0, "second_ref": 0.0, "logp": -1.0, "logp_ref": -1.0 - kl, "n_tokens": 3}
        for i in range(n)
    ]  # fmt: skip


def _index(
    tmp_path, curves: dict, lr: float = 5e-4, seeds=(0, 1, 2), seed_offset: float = 0.01, n_prompts: int = 12
) -> list[dict]:
    """curves: method -> list of (kl, reward) snapshots (step 0 first); the same for every seed."""
    index = []
    for method, pts in curves.items():
        for seed in seeds:
            for step, (kl, reward) in enumerate(pts):
                for split in ("val", "test"):
                    stage = f"frontier-eval-{method}-{lr}-{seed}-{step}-{split}"
                    folder = tmp_path / "stages" / stage
                    folder.mkdir(parents=True)
                    rows = _rows(seed, kl, reward + seed_offset * seed, n_prompts)
                    (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
                    index.append(
                        {"regime": "noisefree", "method": method, "seed": seed, "lr": lr, "step": step * 10,
                         "epochs": step * 0.5, "split": split, "stage": stage, "sft_perplexity": 9.0,
                         "distinct_1": 0.5, "distinct_2": 0.8, "mean_tokens": 3.0}
                    )  # fmt: skip
    return index


@pytest.fixture(autouse=True)
def few_replicates():
    N_BOOT["n"] = 200
    yield
    N_BOOT["n"] = 4000


def test_a_method_that_only_moves_further_is_not_better_at_matched_kl(tmp_path):
    # the same reward-KL curve (reward = KL / 10); cw travels to KL 8, human stops at KL 4
    curve = lambda kls: [(k, k / 10) for k in kls]  # noqa: E731
    points = Points(_index(tmp_path, {"cw": curve([0, 2, 4, 8]), "human": curve([0, 1, 2, 4])}), tmp_path)
    assert select(points, "noisefree", "cw")["step"] == 30  # the furthest snapshot has the best val GRA
    res = matched(points, "noisefree", "cw", 5e-4, "human", 5e-4, "reward", 4)
    assert res["levels"] == pytest.approx([1.0, 2.0, 3.0, 4.0])  # inside both ranges only
    assert (
        abs(res["mean_over_levels"]["mean"]) < 0.02
        and res["mean_over_levels"]["lo"] < 0 < res["mean_over_levels"]["hi"]
    )
    out = analyze(points, 4, n_boot=200)
    r = out["regimes"]["noisefree"]
    # at the tuned points cw's reward looks far better; at matched KL the claim is not resolved
    assert (
        r["tuned"]["test_at_chosen"]["cw"]["reward"]["mean"]
        > r["tuned"]["test_at_chosen"]["human"]["reward"]["mean"] + 0.3
    )
    verdicts = {v["name"]: v["verdict"] for v in r["verdicts"] + r["secondary_verdicts"]}
    assert verdicts["cw_vs_human_reward_at_matched_kl"] == "unresolved"
    assert [v["name"] for v in r["verdicts"]] == ["cw_vs_human_gra_at_matched_kl"]  # the primary family
    assert len(r["frontier"]["cw"]) == 4 and {"kl", "reward", "gra"} <= set(r["frontier"]["cw"][0])
    assert out["stats"]["multiplicity"] == "holm" and out["stats"]["mde_power"] == 0.8


def test_a_better_curve_holds_at_matched_kl(tmp_path):
    points = Points(
        _index(tmp_path, {"cw": [(0, 0.0), (2, 0.4), (4, 0.8)], "human": [(0, 0.0), (2, 0.2), (4, 0.4)]}),
        tmp_path,
    )
    res = matched(points, "noisefree", "cw", 5e-4, "human", 5e-4, "reward", 4)
    assert res["dominance"]["summary"] == "a dominates"
    r = analyze(points, 4, n_boot=200)["regimes"]["noisefree"]
    verdicts = {v["name"]: v["verdict"] for v in r["secondary_verdicts"]}
    assert verdicts["cw_vs_human_reward_at_matched_kl"] == "holds"
    one_seed = analyze(Points(_index(tmp_path / "one", {"cw": [(0, 0.0), (2, 0.4)], "human": [(0, 0.0), (2, 0.2)]},
                                     seeds=(0,)), tmp_path / "one"), 2, n_boot=200)["regimes"]["noisefree"]  # fmt: skip
    assert (
        one_seed["verdicts"] == [] and one_seed["secondary_verdicts"] == []
    )  # a seed's luck is not a verdict
    assert one_seed["descriptive"]["cw_vs_human_reward_at_matched_kl"]["why"] == "1 of 3 seeds: no verdict"


def test_grid_points_are_compared_on_the_seeds_every_lr_has(tmp_path):
    # lr 1.5e-3 ran on seed 0 only; lr 5e-4 is worse on seed 0 but better on average over its seeds
    index = _index(tmp_path, {"cw": [(0, 0.0), (2, 0.1), (4, 0.2)]}, seed_offset=0.3)
    index += _index(tmp_path, {"cw": [(0, 0.0), (2, 0.2), (4, 0.3)]}, lr=1.5e-3, seeds=(0,))
    chosen = select(Points(index, tmp_path), "noisefree", "cw")
    assert (chosen["lr"], chosen["lr_seeds"], chosen["tuning_seeds"]) == (1.5e-3, [0], [0])
    # its frontier (and every matched-KL claim) stays at the lr run on every seed
    r = analyze(Points(index, tmp_path), 2, n_boot=50)["regimes"]["noisefree"]
    assert r["tuned"]["chosen"]["cw"]["lr"] == 1.5e-3 and r["frontier_lr"]["cw"] == 5e-4


def test_the_length_at_the_chosen_lr_is_chosen_on_every_seed(tmp_path):
    # seed 0 alone prefers the early snapshot of lr 5e-4; seeds 0-2 together prefer the late one;
    # lr 1.5e-3 (seed 0 only) loses to 5e-4 on seed 0
    index = _index(tmp_path, {"cw": [(0, 0.0), (0.1, 0.5), (0.2, 0.3)]}, seeds=(0,), seed_offset=0)
    index += _index(tmp_path, {"cw": [(0, 0.0), (0.1, 0.2), (0.2, 0.6)]}, seeds=(1, 2), seed_offset=0)
    index += _index(tmp_path, {"cw": [(0, 0.0), (0.1, 0.1), (0.2, 0.2)]}, lr=1.5e-3, seeds=(0,))
    chosen = select(Points(index, tmp_path), "noisefree", "cw")
    assert (chosen["lr"], chosen["step"]) == (5e-4, 20)
    assert (chosen["lr_seeds"], chosen["tuning_seeds"]) == ([0], [0, 1, 2])


def test_a_control_scored_on_test_prompts_only_is_compared_at_cws_lr(tmp_path):
    index = _index(tmp_path, {"cw": [(0, 0.0), (2, 0.4), (4, 0.8)]})
    index += [
        p
        for p in _index(tmp_path / "c", {"shuffled_c": [(0, 0.0), (2, 0.2), (4, 0.4)]})
        if p["split"] == "test"
    ]
    for p in index:
        if p["method"] == "shuffled_c":
            (tmp_path / "stages" / p["stage"]).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "c" / "stages" / p["stage"]).rename(tmp_path / "stages" / p["stage"])
    r = analyze(Points(index, tmp_path), 3, n_boot=200)["regimes"]["noisefree"]
    assert r["tuned"]["chosen"]["shuffled_c"]["rule"].startswith("no validation runs")
    assert r["controls"]["shuffled_c"]["at_matched_kl"]["shuffled_c_vs_cw_gra_at_matched_kl"]["levels"]


def test_points_scored_against_two_sft_models_are_refused(tmp_path):
    index = _index(tmp_path, {"cw": [(0, 0), (1, 0.1)]})
    for i, p in enumerate(index):
        p["sft_sha"] = "a" if i < 2 else "b"
    with pytest.raises(ValueError, match="different SFT models"):
        Points(index, tmp_path)


def test_the_shared_setting_matches_methods_by_epochs_not_steps(tmp_path):
    index = _index(tmp_path, {"cw": [(0, 0), (1, 0.1), (2, 0.2)], "human100": [(0, 0), (1, 0.1), (2, 0.2)]})
    for p in index:
        if p["method"] == "human100":
            p["step"] = int(p["step"] * 1.4)  # more pairs: more steps per epoch
    out = analyze(Points(index, tmp_path), 2)["regimes"]["noisefree"]["tuned"]
    assert out["shared_setting"]["epochs"] == 1.0
    assert sorted(out["test_at_shared"]) == ["cw", "human100"]


def test_a_control_below_cw_supports_the_weights(tmp_path):
    index = _index(
        tmp_path, {"cw": [(0, 0.0), (2, 0.4), (4, 0.8)], "shuffled_c": [(0, 0.0), (2, 0.2), (4, 0.4)]}
    )
    r = analyze(Points(index, tmp_path), 3, n_boot=200)["regimes"]["noisefree"]
    v = {x["name"]: x for x in r["secondary_verdicts"]}["shuffled_c_vs_cw_reward_at_matched_kl"]
    assert v["direction"] == -1 and v["estimate"]["mean"] < 0 and v["verdict"] == "holds"
    assert not any(x["name"] == "cw_vs_shuffled_c_gra_at_tuned" for x in r["secondary_verdicts"])


def test_the_kl_axis_is_resampled_with_the_prompts(tmp_path):
    """Noisy per-prompt log-ratios: the KL of each checkpoint is itself an estimate, so the claim's
    interval is wider than one that holds each checkpoint's KL fixed."""
    from benchmarks.frontier.analyze import diff
    from cwpo.experiments.frontier import common_levels, interpolate

    curves = {"cw": [(0, 0.0), (2, 0.3), (4, 0.5)], "human": [(0, 0.0), (2, 0.2), (4, 0.4)]}
    index = _index(tmp_path, curves, seeds=(0,))  # one seed: no Student-t floor, the bootstrap alone
    rng = np.random.default_rng(5)
    for p in index:  # log-ratios with sd 3 nats around the checkpoint's KL
        f = tmp_path / "stages" / p["stage"] / "rows.jsonl"
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        for r in rows:
            r["logp_ref"] -= 0 if p["step"] == 0 else 3 * rng.standard_normal()
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    points = Points(index, tmp_path)
    res = matched(points, "noisefree", "cw", 5e-4, "human", 5e-4, "reward", 3)
    ra, rb = (points.run("noisefree", m, 5e-4, "test") for m in ("cw", "human"))
    kls = {m: {s: v["kl"].mean(axis=1) for s, (_, v) in r.items()} for m, r in (("cw", ra), ("human", rb))}
    levels = common_levels([k for m in kls.values() for k in m.values()], 4)[1:]
    fixed = diff(
        np.stack([interpolate(kls["cw"][s], ra[s][1]["reward"], levels).mean(0) for s in ra]),
        np.stack([interpolate(kls["human"][s], rb[s][1]["reward"], levels).mean(0) for s in rb]),
    )
    width = res["mean_over_levels"]["hi"] - res["mean_over_levels"]["lo"]
    assert res["levels"] == pytest.approx(levels)
    assert width > 1.3 * (fixed.hi - fixed.lo)
    for i, level in enumerate(res["per_level"]):  # each level's interval resamples the axis too
        at = diff(
            np.stack([interpolate(kls["cw"][s], ra[s][1]["reward"], levels)[i] for s in ra]),
            np.stack([interpolate(kls["human"][s], rb[s][1]["reward"], levels)[i] for s in rb]),
        )
        assert level["mean"] == pytest.approx(at.mean)
        assert level["hi"] - level["lo"] > 1.3 * (at.hi - at.lo)


def test_runs_scored_on_other_prompts_are_refused(tmp_path, capsys):
    from benchmarks.frontier import analyze as an

    index = _index(tmp_path, {"cw": [(0, 0.0), (2, 0.4)], "human": [(0, 0.0), (2, 0.2)]})
    for p in index:
        if p["method"] == "human":
            f = tmp_path / "stages" / p["stage"] / "rows.jsonl"
            rows = [json.loads(x) for x in f.read_text().splitlines()]
            f.write_text("".join(json.dumps({**r, "prompt_id": r["prompt_id"] + 100}) + "\n" for r in rows))
    with pytest.raises(ValueError, match="different prompts"):
        matched(Points(index, tmp_path), "noisefree", "cw", 5e-4, "human", 5e-4, "gra", 2)
    (tmp_path / "points.jsonl").write_text("".join(json.dumps(p) + "\n" for p in index))
    argv = ["--cache", str(tmp_path), "--results", str(tmp_path), "--report", str(tmp_path / "r")]
    assert an.main(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_frontier_is_one_training_run(tmp_path):
    index = _index(tmp_path, {"cw": [(0, 0.0), (2, 0.4), (4, 0.8)]})
    for p in index:
        p["align_stage"] = "frontier-align-a" if p["step"] < 20 else "frontier-align-b"  # a re-run mixed in
    with pytest.raises(ValueError, match="come from 2 training runs"):
        Points(index, tmp_path)


def test_the_secondary_family_counts_the_planned_claims_before_their_runs(tmp_path):
    from benchmarks.frontier.analyze import HERE, planned_methods, secondary_size
    from benchmarks.frontier.run import load_plan

    planned = planned_methods(load_plan(HERE / "plan.yaml"))
    assert {"cw", "human", "ws", "human100"} <= planned["noisefree"]
    assert secondary_size({"cw", "human", "ws", "human100"}) == 6  # 3 rewards at matched KL, 3 tuned
    assert secondary_size({"cw", "human", "shuffled_c"}) == 2 + 2  # + the control's GRA and reward
    points = Points(
        _index(tmp_path, {"cw": [(0, 0.0), (2, 0.4), (4, 0.8)], "human": [(0, 0.0), (2, 0.2), (4, 0.4)]}),
        tmp_path,
    )
    r = analyze(points, 4, n_boot=200, planned={"noisefree": {"cw", "human", "ws", "human100"}})
    sizes = {v["family_size"] for v in r["regimes"]["noisefree"]["secondary_verdicts"]}
    assert sizes == {6}  # ws and human100 have not run yet: still counted


def test_with_several_seeds_the_kl_axis_error_is_counted_once(tmp_path):
    """A run's KL estimate errs for the whole run, so with three seeds its error is in the seeds'
    spread: nothing is added to the components' variance (it was, twice, before)."""
    from benchmarks.frontier.analyze import diff
    from cwpo.experiments.frontier import common_levels, interpolate

    curves = {"cw": [(0, 0.0), (2, 0.3), (4, 0.5)], "human": [(0, 0.0), (2, 0.2), (4, 0.4)]}
    index = _index(tmp_path, curves, n_prompts=40)
    rng = np.random.default_rng(7)
    for p in index:  # noisy per-prompt log-ratios and rewards, different in every run
        f = tmp_path / "stages" / p["stage"] / "rows.jsonl"
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        for r in rows:
            r["logp_ref"] -= 0 if p["step"] == 0 else 2 * rng.standard_normal()
            r["gold"] += 0.3 * rng.standard_normal()
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    points = Points(index, tmp_path)
    res = matched(points, "noisefree", "cw", 5e-4, "human", 5e-4, "reward", 3)
    assert res["mean_over_levels"]["se"] > 0.01 and res["mean_over_levels"]["df"] >= 2
    ra, rb = (points.run("noisefree", m, 5e-4, "test") for m in ("cw", "human"))
    kls = [v["kl"].mean(axis=1) for r in (ra, rb) for _, v in r.values()]
    levels = common_levels(kls, 4)[1:]
    fixed = diff(
        np.stack([interpolate(ra[s][1]["kl"].mean(axis=1), ra[s][1]["reward"], levels).mean(0) for s in ra]),
        np.stack([interpolate(rb[s][1]["kl"].mean(axis=1), rb[s][1]["reward"], levels).mean(0) for s in rb]),
    )
    assert res["mean_over_levels"]["se"] == pytest.approx(fixed.se)
    assert res["mean_over_levels"]["df"] == pytest.approx(fixed.df)


def test_a_seed_still_being_scored_does_not_break_the_selection(tmp_path):
    index = _index(tmp_path, {"cw": [(0, 0.0), (0.1, 0.5), (0.2, 0.3)]}, seeds=(0, 1))
    index += _index(tmp_path, {"cw": [(0, 0.0)]}, seeds=(2,))  # only its step 0 scored so far
    index += _index(tmp_path, {"cw": [(0, 0.0), (0.1, 0.1), (0.2, 0.2)]}, lr=1.5e-3, seeds=(0,))
    chosen = select(Points(index, tmp_path), "noisefree", "cw")
    assert (chosen["lr"], chosen["step"], chosen["tuning_seeds"]) == (5e-4, 10, [0])
