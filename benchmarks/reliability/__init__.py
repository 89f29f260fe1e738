"""Reliability: whether what a run writes can be trusted (output safety)."""
