"""Evaluation: generation, gold rewards, GRA, preference accuracy and LLM-judge win-rate.

Imports are lazy (``from cwpo.evaluate.evaluate import evaluate``) so that importing this package
does not load torch.
"""

from cwpo.evaluate.metrics import gra, preference_accuracy, win_rate

__all__ = ["gra", "preference_accuracy", "win_rate"]
