"""Pinhole projection of point discs, written op for op like ``csrc/peel_common.h``.

The compiled index pass and the torch reference must agree bit for bit, so the float32 arithmetic
is spelled out elementwise in the same order as ``project_disc`` in the header: no matrix products
(a matmul may reorder or fuse the sums) and no fused multiply-add. The same functions serve the
differentiable compositing, in any floating dtype.

Conventions: OpenCV camera, ``x_cam = R @ x_world + T`` (y down, z forward); pixel coordinates
``u = fx * x / z + cx``, ``v = fy * y / z + cy``, with the center of pixel (x, y) at
(x + 0.5, y + 0.5); a disc of world radius ``r`` at depth ``z`` has pixel radius
``rho = fy * r / z``.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

DEFAULT_NEAR = 0.01
"""Default near plane (scene units, e.g. metres): points with camera z below it are not drawn."""

EMPTY_INDEX = -1
"""Index stored in slots no point fills."""

EMPTY_DEPTH = -1.0
"""Depth stored in slots no point fills (valid depths are >= near > 0)."""


def camera_coords(xyz: Tensor, R: Tensor, T: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Camera-space coordinates of world points.

    Args:
        xyz: [N, 3] world points.
        R: [3, 3] or [B, 3, 3] world-to-camera rotation.
        T: [3] or [B, 3] translation.
    Returns:
        xc, yc, zc, each [N] (or [B, N] for batched cameras).
    """
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]

    def row(i: int) -> Tensor:
        # ((r0 * x + r1 * y) + r2 * z) + t, as in the header.
        r0, r1, r2 = R[..., i, 0, None], R[..., i, 1, None], R[..., i, 2, None]
        return ((r0 * x + r1 * y) + r2 * z) + T[..., i, None]

    return row(0), row(1), row(2)


def camera_to_pixels(xc: Tensor, yc: Tensor, zc: Tensor, radius: Tensor, K: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel center (u, v) and pixel radius rho of discs given in camera space.

    ``K`` is [3, 3] or [B, 3, 3]; ``radius`` is [N] (or broadcastable to ``zc``).
    """
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    u = (fx * xc) / zc + cx
    v = (fy * yc) / zc + cy
    rho = (fy * radius) / zc
    return u, v, rho


def project_discs(
    xyz: Tensor, radius: Tensor, K: Tensor, R: Tensor, T: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Projects points to discs: returns (u, v, depth, rho), each [N] or [B, N]."""
    xc, yc, zc = camera_coords(xyz, R, T)
    u, v, rho = camera_to_pixels(xc, yc, zc, radius, K)
    return u, v, zc, rho


def pixel_centers(size: int, device=None, dtype=torch.float32) -> Tensor:
    """Continuous coordinates of the pixel centers 0.5, 1.5, ..., size - 0.5."""
    return torch.arange(size, device=device, dtype=dtype) + 0.5


def kernel_camera(K: Tensor, R: Tensor, T: Tensor) -> Tensor:
    """The camera as the compiled kernels take it: K, R and T flattened (row major) into float32
    [21] (or [B, 21] for batched cameras) on the host.

    The kernels receive the camera by value, so it never needs to be in device memory; a camera
    that lives on a GPU costs one device-to-host copy here (one sync), the least there can be.
    """
    flat = torch.cat([K.flatten(-2), R.flatten(-2), T], dim=-1)
    return flat.to(device="cpu", dtype=torch.float32)
