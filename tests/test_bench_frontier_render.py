"""The frontier bench's claim table and plots come from frontier.json alone, and the summary page
leads with them."""

from benchmarks.frontier import render
from benchmarks.summary import verdicts
from cwpo.stats import Claim, judge, t_estimate


def _metrics():
    claims = [
        Claim("cw_vs_human_gra_at_matched_kl", t_estimate([0.05, 0.06, 0.04]), 1, 1.9),
        Claim("cw_vs_ws_reward_at_matched_kl", t_estimate([-0.2, 0.3, 0.1])),
        Claim("cw_vs_human100_gra_at_tuned", t_estimate([-0.05, -0.06, -0.04])),
    ]
    per_level = [{"lo": 0.01, "hi": 0.09}, {"lo": -0.01, "hi": 0.05}]
    point = {
        k: {"mean": v, "lo": v - 0.1, "hi": v + 0.1} for k, v in (("kl", 1.0), ("reward", 0.2), ("gra", 0.6))
    }
    return {
        "regimes": {
            "crowd_bt": {
                "verdicts": judge(claims),
                "matched_kl": {
                    "cw_vs_human_gra_at_matched_kl": {
                        "dominance": {
                            "summary": "a better at some levels, never worse",
                            "a_better": 1,
                            "levels": 2,
                        },
                        "per_level": per_level,
                    }
                },
                "tuned": {
                    "chosen": {"cw": {"lr": 5e-4, "epochs": 1.0}, "human": {"lr": 1.5e-3, "epochs": 2.0}},
                    "test_at_chosen": {"cw": {"kl": {"mean": 1.0}}, "human100": {"kl": {"mean": 2.0}}},
                },
                "frontier": {"cw": [point, {**point, "kl": {"mean": 2.0, "lo": 1.9, "hi": 2.1}}]},
            }
        }
    }


def test_claim_lines_show_each_verdict_with_its_numbers():
    text = "\n".join(render.claim_lines(_metrics()))
    assert "**crowd_bt**, primary claims (3, one Holm family fixed in advance" in text
    row = next(line for line in text.splitlines() if line.startswith("| CW-DPO − Human-DPO, GRA"))
    assert "| matched kl | **holds** | +5.0 [" in row and row.endswith("| +1.9 |")
    assert "(1/2 better)" in row
    reward = next(line for line in text.splitlines() if "WS-DPO, gold reward" in line)
    assert "**unresolved**" in reward and "+0.1 [" in reward  # reward in VADER units, not x100
    tuned = next(line for line in text.splitlines() if "on 100%, GRA" in line)
    assert "| tuned | **fails** | -5.0 [" in tuned and "at unequal KL: 1.00 vs 2.00 nats" in tuned
    assert "CW-DPO lr 0.0005 at 1 ep; Human-DPO lr 0.0015 at 2 ep" in text


def test_nothing_run_yet_says_so():
    assert render.claim_lines({}) == ["The frontier bench has not run yet: no matched-KL verdict exists."]


def test_plots_one_per_regime(tmp_path):
    (path,) = render.plot_frontiers(_metrics(), tmp_path)
    assert path.name == "frontier-crowd_bt.png" and path.stat().st_size > 1000


def test_summary_page_leads_with_the_matched_kl_verdicts(tmp_path, monkeypatch):
    monkeypatch.setattr(verdicts, "FRONTIER_REPORT", tmp_path)
    render.plot_frontiers(_metrics(), tmp_path)
    text = verdicts.page({}, {}, {}, "## Findings\n", _metrics())
    first, old = text.index("## At matched KL"), text.index("## The old bench")
    assert first < text.index("**holds**") < old < text.index("| claim | sentiment")
    assert "![frontier-crowd_bt](../../frontier/report/frontier-crowd_bt.png)" in text
    assert "has not run yet" in verdicts.page({}, {}, {}, "", None)
