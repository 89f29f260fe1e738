"""Every relative link of the README, the docs and the benchmark pages points at a file that exists
(a page moved or renamed breaks the reader's path long before anyone notices)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "benchmarks" / "README.md",
    REPO / "benchmarks" / "archive" / "README.md",
    REPO / "benchmarks" / "summary" / "report" / "README.md",
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    targets = [t for t in LINK.findall(page.read_text(encoding="utf-8")) if "://" not in t]
    missing = [t for t in targets if not (page.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"


def test_the_readme_starts_with_the_two_set_up_commands():
    assert (REPO / "README.md").read_text(encoding="utf-8").startswith("```bash\nmake demo\nmake test\n```\n")
