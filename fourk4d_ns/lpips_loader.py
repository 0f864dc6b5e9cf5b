"""LPIPS (VGG) when its backbone weights are already on this machine; one clear message when not.

torchmetrics' LPIPS downloads torchvision's VGG-16 weights when constructed, which fails offline,
so it is constructed only when the file is in torch's hub cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

VGG16_WEIGHTS = "vgg16-397923af.pth"
_warned = False


def vgg_weights_path() -> Path:
    """Where torchvision looks for the VGG-16 weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS


def load_lpips() -> Optional[torch.nn.Module]:
    """An LPIPS-VGG metric module (inputs in [0,1], NCHW), or None (said once) when its weights are absent."""
    global _warned
    if not vgg_weights_path().is_file():
        if not _warned:
            print(f"LPIPS unavailable: VGG-16 weights not found at {vgg_weights_path()} "
                  f"(set TORCH_HOME or copy {VGG16_WEIGHTS} there); the LPIPS loss and metric are skipped.")
            _warned = True
        return None
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    os.environ.setdefault("TORCH_HOME", str(Path(torch.hub.get_dir()).parent))
    return LearnedPerceptualImagePatchSimilarity(net_type="vgg", normalize=True)
