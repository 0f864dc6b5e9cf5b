"""Per-point heads on the field features: geometry, deformation and spherical-harmonics color."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor

# Real spherical-harmonics basis constants for l <= 3 (the convention of 3DGS / gsplat ``eval_sh``).
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


SH_DEGREES = (0, 1, 2, 3)
"""Degrees of the basis here and in the baked renderer's kernels."""


def sh_coefficients(degree: int) -> int:
    """Basis functions up to ``degree``: (degree + 1)^2."""
    return (degree + 1) ** 2


def sh_degree_of(num_coeffs: int) -> int:
    """The degree of ``num_coeffs`` coefficients per channel; ValueError unless it is one of SH_DEGREES."""
    for degree in SH_DEGREES:
        if sh_coefficients(degree) == num_coeffs:
            return degree
    counts = ", ".join(str(sh_coefficients(d)) for d in SH_DEGREES)
    raise ValueError(f"{num_coeffs} SH coefficients per channel; expected (degree + 1)^2, one of {counts}")


def sh_basis(dirs: Tensor, degree: int) -> Tensor:
    """Real SH basis [N, (degree+1)^2] at unit directions dirs [N, 3] (degree <= 3)."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [
            SH_C2[0] * xy,
            SH_C2[1] * yz,
            SH_C2[2] * (2 * zz - xx - yy),
            SH_C2[3] * xz,
            SH_C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            SH_C3[0] * y * (3 * xx - yy),
            SH_C3[1] * xy * z,
            SH_C3[2] * y * (4 * zz - xx - yy),
            SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            SH_C3[4] * x * (4 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def eval_sh(coeffs: Tensor, dirs: Tensor) -> Tensor:
    """SH values [N, 3] of coefficients coeffs [N, 3, B] at unit directions dirs [N, 3]."""
    degree = sh_degree_of(coeffs.shape[-1])
    basis = sh_basis(dirs, degree)  # [N, B]
    return torch.bmm(coeffs, basis.unsqueeze(-1)).squeeze(-1)


def mlp(sizes, activation: nn.Module) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation)
    return nn.Sequential(*layers)


class GeometryHead(nn.Module):
    """MLP 32 -> 64 -> 64 -> 2 (ReLU): radius = sigmoid(o0 - 5) (rmax - rmin) + rmin, density = sigmoid(o1 + 5)."""

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        radius_min: float,
        radius_max: float,
        radius_logit_offset: float = -5.0,
        density_logit_offset: float = 5.0,
    ) -> None:
        super().__init__()
        self.mlp = mlp([in_dim, hidden, hidden, 2], nn.ReLU())
        self.register_buffer("radius_limits", torch.tensor([radius_min, radius_max], dtype=torch.float32))
        # Buffers, not floats: a caller may set the starting radius from the data, and checkpoints keep it.
        self.register_buffer(
            "logit_offsets", torch.tensor([radius_logit_offset, density_logit_offset], dtype=torch.float32)
        )

    def start_radius_at(self, radius: float) -> None:
        """Set the radius offset so that an untrained head (outputs near 0) gives about ``radius``."""
        rmin, rmax = self.radius_limits.tolist()
        fraction = min(max((radius - rmin) / (rmax - rmin), 1e-4), 1 - 1e-4)
        self.logit_offsets[0] = float(torch.logit(torch.tensor(fraction)))

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Radius [N] (world units) and density [N] in (0, 1)."""
        out = self.mlp(features)
        rmin, rmax = self.radius_limits[0], self.radius_limits[1]
        radius = torch.sigmoid(out[:, 0] + self.logit_offsets[0]) * (rmax - rmin) + rmin
        density = torch.sigmoid(out[:, 1] + self.logit_offsets[1])
        return radius, density


class DeformationHead(nn.Module):
    """MLP 16 -> 64 -> 64 -> 3 (ReLU) whose output, times ``scale``, offsets a point.

    The last layer starts at zero, so training starts from the undeformed points (its weights
    still receive gradients from the first step).
    """

    def __init__(self, in_dim: int, hidden: int, scale: float = 0.1) -> None:
        super().__init__()
        self.mlp = mlp([in_dim, hidden, hidden, 3], nn.ReLU())
        self.scale = float(scale)
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: Tensor) -> Tensor:
        """Offsets delta [N, 3] (world units), x = p + delta."""
        return self.scale * self.mlp(features)


class SHHead(nn.Module):
    """MLP 32 -> 64 -> 3 * (degree+1)^2 (softplus): SH coefficients [N, 3, (degree+1)^2]."""

    def __init__(self, in_dim: int, hidden: int, degree: int = 3) -> None:
        super().__init__()
        self.degree = int(degree)
        self.num_coeffs = sh_coefficients(self.degree)
        self.mlp = mlp([in_dim, hidden, 3 * self.num_coeffs], nn.Softplus())

    def forward(self, features: Tensor) -> Tensor:
        return self.mlp(features).view(-1, 3, self.num_coeffs)


def view_dependent_color(c_ibr: Tensor, sh: Tensor, dirs: Tensor, weight: float = 0.25) -> Tensor:
    """c = clip(c_ibr + weight * tanh(SH(d)), 0, 1) for unit directions d [N, 3] (camera -> point)."""
    return (c_ibr + weight * torch.tanh(eval_sh(sh, dirs))).clamp(0.0, 1.0)


def directions(xyz: Tensor, camera_center: Tensor) -> Tensor:
    """Unit directions [N, 3] from the camera center to the points (points detached)."""
    return F.normalize(xyz.detach() - camera_center.to(xyz).reshape(1, 3), dim=-1)
