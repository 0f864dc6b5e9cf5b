"""Image-based color of 4K4D (METHOD.md section 2): source views, their CNN features, the blend.

For a target view, S source views of the same frame are chosen (``nearest_sources``). A small
feature-pyramid CNN turns each source image into an 8-channel map at full resolution. Every point
is projected into every source (``K (R x + T)``; pixel (i, j) has its center at (i + 0.5, j + 0.5),
so with ``align_corners=False`` the grid coordinate of pixel coordinate u is ``2 u / W - 1``), the
[cnn 8, rgb 3] values there are read bilinearly with border padding, and an MLP on
[point feature 32, cnn 8, rgb 3] gives one logit per source. The color is the softmax-weighted
sum of the sampled source colors. The published method has no occlusion test (a point hidden in a
source still reads that source's pixel); ``core.visibility`` adds one as an option. The blend
logit never depends on the target view.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .camera import camera_center, project_points

Tensor = torch.Tensor

CNN_CHANNELS = 8
"""Channels of the source feature maps."""


def _as_image_list(images: Tensor | Sequence[Tensor], name: str) -> list[Tensor]:
    if isinstance(images, Tensor):
        if images.dim() != 4:
            raise ValueError(f"{name} must be [S, C, H, W] or a list of [C, H_i, W_i], got {tuple(images.shape)}")
        return list(images.unbind(0))
    out = list(images)
    for i, image in enumerate(out):
        if not isinstance(image, Tensor) or image.dim() != 3:
            raise ValueError(f"{name}[{i}] must be a [C, H, W] tensor")
    return out


@dataclass
class SourceViews:
    """The source views of one target view, supplied by the caller (same frame as the target).

    Images may have different sizes: pass a list of [3, H_i, W_i] tensors instead of one
    [S, 3, H, W] tensor. Cameras follow OpenCV: x_cam = R x + T, pixel centers at +0.5.
    """

    images: Tensor | Sequence[Tensor]
    """[S, 3, H, W] float in [0, 1] (uint8 is divided by 255), or a list of [3, H_i, W_i]."""
    K: Tensor
    """[S, 3, 3] intrinsics."""
    R: Tensor
    """[S, 3, 3] world-to-camera rotations."""
    T: Tensor
    """[S, 3] world-to-camera translations."""
    keys: Sequence[Hashable] | None = None
    """Optional cache key per source (e.g. (camera, frame)): CNN maps computed without gradients are reused."""
    features: Tensor | Sequence[Tensor] | None = None
    """Optional precomputed CNN maps ([S, 8, H, W] or a list of [8, H_i, W_i]); skips the CNN."""
    masks: Tensor | Sequence[Tensor] | None = None
    """Optional foreground masks ([S, 1, H, W] or a list of [1, H_i, W_i], 1 inside): with them the
    visibility test also drops sources whose color at a point is the background around the subject."""

    def __post_init__(self) -> None:
        images = _as_image_list(self.images, "SourceViews.images")
        s = len(images)
        if s == 0:
            raise ValueError("SourceViews needs at least one source image")
        for i, image in enumerate(images):
            if image.shape[0] != 3:
                raise ValueError(f"SourceViews.images[{i}] must have 3 channels, got {tuple(image.shape)}")
        expected = {"K": (s, 3, 3), "R": (s, 3, 3), "T": (s, 3)}
        for name, shape in expected.items():
            value = getattr(self, name)
            if not isinstance(value, Tensor) or tuple(value.shape) != shape:
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"SourceViews.{name} must be {shape} for {s} images, got {got}")
        if self.keys is not None and len(self.keys) != s:
            raise ValueError(f"SourceViews.keys must have one key per source ({s}), got {len(self.keys)}")
        if self.features is not None:
            feats = _as_image_list(self.features, "SourceViews.features")
            if len(feats) != s or any(f.shape[1:] != im.shape[1:] for f, im in zip(feats, images)):
                raise ValueError("SourceViews.features must be one [8, H_i, W_i] map per source image, same sizes")
        if self.masks is not None:
            masks = _as_image_list(self.masks, "SourceViews.masks")
            if len(masks) != s or any(m.shape != (1, *im.shape[1:]) for m, im in zip(masks, images)):
                raise ValueError("SourceViews.masks must be one [1, H_i, W_i] mask per source image, same sizes")

    def __len__(self) -> int:
        return self.K.shape[0]

    def image_list(self, device=None) -> list[Tensor]:
        """The images as float32 [3, H_i, W_i] tensors in [0, 1]."""
        out = []
        for image in _as_image_list(self.images, "SourceViews.images"):
            if not image.is_floating_point():
                image = image.float() / 255.0
            out.append(image.to(device=device, dtype=torch.float32))
        return out

    def feature_list(self, device=None) -> list[Tensor] | None:
        if self.features is None:
            return None
        return [f.to(device=device, dtype=torch.float32) for f in _as_image_list(self.features, "features")]

    def mask_list(self, device=None) -> list[Tensor] | None:
        """The masks as float32 [1, H_i, W_i] tensors (None without masks)."""
        if self.masks is None:
            return None
        return [m.to(device=device, dtype=torch.float32) for m in _as_image_list(self.masks, "SourceViews.masks")]

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of every source image."""
        return [tuple(image.shape[-2:]) for image in _as_image_list(self.images, "SourceViews.images")]

    def centers(self) -> Tensor:
        """Camera centers [S, 3], C = -R^T T."""
        return camera_center(self.R, self.T)

    def select(self, indices: Sequence[int]) -> SourceViews:
        """The sources at ``indices``, in that order."""
        indices = [int(i) for i in indices]
        images = _as_image_list(self.images, "SourceViews.images")
        feats = None if self.features is None else _as_image_list(self.features, "features")
        masks = None if self.masks is None else _as_image_list(self.masks, "SourceViews.masks")
        return replace(
            self,
            images=[images[i] for i in indices],
            K=self.K[indices],
            R=self.R[indices],
            T=self.T[indices],
            keys=None if self.keys is None else [self.keys[i] for i in indices],
            features=None if feats is None else [feats[i] for i in indices],
            masks=None if masks is None else [masks[i] for i in indices],
        )


