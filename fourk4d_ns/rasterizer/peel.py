"""The index pass: which points cover each pixel, L layers deep, near to far.

``peel_points`` dispatches to one of three backends computing the same thing:

- ``"cpu"``: C++/OpenMP extension (csrc/peel_cpu.cpp), tile binning + per-tile depth sort;
- ``"cuda"``: CUDA extension (csrc/peel_cuda.cu), the same algorithm, tile lists staged through
  shared memory;
- ``"torch"``: brute-force reference (reference.py), for small sizes and tests.

The compiled backends equal the reference bit for bit (see csrc/peel_common.h).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import torch

from . import build
from .projection import DEFAULT_NEAR, kernel_camera
from .reference import peel_points_reference
from .validation import finite_checks_on, validate_inputs

Tensor = torch.Tensor

BACKENDS = ("auto", "cpu", "cuda", "torch")


class PeelResult(NamedTuple):
    """Output of the index pass ([H, W, L], or [B, H, W, L] for batched cameras)."""

    idx: Tensor
    """int32 point indices, near to far; -1 in empty slots."""
    depth: Tensor
    """float32 camera z of those points; -1.0 in empty slots."""


_warned_cuda_fallback = False


def _stacked(outs: list) -> tuple[Tensor, Tensor]:
    """(idx, depth) of a camera batch from each camera's (idx, depth)."""
    return torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs])


def _run_compiled(module, xyz, radius, K, R, T, batch, height, width, layers, near):
    """(idx, depth) from the compiled ``module``, on the device of ``xyz``; stacked over a camera batch."""
    f32 = {"dtype": torch.float32, "device": xyz.device}
    xyz, radius = (t.detach().to(**f32).contiguous() for t in (xyz, radius.reshape(-1)))
    camera = kernel_camera(K, R, T)
    if batch is None:
        return tuple(module.peel_points(xyz, radius, camera, height, width, layers, near))
    return _stacked([module.peel_points(xyz, radius, c, height, width, layers, near) for c in camera])


def _run_reference(xyz, radius, K, R, T, batch, height, width, layers, near):
    if batch is None:
        return peel_points_reference(xyz, radius, K, R, T, height, width, layers, near)
    return _stacked(
        [peel_points_reference(xyz, radius, k, r, t, height, width, layers, near) for k, r, t in zip(K, R, T)]
    )


def _cpu_module(auto: bool):
    try:
        return build.load_cpu_extension()
    except build.ExtensionBuildError as exc:
        if auto:
            raise build.ExtensionBuildError(
                f"{exc}\nThe pure-torch reference still works but is far slower "
                "(memory and time grow with points x pixels): pass backend='torch' to use it."
            ) from exc
        raise


def peel_points(
    xyz: Tensor,
    radius: Tensor,
    K: Tensor,
    R: Tensor,
    T: Tensor,
    height: int,
    width: int,
    layers: int,
    backend: str = "auto",
    near: float = DEFAULT_NEAR,
    validate: bool | None = None,
) -> PeelResult:
    """Indices of the ``layers`` nearest points whose disc covers each pixel center.

    Args:
        xyz: [N, 3] world positions.
        radius: [N] (or [N, 1]) world radii; a disc of radius r at depth z spans fy * r / z pixels.
        K: [3, 3] OpenCV intrinsics (or [B, 3, 3] for a batch of cameras).
        R, T: world-to-camera rotation [3, 3] and translation [3]: x_cam = R x + T, y down,
            z forward (or [B, 3, 3], [B, 3]).
        height, width: image size in pixels.
        layers: L, slots per pixel.
        backend: "auto" (cuda for CUDA tensors, else cpu), "cpu", "cuda" or "torch".
        near: points with camera z < near are skipped (must be > 0).
        validate: also check that the inputs are finite (one device sync per tensor on a GPU);
            None: only when FOURK4D_DEBUG=1 is set. Shapes are always checked.

    Returns:
        PeelResult(idx, depth): ``idx`` [H, W, L] int32, ``depth`` [H, W, L] float32 (camera z),
        near to far, ties in depth broken by the smaller index. A point covers pixel (x, y) when
        the squared distance from (x + 0.5, y + 0.5) to its projection is strictly below rho^2.
        Empty slots hold -1 and -1.0. All arithmetic is float32. Not differentiable: feed ``idx``
        to ``composite`` for gradients.
    """
    global _warned_cuda_fallback
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    batch = validate_inputs(xyz, radius, K, R, T, finite=finite_checks_on(validate))
    if not (near > 0):
        raise ValueError(f"near must be positive, got {near}")
    for name, value in (("height", height), ("width", width), ("layers", layers)):
        if int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    height, width, layers, near = int(height), int(width), int(layers), float(near)
    args = (batch, height, width, layers, near)

    if backend == "torch":
        return PeelResult(*_run_reference(xyz, radius, K, R, T, *args))
    if backend == "cuda" or (backend == "auto" and xyz.is_cuda):
        if not xyz.is_cuda:
            raise ValueError("backend='cuda' needs CUDA tensors; move the inputs with .cuda()")
        try:
            module = build.load_cuda_extension()
        except build.ExtensionBuildError as exc:
            if backend == "cuda":
                raise
            if not _warned_cuda_fallback:
                warnings.warn(
                    f"{exc}\nRunning the index pass on the CPU backend instead (copies to host and back).",
                    RuntimeWarning,
                    stacklevel=2,
                )
                _warned_cuda_fallback = True
            idx, depth = _run_compiled(_cpu_module(auto=True), xyz.cpu(), radius.cpu(), K, R, T, *args)
            return PeelResult(idx.to(xyz.device), depth.to(xyz.device))
        return PeelResult(*_run_compiled(module, xyz, radius, K, R, T, *args))

    # cpu (explicit or auto on CPU tensors); results come back on the input device.
    module = _cpu_module(auto=backend == "auto")
    idx, depth = _run_compiled(module, xyz.cpu(), radius.cpu(), K, R, T, *args)
    return PeelResult(idx.to(xyz.device), depth.to(xyz.device))
