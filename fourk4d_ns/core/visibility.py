"""Visibility of points in the IBR source views: a source that sees another surface in front of a
point, or the background beside it, lends that point no color.

The published method has no such test, so a point on the torso behind an arm takes the arm's
color from a source that sees the arm, which smears texture across occlusion edges. Each source's
depth map is the index pass of the same frame's points from that source (one layer); a point is
hidden in a source when its depth there exceeds the map's by more than a tolerance (surface
thickness: neighbouring discs of the same surface sit a little in front of each other). Hidden
sources get their blend logit lowered by ``HIDDEN_LOGIT_PENALTY``: they drop out of the softmax,
and a point hidden in every source falls back to the plain blend (softmax ignores a shift common
to all logits), with no special case for the baked renderer to copy.

Source images are masked (black around the subject), so a point near a source's silhouette, or
one the carving placed a little outside the true surface, reads black there: a dark speck in
every view that blends that source. With the sources' masks, a source whose mask is not fully
foreground at the point's projection (bilinearly: all four neighbouring pixels) counts as hidden.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fourk4d_ns.rasterizer import peel_points

from .camera import project_points
from .ibr import pixels_to_grid

Tensor = torch.Tensor

HIDDEN_LOGIT_PENALTY = 10.0
"""Subtracted from a hidden source's blend logit: its weight falls by exp(-10) ~ 5e-5. Larger values would
cost float16 bakes precision (their spacing near 50 is 0.03) for points hidden in every source."""
FOREGROUND_READ = 0.999
"""A bilinear mask read at least this high has only foreground pixels around it."""


def first_surface_depth(
    xyz: Tensor, radius: Tensor, K: Tensor, R: Tensor, T: Tensor, height: int, width: int, backend: str, near: float
) -> Tensor:
    """[H, W] camera z of the nearest disc covering each pixel center, +inf where none does."""
    peel = peel_points(xyz, radius, K, R, T, height, width, 1, backend=backend, near=near)
    depth = peel.depth[..., 0]
    return torch.where(peel.idx[..., 0] >= 0, depth, torch.full_like(depth, float("inf")))


def hidden_in_sources(
    xyz: Tensor,
    K: Tensor,
    R: Tensor,
    T: Tensor,
    depth_maps: list[Tensor],
    tolerance: float,
    masks: list[Tensor] | None = None,
) -> Tensor:
    """[S, N] True where a point lies more than ``tolerance`` behind source s's first surface or,
    with ``masks`` ([1, H, W] each), where the bilinear read of s's mask at the point's projection is
    not fully foreground (the color read there mixes in background) or falls outside the image.

    Without masks, points projecting outside a source, or onto a pixel with no surface, count as
    visible (the border-padded color read there is what the published blend uses).
    """
    uv, z = project_points(xyz, K.to(xyz), R.to(xyz), T.to(xyz))  # [S, N, 2], [S, N]
    hidden = []
    for s, depth in enumerate(depth_maps):
        height, width = depth.shape
        col = uv[s, :, 0].floor().long()
        row = uv[s, :, 1].floor().long()
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
        front = depth[row.clamp(0, height - 1), col.clamp(0, width - 1)]
        hidden.append(inside & (z[s] > front + tolerance))
    hidden = torch.stack(hidden)
    if masks is not None:
        grid = pixels_to_grid(uv, [tuple(m.shape[-2:]) for m in masks])
        reads = [
            F.grid_sample(mask[None].to(xyz), grid[s][None, None], mode="bilinear", align_corners=False)[0, 0, 0]
            for s, mask in enumerate(masks)
        ]
        hidden |= torch.stack(reads) < FOREGROUND_READ
    return hidden
