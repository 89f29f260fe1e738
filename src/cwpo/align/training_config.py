"""The training settings that ``cwpo sft`` and ``cwpo align`` share: schedule, LoRA, precision,
checkpoints. :class:`cwpo.align.sft.SFTConfig` and :class:`cwpo.align.align.AlignConfig` extend it
with what each stage trains on; their own defaults (the learning rate) and help texts override."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainingConfig:
    train: str = field(default="", metadata={"help": "the training file"})
    output: str = field(default="", metadata={"help": "result folder (model, metrics.json, manifest.json)"})
    epochs: float = field(
        default=1.0, metadata={"help": "training epochs (paper: 3 SFT, 5 alignment; CPU default 1)"}
    )
    max_steps: int | None = field(default=None, metadata={"help": "stop after this many optimizer steps"})
    lr: float = field(default=5e-5, metadata={"help": "peak learning rate (cosine schedule)"})
    batch_size: int = field(default=4, metadata={"help": "examples per device per micro-batch"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    warmup_ratio: float = field(
        default=0.1, metadata={"help": "warmup as a share of the steps (paper: 100 steps)"}
    )
    weight_decay: float = field(default=0.05, metadata={"help": "AdamW weight decay (paper: 0.05)"})
    lora: bool = field(default=True, metadata={"help": "train a LoRA adapter (false: full fine-tuning)"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (paper: 8)"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (paper: 16)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout (paper: 0.05)"})
    max_length: int = field(
        default=512, metadata={"help": "max tokens of prompt+response (longer are truncated)"}
    )
    bf16: bool | str = field(
        default="auto",
        metadata={"help": "bf16 (auto: measured at run time; true/false force it); see cwpo.runtime"},
    )
    save_steps: int = field(default=50, metadata={"help": "checkpoint every this many steps (for --resume)"})
    seed: int = field(default=0, metadata={"help": "seed of LoRA init, data order and dropout"})
    resume: bool = field(default=False, metadata={"help": "continue from the latest checkpoint in OUTPUT"})
    overwrite: bool = field(
        default=False,
        metadata={"help": "replace an earlier cwpo output of this stage at --output (never other files)"},
    )
