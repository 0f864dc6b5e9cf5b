"""Brute-force index pass in pure torch: the reference the compiled backends must match exactly.

Every pixel tests every point, so memory and time grow with N * H * W: use it for small images
and tests. The float32 arithmetic follows ``csrc/peel_common.h`` op for op (see projection.py).
"""

from __future__ import annotations

import torch

from .projection import (
    EMPTY_DEPTH,
    EMPTY_INDEX,
    camera_coords,
    camera_to_pixels,
    pixel_centers,
)

Tensor = torch.Tensor


def peel_points_reference(
    xyz: Tensor,
    radius: Tensor,
    K: Tensor,
    R: Tensor,
    T: Tensor,
    height: int,
    width: int,
    layers: int,
    near: float,
    max_chunk_elements: int = 1 << 24,
) -> tuple[Tensor, Tensor]:
    """Index pass for one camera (K [3,3], R [3,3], T [3]); returns (idx, depth), [H, W, L].

    For each pixel center, the ``layers`` nearest points (by camera depth, ties by index) whose
    disc covers it: squared pixel distance strictly below rho^2. Points with z < near or a
    non-positive pixel radius are skipped. Empty slots hold -1 (index) and -1.0 (depth).
    """
    f32 = {"dtype": torch.float32, "device": xyz.device}
    xyz, radius = xyz.detach().to(**f32), radius.detach().reshape(-1).to(**f32)
    K, R, T = (t.detach().to(**f32) for t in (K, R, T))
    n = xyz.shape[0]

    xc, yc, zc = camera_coords(xyz, R, T)
    u, v, rho = camera_to_pixels(xc, yc, zc, radius, K)
    drawable = (zc >= torch.tensor(near, **f32)) & (rho > 0)
    rho2 = rho * rho
    px = pixel_centers(width, xyz.device)

    idx = torch.full((height, width, layers), EMPTY_INDEX, dtype=torch.int32, device=xyz.device)
    depth = torch.full((height, width, layers), EMPTY_DEPTH, **f32)
    if n == 0:
        return idx, depth
    take = min(layers, n)
    rows = max(1, max_chunk_elements // max(1, width * n))
    dx = px[:, None] - u[None, :]  # [W, N]
    dx2 = dx * dx
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        py = pixel_centers(height, xyz.device)[y0:y1]
        dy = py[:, None] - v[None, :]  # [h, N]
        d2 = dx2[None, :, :] + (dy * dy)[:, None, :]  # [h, W, N], dx*dx + dy*dy
        covers = (d2 < rho2) & drawable
        key = torch.where(covers, zc, torch.tensor(float("inf"), **f32))
        # Stable sort keeps increasing index order among equal depths: ties go to the smaller index.
        nearest, order = torch.sort(key, dim=-1, stable=True)
        nearest, order = nearest[..., :take], order[..., :take]
        hit = torch.isfinite(nearest)
        idx[y0:y1, :, :take] = torch.where(hit, order.to(torch.int32), EMPTY_INDEX)
        depth[y0:y1, :, :take] = torch.where(hit, nearest, EMPTY_DEPTH)
    return idx, depth