def nearest_sources(
    target_center: Tensor,
    camera_centers: Tensor,
    count: int,
    exclude: int | Sequence[int] | None = None,
) -> Tensor:
    """Indices (int64, nearest first) of the ``count`` cameras whose centers are nearest the target's.

    Cameras listed in ``exclude`` (the target itself during training and evaluation) are never
    returned. Fewer than ``count`` indices come back when fewer cameras remain; none remaining is
    an error.
    """
    centers = torch.as_tensor(camera_centers, dtype=torch.float32).reshape(-1, 3)
    target = torch.as_tensor(target_center, dtype=torch.float32).reshape(1, 3).to(centers.device)
    dist = (centers - target).norm(dim=-1)
    available = dist.numel()
    if exclude is not None:
        keep = torch.ones_like(dist, dtype=torch.bool)
        for e in torch.as_tensor(exclude, dtype=torch.long).reshape(-1).tolist():
            if 0 <= e < dist.numel():
                keep[e] = False
        dist = torch.where(keep, dist, torch.full_like(dist, float("inf")))
        available = int(keep.sum())
    if available == 0:
        raise ValueError(f"no source camera left: {dist.numel()} cameras, excluded {exclude}")
    order = torch.argsort(dist, stable=True)
    return order[: min(int(count), available)]


def _conv_relu(cin: int, cout: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2), nn.ReLU(inplace=True))


class SourceFeatureNet(nn.Module):
    """Feature pyramid on source images: 3 -> 8 -> 8 (full), 16 (1/2), 32 (1/4), summed back to 8 at full size.

    Encoder as published (3x3 convolutions at full size, 5x5 stride-2 then 3x3 at each coarser
    level); decoder: 1x1 lateral convolutions to 32 channels, bilinear upsampling and sum, a 3x3
    convolution to 8 channels at full resolution. No normalization layers (the published network
    uses batch normalization over the S sources; without it the output does not depend on the
    batch or on train/eval mode, which keeps baked colors identical to training-time ones).
    """

    def __init__(self, out_channels: int = CNN_CHANNELS) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(_conv_relu(3, 8, 3, 1), _conv_relu(8, 8, 3, 1))
        self.conv1 = nn.Sequential(_conv_relu(8, 16, 5, 2), _conv_relu(16, 16, 3, 1))
        self.conv2 = nn.Sequential(_conv_relu(16, 32, 5, 2), _conv_relu(32, 32, 3, 1))
        self.top = nn.Conv2d(32, 32, 1)
        self.lateral1 = nn.Conv2d(16, 32, 1)
        self.lateral0 = nn.Conv2d(8, 32, 1)
        self.smooth0 = nn.Conv2d(32, out_channels, 3, padding=1)

    def forward(self, images: Tensor) -> Tensor:
        """Feature maps [B, 8, H, W] of images [B, 3, H, W] with values in [0, 1]."""
        c0 = self.conv0(images * 2 - 1)
        c1 = self.conv1(c0)
        c2 = self.conv2(c1)
        f = F.interpolate(self.top(c2), size=c1.shape[-2:], mode="bilinear", align_corners=False) + self.lateral1(c1)
        f = F.interpolate(f, size=c0.shape[-2:], mode="bilinear", align_corners=False) + self.lateral0(c0)
        return self.smooth0(f)


