"""Input checks shared by the index pass and the compositing.

Shape checks read only tensor metadata and always run. Finiteness checks read the data, which on a
GPU costs one device sync per tensor: the rasterizer's entry points run them when asked
(``validate=True``) or, by default, when ``FOURK4D_DEBUG=1`` is set.
"""

from __future__ import annotations

import torch

from fourk4d_ns.io.errors import debug_requested

Tensor = torch.Tensor


def finite_checks_on(validate: bool | None) -> bool:
    """Whether to check inputs for NaN and Inf: ``validate``, or when None whether FOURK4D_DEBUG=1 asks for it."""
    return debug_requested() if validate is None else bool(validate)


def _require_tensor(name: str, value) -> Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got {value.dtype}")
    return value


def _require_finite(name: str, value: Tensor) -> None:
    # A NaN or Inf element makes the sum non-finite, so a finite sum proves all are finite with one
    # cheap reduction; a non-finite sum (possibly mere overflow) falls back to the exact test.
    if value.numel() == 0 or bool(torch.isfinite(value.detach().sum())):
        return
    if not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or Inf)")


def camera_batch_size(K: Tensor, R: Tensor, T: Tensor) -> int | None:
    """Checks camera shapes; returns B for batched cameras ([B,3,3], [B,3,3], [B,3]) or None."""
    for name, value in (("K", K), ("R", R), ("T", T)):
        _require_tensor(name, value)
    if K.shape == (3, 3) and R.shape == (3, 3) and T.shape == (3,):
        return None
    if K.dim() == 3 and K.shape[1:] == (3, 3):
        b = K.shape[0]
        if R.shape == (b, 3, 3) and T.shape == (b, 3):
            return b
    raise ValueError(
        "expected cameras K [3,3], R [3,3], T [3] or batched K [B,3,3], R [B,3,3], T [B,3]; got "
        f"K {tuple(K.shape)}, R {tuple(R.shape)}, T {tuple(T.shape)}"
    )


def validate_inputs(
    xyz: Tensor,
    radius: Tensor,
    K: Tensor,
    R: Tensor,
    T: Tensor,
    density: Tensor | None = None,
    colors: Tensor | None = None,
    finite: bool = True,
) -> int | None:
    """Checks shapes and (with ``finite``) finiteness of rasterizer inputs; raises ValueError naming the argument.

    Expected shapes: xyz [N, 3]; radius [N] or [N, 1]; K [3, 3], R [3, 3], T [3] (or with a
    leading camera batch B); density [N], [N, 1] or [B, N]; colors [N, C] or [B, N, C].
    Returns the camera batch size (None for a single camera).
    """
    _require_tensor("xyz", xyz)
    if xyz.dim() != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz must be [N, 3], got {tuple(xyz.shape)}")
    n = xyz.shape[0]
    _require_tensor("radius", radius)
    if radius.shape not in ((n,), (n, 1)):
        raise ValueError(f"radius must be [N] or [N, 1] with N={n}, got {tuple(radius.shape)}")
    batch = camera_batch_size(K, R, T)
    named = [("xyz", xyz), ("radius", radius), ("K", K), ("R", R), ("T", T)]
    if density is not None:
        _require_tensor("density", density)
        ok = density.shape in ((n,), (n, 1)) or (batch is not None and density.shape == (batch, n))
        if not ok:
            raise ValueError(f"density must be [N], [N, 1] or [B, N] with N={n}, got {tuple(density.shape)}")
        named.append(("density", density))
    if colors is not None:
        _require_tensor("colors", colors)
        ok = (colors.dim() == 2 and colors.shape[0] == n) or (
            batch is not None and colors.dim() == 3 and colors.shape[:2] == (batch, n)
        )
        if not ok:
            raise ValueError(f"colors must be [N, C] or [B, N, C] with N={n}, got {tuple(colors.shape)}")
        named.append(("colors", colors))
    if finite:
        for name, value in named:
            _require_finite(name, value)
    return batch
