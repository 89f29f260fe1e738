"""The accelerate launch configs shipped with cwpo (``src/cwpo/configs/accelerate/*.yaml``).

``accelerate launch --config_file "$(cwpo accelerate-config fsdp)" -m cwpo.cli.main align ...``
runs a stage with that strategy; ``--num_processes N`` on the command line overrides the file's 2.
They follow TRL's ``examples/accelerate_configs``. DDP and FSDP run anywhere torch.distributed does
(the tests run them on CPU with gloo); the DeepSpeed ZeRO configs need GPUs and ``pip install
deepspeed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cwpo.errors import ConfigError


@dataclass(frozen=True)
class LaunchConfig:
    name: str
    what: str
    gpu_only: bool

    @property
    def path(self) -> Path:
        return Path(str(resources.files("cwpo") / "configs" / "accelerate" / f"{self.name}.yaml"))


ACCELERATE_CONFIGS = {
    c.name: c
    for c in (
        LaunchConfig("ddp", "data parallel: a full model per process, gradients averaged", False),
        LaunchConfig("fsdp", "PyTorch FSDP2: parameters, gradients, optimizer state sharded", False),
        LaunchConfig("zero2", "DeepSpeed ZeRO-2: optimizer state and gradients sharded", True),
        LaunchConfig("zero3", "DeepSpeed ZeRO-3: parameters, gradients, optimizer state sharded", True),
    )
}


def accelerate_config(name: str) -> Path:
    """The path of the shipped config ``name`` (ddp, fsdp, zero2, zero3)."""
    if name not in ACCELERATE_CONFIGS:
        raise ConfigError(
            f"unknown accelerate config {name!r}; choose one of {', '.join(ACCELERATE_CONFIGS)}"
        )
    return ACCELERATE_CONFIGS[name].path
