"""Learning-rate decay whose checkpoints load with ``torch.load(weights_only=True)``.

nerfstudio's exponential decay returns NumPy floats, which end up in the scheduler's state in every
checkpoint; torch >= 2.6 then refuses to load them by default (ns-eval, ns-viewer and resuming all
call ``torch.load`` without ``weights_only=False``). This one computes the same curve in Python floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nerfstudio.engine.schedulers import ExponentialDecayScheduler, ExponentialDecaySchedulerConfig
from torch.optim import Optimizer, lr_scheduler

from fourk4d_ns.core.training import decay_factor


@dataclass
class PlainExponentialDecaySchedulerConfig(ExponentialDecaySchedulerConfig):
    """Exponential decay of the learning rate to final_fraction of itself over max_steps, in Python floats."""

    _target: type = field(default_factory=lambda: PlainExponentialDecayScheduler)
    final_fraction: float = 0.1
    """Learning rate at max_steps as a fraction of the initial one (so changing lr keeps the curve's shape)."""


class PlainExponentialDecayScheduler(ExponentialDecayScheduler):
    """See the module docstring."""

    config: PlainExponentialDecaySchedulerConfig

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> lr_scheduler.LRScheduler:
        c = self.config
        final_fraction = c.final_fraction if c.lr_final is None else c.lr_final / lr_init
        return lr_scheduler.LambdaLR(
            optimizer, lr_lambda=lambda step: decay_factor(step, c.max_steps, final_fraction, c.warmup_steps)
        )
