"""How many seeds and test prompts the frontier bench needs: MDEs at 80% power from the v2 archive.

The archived v2 evaluation rows (1,000 test prompts, one policy per method and seed, one epoch at
lr 5e-4) give, for each comparison of the earlier bench, two spreads of the paired per-prompt GRA
difference d = outcome(a) − outcome(b):

- ``sd_prompt``: the sd of d over prompts within a seed (pooled over seeds);
- ``sd_seed``: the sd over seeds of the seed means of d, less what the prompts alone explain
  (training randomness; floored at 0).

:func:`cwpo.stats.planned_mde` turns them into the MDE (GRA points, 80% power, alpha 0.05, t on
seeds − 1 df) of a design with S seeds and P prompts. Writes ``results/power.json``.

    python -m benchmarks.frontier.power
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.frontier.run import ARCHIVE, HERE
from benchmarks.frontier.train_rows import read_jsonl
from benchmarks.result_files import bench_parser, write_result
from cwpo.atomic_files import read_json
from cwpo.stats import planned_mde

METHOD_OF = {  # (label source, weighting, loss) of an archived align stage -> method name
    ("human", "none", "dpo"): "human",
    ("weak", "none", "dpo"): "ws",
    ("weak", "confidence", "dpo"): "cw",
    ("human_all", "none", "dpo"): "human100",
}
COMPARISONS = (("cw", "human"), ("cw", "ws"), ("cw", "human100"), ("ws", "human"))
TEST_PROMPTS = 1000
DESIGNS = [(s, p) for s in (3, 4, 5) for p in (300, 500, 1000)]


def _stage(ref: str):
    return ARCHIVE / "stages" / ref.rsplit("/", 1)[-1]


def _regime(stage) -> str | None:
    """noisefree or crowd_uniform from the labels stage behind an align stage's labels."""
    m = read_json(stage / "manifest.json")
    if m.get("stage") == "labels":
        flip = m["config"]["config"].get("human_flip", 0.0)
        temp = m["config"]["config"].get("human_temperature", 0.0)
        if m["config"]["config"].get("labeled_frac") != 0.3:  # the split study's other shares
            return None
        return (
            "noisefree" if not flip and not temp else "crowd_uniform" if flip == 0.32 and not temp else None
        )
    for ref in m["config"].get("inputs", {}).values():
        found = _regime(_stage(ref))
        if found:
            return found
    return None


def archived_outcomes() -> dict:
    """(regime, method) -> seed -> per-prompt GRA outcomes, in prompt order."""
    out: dict = {}
    for ev in sorted((ARCHIVE / "stages").glob("evaluate-*")):
        inputs = read_json(ev / "manifest.json")["config"]["inputs"]
        align = _stage(inputs["policy"])
        cfg = read_json(align / "manifest.json")["config"]["config"]
        a = cfg.get("align", {})
        if a.get("epochs") != 1 or a.get("lr") != 5e-4 or "prompts" not in inputs:
            continue
        method = METHOD_OF.get((cfg.get("labels"), a.get("weighting"), a.get("loss")))
        regime = _regime(align)
        if method is None or regime is None:
            continue
        rows = read_jsonl(ev / "eval" / "rows.jsonl")
        if len(rows) != TEST_PROMPTS:  # the validation-prompt evaluations of the HP choice
            continue
        vals = np.array(
            [1.0 if r["outcome"] == "win" else 0.5 if r["outcome"] == "tie" else 0.0 for r in rows]
        )
        seeds = out.setdefault((regime, method), {})
        if a["seed"] in seeds:  # two archived runs of one method and seed: not the v2 headline pair
            raise ValueError(f"two archived evaluations of {regime}/{method} seed {a['seed']} ({ev.name})")
        seeds[a["seed"]] = vals
    return out


def spreads(a: dict, b: dict) -> dict | None:
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    d = np.stack([a[s] - b[s] for s in seeds])
    sd_prompt = float(np.sqrt(d.var(axis=1, ddof=1).mean()))
    seed_var = d.mean(axis=1).var(ddof=1) - sd_prompt**2 / d.shape[1]
    return {
        "n_seeds": len(seeds),
        "n_prompts": d.shape[1],
        "mean_diff": float(d.mean()),
        "sd_prompt": sd_prompt,
        "sd_seed": float(math.sqrt(max(seed_var, 0.0))),
    }


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--output", type=Path, default=HERE / "results" / "power.json")
    args = ap.parse_args(argv)
    started = time.time()
    outcomes = archived_outcomes()
    result: dict = {}
    for regime in ("noisefree", "crowd_uniform"):
        for a, b in COMPARISONS:
            sa, sb = outcomes.get((regime, a)), outcomes.get((regime, b))
            s = spreads(sa, sb) if sa and sb else None
            if s is None:
                continue
            s["mde_gra_points"] = {
                f"{n_seeds} seeds x {n_prompts} prompts": round(
                    100 * planned_mde(s["sd_prompt"], n_prompts, n_seeds, s["sd_seed"]), 2
                )
                for n_seeds, n_prompts in DESIGNS
            }
            result[f"{regime}/{a}_vs_{b}"] = s
    if not result:
        print("error: no archived v2 evaluation rows found under " + str(ARCHIVE), file=sys.stderr)
        return 2
    source = "benchmarks/archive/bench (v2 evaluation rows, 1 epoch at lr 5e-4)"
    write_result(args.output, {"comparisons": result}, started, source=source)
    for k, s in result.items():
        print(
            k, {"sd_prompt": round(s["sd_prompt"], 3), "sd_seed": round(s["sd_seed"], 4)}, s["mde_gra_points"]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
