"""LPIPS (VGG) when its backbone weights are already on this machine; one clear message when not.

torchmetrics' LPIPS downloads torchvision's VGG-16 weights when constructed, which fails offline,
so it is constructed only when the file is in torch's hub cache. It is held outside the model's
module tree: its ~58 MB of frozen weights are no part of a checkpoint, whichever machine wrote it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

VGG16_WEIGHTS = "vgg16-397923af.pth"
_warned = False


def vgg_weights_path() -> Path:
    """Where torchvision looks for the VGG-16 weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS


def load_lpips() -> torch.nn.Module | None:
    """An LPIPS-VGG metric module (inputs in [0,1], NCHW), or None (said once) when its weights are absent."""
    global _warned
    if not vgg_weights_path().is_file():
        if not _warned:
            print(
                f"LPIPS unavailable: VGG-16 weights not found at {vgg_weights_path()} "
                f"(set TORCH_HOME or copy {VGG16_WEIGHTS} there); the LPIPS loss and metric are skipped."
            )
            _warned = True
        return None
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    os.environ.setdefault("TORCH_HOME", str(Path(torch.hub.get_dir()).parent))
    return LearnedPerceptualImagePatchSimilarity(net_type="vgg", normalize=True).eval()


class Lpips:
    """LPIPS of [H,W,3] images in [0,1], loaded on first use; not an ``nn.Module`` (see the module docstring)."""

    def __init__(self) -> None:
        self._metric: torch.nn.Module | None = None
        self._loaded = False

    @property
    def available(self) -> bool:
        if not self._loaded:
            self._loaded = True
            self._metric = load_lpips()
        return self._metric is not None

    def __call__(self, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LPIPS of ``image`` against ``target`` (differentiable in ``image``); check ``available`` first."""
        if not self.available:
            raise RuntimeError("LPIPS is unavailable on this machine")
        metric = self._metric.to(image.device)
        nchw = lambda x: x.permute(2, 0, 1)[None].clamp(0, 1)  # noqa: E731
        return metric(nchw(image), nchw(target))
