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
from types import ModuleType

import torch

from fourk4d_ns.core.camera import camera_center
from fourk4d_ns.core.heads import directions, view_dependent_color
from fourk4d_ns.core.ibr import blend_colors
from fourk4d_ns.rasterizer import DEFAULT_NEAR, Composited, build, composite, peel_points
from fourk4d_ns.rasterizer.projection import kernel_camera

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


def fused_module(backend: str, cuda: bool) -> ModuleType | None:
    """The compiled module rendering with ``backend`` tensors on a GPU (``cuda``) or the CPU; None for
    the torch backend. Builds it on first use (minutes, announced on stderr); raises
    ExtensionBuildError with the fix when it cannot be built, ValueError for a backend that does not
    fit the device."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return None
    if backend == "cuda" or (backend == "auto" and cuda):
        if not cuda:
            raise ValueError("backend='cuda' needs CUDA tensors; move the baked frame with .cuda()")
        return build.load_cuda_extension()
    if cuda:
        raise ValueError("backend='cpu' needs CPU tensors")
    return build.load_cpu_extension()


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
    module = fused_module(backend, xyz.is_cuda)
    sources = torch.as_tensor(sources, dtype=torch.int32).reshape(-1).cpu().contiguous()
    if not 1 <= sources.numel() <= MAX_SOURCES:
        raise ValueError(f"between 1 and {MAX_SOURCES} sources, got {sources.numel()}")
    if module is None:
        K, R, T = (torch.as_tensor(x, dtype=torch.float32, device=xyz.device) for x in (K, R, T))
        return _render_reference(
            xyz, radius, density, sh, ibr, sources, K, R, T, background, height, width, layers, near, sh_weight, "torch"
        )
    # The kernels take the camera and background by value: they stay on the host.
    camera = kernel_camera(*(torch.as_tensor(x) for x in (K, R, T)))
    bg = torch.zeros(3) if background is None else torch.as_tensor(background, dtype=torch.float32).reshape(3).cpu()
    args = [t.contiguous() for t in (xyz, radius.reshape(-1), density.reshape(-1), sh, ibr)]
    rgb, acc, depth = module.render_baked(
        *args, sources, camera, bg.contiguous(), int(height), int(width), int(layers), float(near), float(sh_weight)
    )
    return Composited(rgb, acc, depth)
