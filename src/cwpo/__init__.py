"""cwpo: Confidence-Weighted Preference Optimization (Afzali, Jeon, Brbić, ICLR 2026).

Pipeline: data -> weak annotator -> annotate with confidence -> SFT -> confidence-weighted
alignment -> evaluation -> report. Every stage is a library function with a thin CLI on top.
"""

__version__ = "0.1.0"
