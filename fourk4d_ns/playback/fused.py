"""One-pass rendering of baked points: per-point color, rasterization and compositing fused.

``render_baked_points`` takes one baked frame (positions, radii, densities, SH coefficients, and
for every training camera the IBR color and blend logit of every point), the cameras whose baked
colors are blended for this view, and a target camera. Backends:

- ``"cpu"``: C++/OpenMP (rasterizer/csrc/render_cpu.cpp), tile binning shared with the index pass;
- ``"cuda"``: CUDA (rasterizer/csrc/render_cuda.cu);
- ``"torch"``: the same computation as separate steps (``baked_colors``, then ``peel_points`` and
  ``composite``), the reference the kernels are tested against.

The kernels read float16 or float32 inputs and compute in float32. Not differentiable.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fourk4d_ns.core.camera import camera_center
from fourk4d_ns.core.heads import directions, view_dependent_color
from fourk4d_ns.core.ibr import blend_colors
from fourk4d_ns.rasterizer import DEFAULT_NEAR, Composited, build, composite, peel_points

Tensor = torch.Tensor

BACKENDS = ("auto", "cpu", "cuda", "torch")
MAX_SOURCES = 16
"""Most cameras blended per view (kMaxSources in csrc/blend_common.h)."""


def baked_colors(
    xyz: Tensor, sh: Tensor, ibr: Tensor, sources: Sequence[int] | Tensor, center: Tensor, sh_weight: float = 0.25
) -> Tensor:
    """Colors [N, 3] seen from ``center``: softmax-blended baked colors of ``sources`` plus the SH term.

    Args:
        xyz: [N, 3] positions; sh: [N, 3, (d+1)^2] SH coefficients of degree d in 0..3;
        ibr: [C, N, 4] baked rgb + logit.
        sources: indices of the cameras to blend (into ibr's first dimension).
        center: [3] camera center of the view.
    """
    chosen = ibr[torch.as_tensor(sources, dtype=torch.long, device=ibr.device)].float()
    c_ibr = blend_colors(chosen[..., 3], chosen[..., :3])
    return view_dependent_color(c_ibr, sh.float(), directions(xyz.float(), center.float()), sh_weight)


def _render_reference(
    xyz, radius, density, sh, ibr, sources, K, R, T, background, height, width, layers, near, sh_weight, peel_backend
):
    center = camera_center(R, T)
    colors = baked_colors(xyz, sh, ibr, sources, center, sh_weight)
    xyz, radius, density = xyz.float(), radius.float(), density.float()
    peel = peel_points(xyz, radius, K, R, T, height, width, layers, backend=peel_backend, near=near)
    return composite(peel.idx, xyz, radius, density, colors, K, R, T, background=background, near=near)


def render_baked_points(
    xyz: Tensor,
    radius: Tensor,
    density: Tensor,
    sh: Tensor,
    ibr: Tensor,
    sources: Sequence[int] | Tensor,
    K: Tensor,
    R: Tensor,
    T: Tensor,
    height: int,
    width: int,
    layers: int,
    background: Tensor | None = None,
    near: float = DEFAULT_NEAR,
    sh_weight: float = 0.25,
    backend: str = "auto",
) -> Composited:
    """Renders one baked frame from camera (K, R, T) in one pass.

    Args:
        xyz, radius, density: [N, 3], [N], [N] (float16 or float32, one dtype for all).
        sh: [N, 3, (d+1)^2] SH coefficients of the color residual, degree d in 0..3 (the kernels
            take the coefficient count, 1, 4, 9 or 16, from its last dimension).
        ibr: [C, N, 4] per camera and point: baked IBR color (rgb) and blend logit.
        sources: the 1 to 16 cameras (indices into ``ibr``) blended for this view.
        K, R, T: target camera [3, 3], [3, 3], [3] (OpenCV, world to camera).
        height, width, layers: image size and points composited per pixel (L).
        background: color [3] mixed in with (1 - accumulation); None is black.
        near, sh_weight: near plane; weight of tanh(SH) in the color.
        backend: "auto" (cuda for CUDA tensors, else cpu), "cpu", "cuda" or "torch".

    Returns:
        Composited(rgb [H, W, 3], accumulation [H, W, 1], depth [H, W, 1]) in float32.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    sources = torch.as_tensor(sources, dtype=torch.int32).reshape(-1).cpu().contiguous()
    if not 1 <= sources.numel() <= MAX_SOURCES:
        raise ValueError(f"between 1 and {MAX_SOURCES} sources, got {sources.numel()}")
    if backend == "torch":
        K, R, T = (torch.as_tensor(x, dtype=torch.float32, device=xyz.device) for x in (K, R, T))
        return _render_reference(
            xyz, radius, density, sh, ibr, sources, K, R, T, background, height, width, layers, near, sh_weight, "torch"
        )
    # The kernels read the camera on the host: keep it there (no device round trip per frame).
    K, R, T = (torch.as_tensor(x, dtype=torch.float32).cpu() for x in (K, R, T))
    bg = torch.zeros(3) if background is None else torch.as_tensor(background, dtype=torch.float32).reshape(3)
    args = [t.contiguous() for t in (xyz, radius.reshape(-1), density.reshape(-1), sh, ibr)]
    if backend == "cuda" or (backend == "auto" and xyz.is_cuda):
        if not xyz.is_cuda:
            raise ValueError("backend='cuda' needs CUDA tensors; move the baked frame with .cuda()")
        module = build.load_cuda_extension()
    else:
        if xyz.is_cuda:
            raise ValueError("backend='cpu' needs CPU tensors")
        module = build.load_cpu_extension()
    rgb, acc, depth = module.render_baked(
        *args, sources, K, R, T, bg.cpu(), int(height), int(width), int(layers), float(near), float(sh_weight)
    )
    return Composited(rgb, acc, depth)
