"""One timed training step, as the speed benches time every trainer."""

from __future__ import annotations

import time


def timed_train_step(trainer, batch) -> float:
    """Seconds of one training step called directly: forward, backward, optimizer step, zero_grad."""
    start = time.perf_counter()
    trainer.training_step(trainer.model, dict(batch))
    trainer.optimizer.step()
    trainer.optimizer.zero_grad()
    return time.perf_counter() - start
