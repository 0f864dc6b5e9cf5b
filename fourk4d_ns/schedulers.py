"""Learning-rate decay whose checkpoints load with ``torch.load(weights_only=True)``.

nerfstudio's exponential decay returns NumPy floats, which end up in the scheduler's state in every
checkpoint; torch >= 2.6 then refuses to load them by default (ns-eval, ns-viewer and resuming all
call ``torch.load`` without ``weights_only=False``). This one computes the same curve in Python floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Type

from nerfstudio.engine.schedulers import ExponentialDecayScheduler, ExponentialDecaySchedulerConfig
from torch.optim import Optimizer, lr_scheduler


@dataclass
class PlainExponentialDecaySchedulerConfig(ExponentialDecaySchedulerConfig):
    """Exponential decay of the learning rate to final_fraction of itself over max_steps, in Python floats."""

    _target: Type = field(default_factory=lambda: PlainExponentialDecayScheduler)
    final_fraction: float = 0.1
    """Learning rate at max_steps as a fraction of the initial one (so changing lr keeps the curve's shape)."""


class PlainExponentialDecayScheduler(ExponentialDecayScheduler):
    """See the module docstring."""

    config: PlainExponentialDecaySchedulerConfig

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> lr_scheduler.LRScheduler:
        lr_final = lr_init * self.config.final_fraction if self.config.lr_final is None else self.config.lr_final
        warmup, total = self.config.warmup_steps, max(self.config.max_steps, self.config.warmup_steps + 1)

        def factor(step: int) -> float:
            if step < warmup:
                return float(step) / warmup
            t = min(max((step - warmup) / (total - warmup), 0.0), 1.0)
            return math.exp(math.log(lr_final / lr_init) * t)

        return lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
