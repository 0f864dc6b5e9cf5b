"""Random scenes for the rasterizer and the fused renderer, shared by the tests and by
``scripts/gpu_verify.py`` (which runs where only torch is installed: nothing here imports pytest).

- ``random_scene``: a random cloud with the awkward cases mixed in;
- ``baked_inputs``: the same cloud as a baked frame (densities, SH coefficients, baked colors);
- ``tie_scene``: a dense cloud on planes of constant depth, where most covering points tie in depth.
"""

from __future__ import annotations

import torch


def random_rotation(gen: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.float()


def camera(height: int, width: int, gen: torch.Generator, rotate: bool = True):
    f = 0.8 * max(height, width)
    fx = f * (0.8 + 0.4 * torch.rand((), generator=gen).item())
    K = torch.tensor([[fx, 0.0, width / 2 + 1.3], [0.0, f, height / 2 - 0.7], [0.0, 0.0, 1.0]])
    R = random_rotation(gen) if rotate else torch.eye(3)
    center = torch.tensor([0.0, 0.0, 3.0])  # the cloud's center sits 3 units in front of the camera
    T = center - R @ torch.zeros(3)
    # Points are generated in camera space and mapped to world space: x_w = R^T (x_c - T).
    return K, R, T


def random_scene(seed: int, n: int, height: int, width: int):
    """Random cloud with the awkward cases mixed in: points behind the camera and near the near
    plane, zero radii, duplicated points, points on pixel centers and on the image border."""
    gen = torch.Generator().manual_seed(seed)
    K, R, T = camera(height, width, gen, rotate=seed % 2 == 1)
    cam = torch.randn(n, 3, generator=gen) * torch.tensor([0.8, 0.8, 0.8]) + torch.tensor([0.0, 0.0, 3.0])
    k = n // 10
    cam[:k, 2] = -cam[:k, 2].abs()  # behind the camera
    cam[k : 2 * k, 2] = torch.rand(k, generator=gen) * 0.05  # around the near plane
    # Exactly on pixel centers, on the image border and beyond it, at z = 2.
    m = n // 10
    px = torch.randint(-2, width + 2, (m,), generator=gen).float()
    py = torch.randint(-2, height + 2, (m,), generator=gen).float()
    half = torch.randint(0, 2, (m,), generator=gen).float() * 0.5
    z = torch.full((m,), 2.0)
    cam[2 * k : 2 * k + m, 0] = (px + half - K[0, 2]) * z / K[0, 0]
    cam[2 * k : 2 * k + m, 1] = (py + half - K[1, 2]) * z / K[1, 1]
    cam[2 * k : 2 * k + m, 2] = z
    xyz = (cam - T) @ R  # R^T (x_c - T), row-vector form
    radius = torch.rand(n, generator=gen) * 0.08 * 3.0 * 24 / max(height, width) + 0.005
    radius[torch.rand(n, generator=gen) < 0.05] = 0.0
    # Duplicates: same position and radius at other indices (equal depths, ties by index).
    dup = torch.randint(0, n, (n // 8,), generator=gen)
    xyz[-(n // 8) :] = xyz[dup]
    radius[-(n // 8) :] = radius[dup]
    return xyz.contiguous(), radius, K, R, T


def baked_inputs(seed: int, n: int, cameras: int, height: int, width: int, dtype: torch.dtype, sh_degree: int = 3):
    """A random scene of ``random_scene`` (points behind the camera and near the near plane, zero
    radii, duplicates, points on pixel centers and the border) plus near-zero radii, densities,
    SH coefficients of ``sh_degree`` and baked colors and logits."""
    xyz, radius, K, R, T = random_scene(seed, max(n, 50), height, width)
    xyz, radius = xyz[:n].clone(), radius[:n].clone()
    gen = torch.Generator().manual_seed(1000 + seed)
    radius[torch.rand(n, generator=gen) < 0.03] = 1e-7
    density = 0.02 + 0.98 * torch.rand(n, generator=gen)
    sh = torch.randn(n, 3, 16, generator=gen)[..., : (sh_degree + 1) ** 2] * 0.7
    ibr = torch.cat(
        [
            torch.rand(cameras, n, 3, generator=gen),
            torch.randn(cameras, n, 1, generator=gen) * 2,
        ],
        -1,
    )
    tensors = [t.to(dtype).contiguous() for t in (xyz, radius, density, sh, ibr)]
    return tensors, K, R, T


def tie_scene(n: int, height: int, width: int, seed: int = 0, planes=(2.0, 2.5, 3.0)):
    """Dense cloud of exact depth ties: points on a few planes of constant camera depth (R = I, so
    the depth is the point's z exactly) at positions on a coarse pixel grid (so many points also
    share a position), with discs 3 to 6 pixels in radius. Every covered pixel sees many more
    covering points than it keeps, most at equal depths: ties go to the smaller index."""
    gen = torch.Generator().manual_seed(seed)
    f = 0.8 * max(height, width)
    K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    z = torch.tensor(planes)[torch.randint(0, len(planes), (n,), generator=gen)]
    # Pixel positions on a grid of 2-pixel cells, a little beyond the image on every side.
    px = 2.0 * torch.randint(-2, width // 2 + 2, (n,), generator=gen).float()
    py = 2.0 * torch.randint(-2, height // 2 + 2, (n,), generator=gen).float()
    rho = 3.0 + 3.0 * torch.randint(0, 4, (n,), generator=gen).float() / 3
    xyz = torch.stack([(px - K[0, 2]) * z / f, (py - K[1, 2]) * z / f, z], dim=1)
    return xyz.contiguous(), rho * z / f, K, torch.eye(3), torch.zeros(3)
