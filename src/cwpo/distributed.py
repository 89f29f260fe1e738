"""This process's place under ``accelerate launch`` (or torchrun): rank, world size, barrier.

One process (no launcher) is world 1, rank 0, and every call here is a no-op, so a stage written
against :class:`Ranks` runs unchanged with or without a launcher. Under a launcher the process
group is accelerate's (``PartialState``: NCCL on GPUs, gloo on CPUs). Stages that shard work
(annotation, generation, annotator training) take every ``world``-th item from ``rank``, and rank
0 alone writes the one output after a barrier: the ranks must share the output's file system.
"""

from __future__ import annotations

import os
from functools import cache

import torch


class Ranks:
    """Rank, world size and a barrier: accelerate's state under a launcher, trivial otherwise."""

    def __init__(self):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            self.state = PartialState(cpu=not torch.cuda.is_available())
            self.rank, self.world = self.state.process_index, self.state.num_processes
            self.device = self.state.device
        else:
            self.state, self.rank, self.world = None, 0, 1
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def mine(self, n: int) -> list[int]:
        """The indices ``0..n-1`` this rank handles: ``rank, rank + world, ...``."""
        return list(range(self.rank, n, self.world))

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the ranks, in place (itself in one process)."""
        if self.world > 1:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def sum_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Sum the gradients of ``params`` over the ranks (each rank's loss is its share of the mean
        over the global batch, so the sum is the one-process gradient of that mean). A rank that
        computed no gradient for a parameter contributes zeros, so every rank reduces the same list."""
        if self.world == 1:
            return
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.SUM)


@cache
def ranks() -> Ranks:
    """This process's :class:`Ranks` (created once)."""
    return Ranks()
