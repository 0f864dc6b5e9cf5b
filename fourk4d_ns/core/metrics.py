"""Image-quality figures of a render against its masked ground truth, beyond PSNR/SSIM/LPIPS."""

from __future__ import annotations

import torch

Tensor = torch.Tensor

COVERED_ACCUMULATION = 0.9
"""A silhouette pixel counts as covered when the render's accumulation reaches this opacity."""


def coverage(accumulation: Tensor, mask: Tensor, threshold: float = COVERED_ACCUMULATION) -> float:
    """Fraction of the mask's pixels whose accumulation is at least ``threshold`` (1.0: no holes).

    Holes between points show as partly transparent pixels inside the subject; full-frame PSNR
    hides them when most of the frame is empty background. An empty mask counts as covered.
    """
    inside = mask.reshape(-1) > 0.5
    total = int(inside.sum())
    if total == 0:
        return 1.0
    covered = accumulation.reshape(-1)[inside] >= threshold
    return float(covered.sum()) / total


def masked_psnr(rgb: Tensor, image: Tensor, mask: Tensor) -> float:
    """PSNR over the mask's pixels only ([H, W, 3] images, [H, W, 1] mask)."""
    mse = ((rgb - image) ** 2 * mask).sum() / (mask.sum() * rgb.shape[-1]).clamp_min(1)
    return float(-10 * torch.log10(mse.clamp_min(1e-10)))


def error_magnitude(rgb: Tensor, image: Tensor, full_scale: float = 0.25) -> Tensor:
    """[H, W, 1] mean absolute color error divided by ``full_scale`` and clipped to [0, 1], for pictures."""
    return ((rgb - image).abs().mean(-1, keepdim=True) / full_scale).clamp(0, 1)
