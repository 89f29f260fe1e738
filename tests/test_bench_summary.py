"""benchmarks/summary/verdicts.py: the report's page leads with the verdicts, then the plots, then
the hand-written findings as written."""

from benchmarks.summary import verdicts


def test_page_is_verdicts_then_existing_plots_then_findings(tmp_path, monkeypatch):
    report = tmp_path / "summary" / "report"
    report.mkdir(parents=True)
    caption, rel = verdicts.PLOTS[0]
    (report / rel).parent.mkdir(parents=True)
    (report / rel).write_bytes(b"png")  # only this plot exists
    monkeypatch.setattr(verdicts, "REPORT", report)
    text = verdicts.page({}, {}, {}, "## What the results show\n\nProse.\n")
    assert text.startswith("# The paper's claims on this machine")
    table, plot, prose = text.index("| claim |"), text.index(f"![{caption}]({rel})"), text.index("Prose.")
    assert table < plot < prose and text.endswith("Prose.\n")
    assert all(f"]({r})" not in text for _, r in verdicts.PLOTS[1:])  # a missing plot is not linked


def test_every_plot_of_the_committed_page_exists():
    assert all((verdicts.REPORT / rel).exists() for _, rel in verdicts.PLOTS)
    page = (verdicts.REPORT / "README.md").read_text()
    assert page.index("| claim |") < page.index("![") < page.index("## What the results show")