class FeatureCache:
    """Least-recently-used store of CNN feature maps, valid for one version of the CNN's weights."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self._store: OrderedDict[Hashable, Tensor] = OrderedDict()
        self._version: tuple[int, ...] | None = None

    def _sync(self, version: tuple[int, ...]) -> None:
        if version != self._version:
            self._store.clear()
            self._version = version

    def get(self, key: Hashable, version: tuple[int, ...]) -> Tensor | None:
        self._sync(version)
        value = self._store.get(key)
        if value is not None:
            self._store.move_to_end(key)
        return value

    def put(self, key: Hashable, version: tuple[int, ...], value: Tensor) -> None:
        if self.capacity <= 0:
            return
        self._sync(version)
        self._store[key] = value
        self._store.move_to_end(key)
        while len(self._store) > self.capacity:
            self._store.popitem(last=False)

    def clear(self) -> None:
        self._store.clear()

    def __len__(self) -> int:
        return len(self._store)


def project_to_grid(xyz: Tensor, K: Tensor, R: Tensor, T: Tensor, sizes: Sequence[tuple[int, int]]) -> Tensor:
    """``grid_sample`` coordinates [S, N, 2] (align_corners=False) of points xyz [N, 3] in S sources.

    Pixel coordinates are those of ``camera.project_points`` (pixel centers at +0.5), hence
    grid = (2 u / W - 1, 2 v / H - 1). Depths are floored at 1e-6 (points behind a source project
    somewhere harmless; there is no visibility test).
    """
    uv, _ = project_points(xyz, K, R, T)
    return pixels_to_grid(uv, sizes)


def pixels_to_grid(uv: Tensor, sizes: Sequence[tuple[int, int]]) -> Tensor:
    """``grid_sample`` coordinates (align_corners=False) [S, N, 2] of pixel coordinates uv [S, N, 2]
    in S images of ``sizes`` (height, width): grid = (2 u / W - 1, 2 v / H - 1)."""
    scale = torch.tensor([[2.0 / w, 2.0 / h] for h, w in sizes], dtype=uv.dtype, device=uv.device)
    return uv * scale[:, None, :] - 1


def sample_sources(xyz: Tensor, sources: SourceViews, images: list[Tensor], feature_maps: list[Tensor]) -> Tensor:
    """[cnn 8, rgb 3] values [S, N, 11] of every point in every source (bilinear, border padding)."""
    K, R, T = (t.to(xyz) for t in (sources.K, sources.R, sources.T))
    grid = project_to_grid(xyz, K, R, T, [tuple(im.shape[-2:]) for im in images])
    out = []
    for i, (image, feats) in enumerate(zip(images, feature_maps)):
        stacked = torch.cat([feats, image], dim=0)[None]  # [1, 11, H, W]
        value = F.grid_sample(stacked, grid[i][None, None], mode="bilinear", padding_mode="border", align_corners=False)
        out.append(value[0, :, 0].t())  # [N, 11]
    return torch.stack(out)


class BlendHead(nn.Module):
    """MLP [point feature 32, cnn 8, rgb 3] -> 64 -> 1 (ReLU): one blend logit per point and source."""

    def __init__(self, point_dim: int, hidden: int = 64, source_dim: int = CNN_CHANNELS + 3) -> None:
        super().__init__()
        self.point_dim = int(point_dim)
        self.hidden = nn.Linear(point_dim + source_dim, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, point_features: Tensor, samples: Tensor) -> Tensor:
        """Logits [S, N] from point features [N, 32] and source samples [S, N, 11].

        The first layer is split by input so the point-feature product is computed once for all
        sources (the same function as the 43-input layer applied to the concatenation).
        """
        w = self.hidden.weight
        h = F.linear(point_features, w[:, : self.point_dim], self.hidden.bias)[None] + F.linear(
            samples, w[:, self.point_dim :]
        )
        return self.out(torch.relu(h)).squeeze(-1)


def blend_colors(logits: Tensor, source_rgb: Tensor) -> Tensor:
    """c_ibr [N, 3] = sum_i softmax_i(logits) rgb_i, with logits [S, N] and rgb [S, N, 3]."""
    weights = torch.softmax(logits, dim=0)
    return (weights.unsqueeze(-1) * source_rgb).sum(0)
