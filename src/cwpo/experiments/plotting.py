"""Matplotlib for the reports: the headless backend and atomic PNG writes."""

from __future__ import annotations

from pathlib import Path

from cwpo.atomic_files import atomic_path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def savefig(fig, path: Path) -> None:
    """Write ``fig`` as a PNG at ``path`` atomically (a killed run leaves no half-written image)."""
    with atomic_path(Path(path), suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
