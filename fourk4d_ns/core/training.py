"""Training pieces of METHOD.md section 4: losses, the Adam optimizer, the learning-rate decay."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .config import ADAM_EPS, LR_DECAY, PUBLISHED_LEARNING_RATES

Tensor = torch.Tensor


def image_loss(pred: Tensor, target: Tensor, kind: str = "huber") -> Tensor:
    """Color loss: "huber" (delta 1; on [0, 1] colors this is 0.5 * MSE, as published) or "mse"."""
    if kind == "huber":
        return torch.nn.functional.huber_loss(pred, target, delta=1.0)
    if kind == "mse":
        return torch.nn.functional.mse_loss(pred, target)
    raise ValueError(f'kind must be "huber" or "mse", got {kind!r}')


def mask_loss(accumulation: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """Soft IoU loss 1 - sum(acc m) / sum(acc + m - acc m) (published weight 1e-3)."""
    acc = accumulation.reshape(-1)
    m = mask.reshape(-1).to(acc)
    inter = (acc * m).sum()
    return 1 - inter / (acc.sum() + m.sum() - inter + eps)


def build_optimizer(
    param_groups: Mapping[str, list],
    learning_rates: Mapping[str, float] | None = None,
    eps: float = ADAM_EPS,
) -> torch.optim.Adam:
    """Adam over ``FourK4DCore.param_groups()`` with the published learning rates (or overrides).

    Each group keeps its name under the key "name" and its initial rate under "initial_lr". Uses
    torch's fused Adam kernel (CPU and CUDA, torch >= 2.4): the foreach version is several times
    slower on CPU for the large planes.
    """
    rates = dict(PUBLISHED_LEARNING_RATES)
    rates.update(learning_rates or {})
    groups = []
    for name, params in param_groups.items():
        if name not in rates:
            raise KeyError(f"no learning rate for parameter group {name!r}")
        groups.append({"params": list(params), "lr": rates[name], "initial_lr": rates[name], "name": name})
    return torch.optim.Adam(groups, eps=eps, fused=True)


def decay_factor(step: int, max_steps: int, final_fraction: float = LR_DECAY, warmup_steps: int = 0) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up over ``warmup_steps``, then exponential decay
    to ``final_fraction`` at ``max_steps`` and constant after (published: 0.1 over the run, no warm-up)."""
    if step < warmup_steps:
        return step / warmup_steps
    total = max(max_steps, warmup_steps + 1)
    return final_fraction ** min(max((step - warmup_steps) / (total - warmup_steps), 0.0), 1.0)


def set_learning_rates(
    optimizer: torch.optim.Optimizer, step: int, max_steps: int, final_fraction: float = LR_DECAY
) -> None:
    """Applies the exponential decay to every group of an optimizer made by ``build_optimizer``."""
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * decay_factor(step, max_steps, final_fraction)
