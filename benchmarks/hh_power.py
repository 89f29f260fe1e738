"""Can the HH-RLHF strong-model comparison (preference accuracy, CW vs Human) resolve 3 points here?

Sizes the comparison from the spread the committed HH run measured (benchmarks/results/hh.json:
per-method std over seeds, and over three disjoint test subsets) with
:func:`cwpo.experiments.power.planned_mde`, at the bench sizes that could run on this machine.
The seed-level sd of the CW − Human difference is taken as sqrt(sd_cw² + sd_human²) (the two runs
of a seed share the split, so this is an upper bound when they are positively correlated; the
bound with the correlation at +0.5 is reported beside it). The per-pair sd of a difference of two
0/1 outcomes near 0.5 is at most sqrt(0.5). Writes benchmarks/results/hh_power.json.

    .venv/bin/python benchmarks/hh_power.py
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result  # noqa: E402

from cwpo.stats import planned_mde  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BAR = 0.03


def main() -> None:
    start = time.time()
    hh = json.loads((REPO / "benchmarks" / "results" / "hh.json").read_text())["metrics"]
    sd_cw, sd_h = hh["pref_acc_cw_std"], hh["pref_acc_human_std"]
    sd_seed_indep = math.sqrt(sd_cw**2 + sd_h**2)
    sd_seed_corr = math.sqrt(sd_cw**2 + sd_h**2 - 2 * 0.5 * sd_cw * sd_h)
    sd_pair = math.sqrt(0.5)
    sizes = [(n, s) for n in (90, 300, 1000, 2500) for s in (3, 5, 10)]
    table = {
        f"{n}_pairs_{s}_seeds": {
            "mde": planned_mde(sd_pair, n, s, sd_seed_indep),
            "mde_if_correlated_0.5": planned_mde(sd_pair, n, s, sd_seed_corr),
        }
        for n, s in sizes
    }
    # seeds needed for the seed term alone to reach the bar (even with infinitely many test pairs)
    seeds_needed = math.ceil((1.96 * sd_seed_corr / BAR) ** 2)
    metrics = {
        "sd_seed_cw_minus_human": sd_seed_indep,
        "sd_seed_cw_minus_human_if_correlated_0.5": sd_seed_corr,
        "sd_per_pair_upper_bound": sd_pair,
        "mde_by_size": table,
        "seeds_needed_for_mde_bar_at_best": seeds_needed,
        "mde_bar": BAR,
        "measured_run": {"n_test_pairs_per_seed": hh["n_test_pairs_per_seed"], "n_seeds": hh["n_seeds"]},
        "decision": "removed" if min(v["mde_if_correlated_0.5"] for v in table.values()) > BAR else "kept",
    }
    write_result("hh_power", metrics, start, source="benchmarks/results/hh.json")
    print(json.dumps({k: metrics[k] for k in ("seeds_needed_for_mde_bar_at_best", "decision")}))


if __name__ == "__main__":
    main()
