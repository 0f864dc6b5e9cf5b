"""Differentiable front-to-back compositing of the points chosen by the index pass.

The index pass only says which points cover a pixel. Here each slot's opacity is recomputed in
torch from those indices, so gradients reach positions (through the projection and the disc
radius), radii, densities and colors:

    alpha_k = clip(sigma * (1 - d^2 / rho^2), 0, 1)     (0 for empty slots)
    T_k = prod_{j<k} (1 - alpha_j),  w_k = T_k * alpha_k
    rgb = sum_k w_k c_k,  accumulation = sum_k w_k,  depth = sum_k w_k z_k

with d the distance from the pixel center to the projected point and rho = fy * r / z. (The
original implementation accumulates sigma instead of the weights; here accumulation is the
opacity sum_k w_k, consistent with the background mix.)

Memory is linear in H * W * L: per-point quantities are projected once ([N] or [B, N]) and
gathered once per slot; nothing of size N x H x W is formed. Pixels without any listed point are
skipped.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from .projection import DEFAULT_NEAR, camera_coords, camera_to_pixels
from .validation import finite_checks_on, validate_inputs

Tensor = torch.Tensor


class Composited(NamedTuple):
    """Compositing outputs ([H, W, ...], or [B, H, W, ...] for batched cameras)."""

    rgb: Tensor
    """[..., H, W, C] composited colors (background mixed in with 1 - accumulation)."""
    accumulation: Tensor
    """[..., H, W, 1] sum of the blending weights (opacity)."""
    depth: Tensor
    """[..., H, W, 1] weight-averaged camera z (not normalized by accumulation)."""


class _BlendSlots(torch.autograd.Function):
    """Alpha and front-to-back blending of gathered slots, with a hand-written backward pass.

    Inputs are per-point columns ([M] each; features [C, M]) and, for each of P pixels, the L slot
    entries ``slot`` [P * L] indexing those columns. Outputs [P, C + 2]: blended features,
    accumulation, depth. Fusing the per-slot math keeps the work to a few passes over [P, L]
    tensors and the backward pass to one index_add per column (autograd of the same expression
    takes about three times as many passes and memory).
    """

    @staticmethod
    def forward(ctx, slot, px, py, layers, u, v, inv_rho2, sigma, z, feats):
        def gather(column: Tensor) -> Tensor:
            return column.index_select(0, slot).view(-1, layers)

        dx = gather(u).neg_().add_(px)  # px - u
        dy = gather(v).neg_().add_(py)
        ir = gather(inv_rho2)
        sg = gather(sigma)
        q = torch.addcmul(dy * dy, dx, dx).mul_(ir).neg_().add_(1)  # 1 - d^2 / rho^2
        raw = q * sg
        in_range = (raw >= 0) & (raw <= 1)  # where the clip passes gradients
        alpha = raw.clamp_(0, 1)
        weights, transmittance = _weights_and_transmittance(alpha)
        zs = gather(z)
        out = torch.empty(weights.shape[0], feats.shape[0] + 2, dtype=u.dtype, device=u.device)
        for c in range(feats.shape[0]):
            torch.sum(weights * gather(feats[c]), dim=-1, out=out[:, c])
        torch.sum(weights, dim=-1, out=out[:, -2])
        torch.sum(weights * zs, dim=-1, out=out[:, -1])
        ctx.layers = layers
        ctx.sizes = (u.shape[0], feats.shape)
        ctx.save_for_backward(slot, dx, dy, ir, sg, q, in_range, alpha, transmittance, weights, zs, feats)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        slot, dx, dy, ir, sg, q, in_range, alpha, transmittance, weights, zs, feats = ctx.saved_tensors
        layers = ctx.layers
        m, feats_shape = ctx.sizes
        channels = feats_shape[0]

        def scatter(per_slot: Tensor) -> Tensor:  # [P, L] -> [M], summed per point
            return per_slot.new_zeros(m).index_add_(0, slot, per_slot.reshape(-1))

        grad_out = grad_out.contiguous()
        # dL/dw_k = g_acc + g_depth z_k + sum_c g_c f_kc
        grad_w = torch.addcmul(grad_out[:, -2:-1], grad_out[:, -1:], zs)
        grad_feats = grad_out.new_zeros(feats_shape)
        for c in range(channels):
            f = feats[c].index_select(0, slot).view(-1, layers)
            grad_w.addcmul_(grad_out[:, c : c + 1], f)
            grad_feats[c] = scatter(weights * grad_out[:, c : c + 1])
        grad_z = scatter(weights * grad_out[:, -1:])

        grad_alpha = _alpha_grad(alpha, transmittance, grad_w)
        grad_raw = grad_alpha.mul_(in_range)
        grad_sigma = scatter(grad_raw * q)
        grad_q = grad_raw.mul_(sg)  # dL/dq; q = 1 - d^2 ir
        grad_ir = scatter(torch.addcmul(dy * dy, dx, dx).mul_(grad_q).neg_())
        grad_d2_neg = grad_q.mul_(ir)  # -dL/d(d^2); d^2 = (px - u)^2 + (py - v)^2
        grad_u = scatter((dx * grad_d2_neg).mul_(2))  # dL/du = 2 (px - u) (-dL/d(d^2))
        grad_v = scatter((dy * grad_d2_neg).mul_(2))
        return None, None, None, None, grad_u, grad_v, grad_ir, grad_sigma, grad_z, grad_feats


def _weights_and_transmittance(alpha: Tensor):
    """w_k = T_k alpha_k with exclusive transmittance T_k = prod_{j<k} (1 - alpha_j)."""
    transmittance = torch.empty_like(alpha)
    transmittance[:, :1] = 1
    torch.cumprod(1 - alpha[:, :-1], dim=-1, out=transmittance[:, 1:])
    return transmittance * alpha, transmittance


def _alpha_grad(alpha: Tensor, transmittance: Tensor, grad_w: Tensor) -> Tensor:
    """dL/dalpha from dL/dw for w = front-to-back weights of alpha (last dim).

    dL/dalpha_k = T_k (g_k - S_k),  S_k = alpha_{k+1} g_{k+1} + (1 - alpha_{k+1}) S_{k+1},
    S_{L-1} = 0 (g = dL/dw). Unlike differentiating a cumprod, this never divides by 1 - alpha,
    so it stays exact when an alpha is 1.
    """
    layers = alpha.shape[-1]
    # Layer-major copies make each step of the recursion a contiguous elementwise op.
    a = alpha.movedim(-1, 0).contiguous()
    g = grad_w.movedim(-1, 0).contiguous()
    suffix = torch.empty_like(g)
    suffix[layers - 1] = 0
    for k in range(layers - 2, -1, -1):
        nxt = suffix[k + 1]  # S_k = S_{k+1} + a_{k+1} (g_{k+1} - S_{k+1})
        torch.addcmul(nxt, a[k + 1], g[k + 1] - nxt, out=suffix[k])
    return transmittance * (grad_w - suffix.movedim(0, -1))


class _FrontToBackWeights(torch.autograd.Function):
    """w_k = alpha_k * prod_{j<k} (1 - alpha_j) along the last dimension (see _alpha_grad)."""

    @staticmethod
    def forward(ctx, alpha: Tensor) -> Tensor:
        flat = alpha.reshape(-1, alpha.shape[-1])
        weights, transmittance = _weights_and_transmittance(flat)
        ctx.save_for_backward(flat, transmittance)
        return weights.view(alpha.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_w: Tensor) -> Tensor:
        alpha, transmittance = ctx.saved_tensors
        grad = _alpha_grad(alpha, transmittance, grad_w.reshape(alpha.shape))
        return grad.view(grad_w.shape)


def front_to_back_weights(alpha: Tensor) -> Tensor:
    """Blending weights w_k = alpha_k * prod_{j<k}(1 - alpha_j) over the last dim (differentiable,
    exact for alpha in [0, 1] including 1)."""
    return _FrontToBackWeights.apply(alpha)


def _as_batch(t: Tensor, batch: int, n: int, per_point_dims: int) -> Tensor:
    """[N, ...] or [B, N, ...] -> [B, N, ...] (a broadcast view, no copy)."""
    if t.dim() == per_point_dims:
        return t.unsqueeze(0).expand(batch, *t.shape)
    return t


def composite(
    idx: Tensor,
    xyz: Tensor,
    radius: Tensor,
    density: Tensor,
    colors: Tensor,
    K: Tensor,
    R: Tensor,
    T: Tensor,
    background: Tensor | None = None,
    near: float = DEFAULT_NEAR,
    validate: bool | None = None,
) -> Composited:
    """Composites the points listed in ``idx`` front to back, differentiably.

    Args:
        idx: [H, W, L] point indices from ``peel_points`` (near to far, -1 = empty), or
            [B, H, W, L] with batched cameras.
        xyz: [N, 3] world positions.
        radius: [N] or [N, 1] world radii.
        density: [N], [N, 1] or [B, N] opacity scale sigma.
        colors: [N, C] or [B, N, C] per-point features (any C), e.g. view-dependent colors.
        K, R, T: camera(s) as in ``peel_points`` ([3,3], [3,3], [3] or with a leading B).
        background: optional color broadcastable to [..., H, W, C]; added as
            ``(1 - accumulation) * background``. None means black (nothing added).
        near: the index pass's near plane; points closer than near / 2 (never listed) get
            placeholder projections so that their unused values cannot produce NaN gradients.
        validate: also check that the inputs are finite and ``idx`` in range (device syncs on a
            GPU); None: only when FOURK4D_DEBUG=1 is set. Shapes are always checked.

    Returns:
        Composited(rgb [..., H, W, C], accumulation [..., H, W, 1], depth [..., H, W, 1]), in the
        dtype of ``xyz`` (float32 or float64).
    """
    check_values = finite_checks_on(validate)
    batch = validate_inputs(xyz, radius, K, R, T, density, colors, finite=check_values)
    single = batch is None
    if single:
        K, R, T = K[None], R[None], T[None]
    if idx.dim() != (3 if single else 4) or idx.is_floating_point():
        raise ValueError(
            f"idx must be an integer tensor [H, W, L] for one camera or [B, H, W, L] for a batch, "
            f"got {tuple(idx.shape)} {idx.dtype}"
        )
    if single:
        idx = idx[None]
    batch, height, width, layers = idx.shape
    idx = idx.to(xyz.device)
    if K.shape[0] != batch:
        raise ValueError(f"idx has {batch} cameras but K/R/T have {K.shape[0]}")
    n = xyz.shape[0]
    dtype, device = xyz.dtype, xyz.device
    K, R, T = (t.to(device=device, dtype=dtype) for t in (K, R, T))

    # Per point and camera: pixel position, 1 / rho^2, sigma, depth and features ([B, N]).
    # Points that can never be drawn (behind the camera, zero radius) get harmless placeholders,
    # so that 0 * inf in their (zero) gradients cannot turn into NaN.
    xc, yc, zc = camera_coords(xyz, R, T)
    zc_safe = torch.where(zc >= 0.5 * near, zc, torch.ones_like(zc))
    u, v, rho = camera_to_pixels(xc, yc, zc_safe, radius.reshape(-1).to(dtype), K)
    rho2 = rho * rho
    inv_rho2 = 1 / torch.where(rho2 > 0, rho2, torch.ones_like(rho2))
    if density.dim() == 1 or density.shape == (n, 1):
        density = density.reshape(-1)
    sigma = _as_batch(density, batch, n, 1).to(dtype)
    feats = _as_batch(colors, batch, n, 2).to(dtype)
    channels = feats.shape[-1]

    # Only pixels with at least one listed point are composited; the others stay empty.
    flat_idx = idx.reshape(-1, layers)
    row_max = flat_idx.amax(dim=-1)
    if check_values and row_max.numel() and int(row_max.max()) >= n:
        raise ValueError(f"idx refers to point {int(row_max.max())} but xyz has only {n} points")
    pixels = (row_max >= 0).nonzero().squeeze(1)  # [P] flat (b, y, x)
    slot_idx = flat_idx.index_select(0, pixels).long()
    cam = pixels // (height * width)
    # Index into the per-camera point columns, flattened to [B * N + 1]; the extra last entry is
    # a zero that serves empty slots (sigma = 0 there, hence alpha = 0).
    slot = torch.where(slot_idx >= 0, slot_idx + (cam * n)[:, None], batch * n).reshape(-1)

    def column(t: Tensor) -> Tensor:  # [B, N] -> [B * N + 1], zero last
        return torch.cat([t.reshape(-1), t.new_zeros(1)])

    feat_columns = torch.cat(
        [feats.reshape(batch * n, channels).t(), feats.new_zeros(channels, 1)], dim=1
    ).contiguous()  # [C, B * N + 1]
    px = (pixels % width).to(dtype)[:, None] + 0.5
    py = ((pixels // width) % height).to(dtype)[:, None] + 0.5
    values = _BlendSlots.apply(
        slot, px, py, layers, column(u), column(v), column(inv_rho2), column(sigma), column(zc), feat_columns
    )
    image = torch.zeros(batch * height * width, channels + 2, dtype=dtype, device=device)
    image = image.index_copy(0, pixels, values)
    image = image.view(batch, height, width, channels + 2)
    rgb, accumulation, depth = image[..., :channels], image[..., -2:-1], image[..., -1:]
    if background is not None:
        rgb = rgb + (1 - accumulation) * background.to(device=device, dtype=dtype)
    if single:
        rgb, accumulation, depth = rgb[0], accumulation[0], depth[0]
    return Composited(rgb, accumulation, depth)
