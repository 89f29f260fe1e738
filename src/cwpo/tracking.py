"""The ``report_to`` setting shared by every training stage: which trackers, and are they usable.

``sft``, ``align`` (through the Trainer) and ``train-annotator`` (its own loop) read the same
setting; the names are transformers' reporting integrations.
"""

from __future__ import annotations


def report_targets(report_to: str | list[str]) -> list[str]:
    """The integrations of a ``report_to`` setting (``"none"`` is none, ``"a,b"`` two)."""
    names = report_to.split(",") if isinstance(report_to, str) else list(report_to)
    names = [n.strip() for n in names if n.strip()]
    return [] if names in ([], ["none"]) else names


def report_to_errors(report_to: str | list[str]) -> list[str]:
    """Unknown or uninstalled tracking integrations, named (checked before any model is loaded)."""
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    names = report_targets(report_to)
    if names == ["all"]:
        return []
    known = sorted(INTEGRATION_TO_CALLBACK)
    unknown = [n for n in names if n not in INTEGRATION_TO_CALLBACK]
    if unknown:
        return [f"report_to: unknown {', '.join(unknown)}; use none, all or some of {', '.join(known)}"]
    available = set(get_available_reporting_integrations())
    missing = [n for n in names if n not in available]
    if missing:
        return [f"report_to: {', '.join(missing)} is not installed (pip install {' '.join(missing)})"]
    return []
