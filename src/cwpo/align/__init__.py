"""Strong-model training: SFT, confidence-weighted DPO/IPO/rDPO on a pinned TRL subclass, online CW-DPO.

Import the submodules (``cwpo.align.align``, ``cwpo.align.sft``, ``cwpo.align.online``); they
import torch/TRL lazily so ``import cwpo.align`` stays cheap.
"""

from cwpo.align.align import AlignConfig, align
from cwpo.align.sft import SFTConfig, sft

__all__ = ["AlignConfig", "SFTConfig", "align", "sft"]
