"""The 4D feature field F(x, t): six multi-resolution planes, features summed over planes.

Planes xy, xz, yz (spatial, square) and tx, ty, tz (one spatial axis against time). Each level is
a dense torch tensor sampled bilinearly with ``F.grid_sample``; the six planes' features are
summed and the levels concatenated (METHOD.md section 1). The published model uses tiny-cuda-nn
hash grids per plane; dense planes are the portable equivalent.

Conventions:
- x is normalized to [0, 1]^3 with the tight scene bounds and clamped (points outside read the
  border); t is in [0, 1] (frame / (num_frames - 1)).
- ``align_corners=True``: coordinate 0 is the first grid node and 1 the last, so the bounds map
  onto the outer nodes, and with one time row per frame frame f reads exactly row f (no blending
  of neighbouring frames in the time planes).
- The three planes of one kind and level are stored stacked, [3, C, rows, cols], and sampled with
  one ``grid_sample`` call (the batch dimension runs over the planes): two calls per level. When
  all points share one time (a rendered frame), the time planes are first interpolated to that
  time (two rows) and sampled as lines: the same values, far cheaper gradients.
- Initialization uniform in [-s, s] (s = 0.1): the summed features start small and zero-mean.
  (K-Planes starts its multiplied planes near 1; with summed planes, small and centered is the
  natural counterpart; the hash grids of the original start uniform in +-1e-4.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor

SPATIAL_PAIRS = ((0, 1), (0, 2), (1, 2))
"""Coordinate pairs (grid x -> columns, grid y -> rows) of the xy, xz and yz planes."""


class SixPlaneField(nn.Module):
    """Multi-resolution six-plane 4D feature field with summed plane features."""

    def __init__(
        self,
        bounds: Tensor,
        spatial_resolutions: Sequence[int],
        time_resolution: int,
        features_per_level: int,
        init_scale: float = 0.1,
    ) -> None:
        """
        Args:
            bounds: [2, 3] lower and upper corner of the scene box (the tight bounds).
            spatial_resolutions: plane side per level, e.g. (64, 128, 256, 512).
            time_resolution: rows of the time planes (same at every level).
            features_per_level: features per plane and level.
            init_scale: planes start uniform in [-init_scale, init_scale].
        """
        super().__init__()
        bounds = torch.as_tensor(bounds, dtype=torch.float32).reshape(2, 3)
        if not bool((bounds[1] > bounds[0]).all()):
            raise ValueError(f"bounds must be [lower, upper] with upper > lower, got {bounds.tolist()}")
        self.register_buffer("bounds", bounds.clone())
        c = int(features_per_level)
        self.features_per_level = c
        self.spatial = nn.ParameterList(
            nn.Parameter(torch.empty(3, c, r, r).uniform_(-init_scale, init_scale)) for r in spatial_resolutions
        )
        self.temporal = nn.ParameterList(
            nn.Parameter(torch.empty(3, c, int(time_resolution), r).uniform_(-init_scale, init_scale))
            for r in spatial_resolutions
        )

    @property
    def out_dim(self) -> int:
        return len(self.spatial) * self.features_per_level

    def normalize(self, xyz: Tensor) -> Tensor:
        """Positions [N, 3] -> [0, 1]^3 within the bounds, clamped."""
        lower, upper = self.bounds[0], self.bounds[1]
        return ((xyz - lower) / (upper - lower)).clamp(0.0, 1.0)

    def forward(self, xyz: Tensor, t: float | Tensor) -> Tensor:
        """Features [N, levels * C] of points xyz [N, 3] at time t (a float or [N], in [0, 1])."""
        n = xyz.shape[0]
        g = self.normalize(xyz.float()) * 2 - 1  # [N, 3] in [-1, 1]
        per_point_time = isinstance(t, Tensor) and t.numel() > 1
        # [3, 1, N, 2] sampling grids: (columns, rows) per plane.
        spatial_grid = torch.stack([g[:, list(pair)] for pair in SPATIAL_PAIRS])[:, None]
        if per_point_time:
            gt = t.reshape(n).to(g).clamp(0, 1) * 2 - 1
            temporal_grid = torch.stack([torch.stack([g[:, i], gt], dim=-1) for i in range(3)])[:, None]
        else:
            # One time for all points: interpolate the two time rows first, then sample lines
            # ([3, C, 1, R]); the same bilinear value, with a gradient scatter into small lines
            # instead of whole planes.
            t = min(max(float(t), 0.0), 1.0)
            temporal_grid = torch.stack([torch.stack([g[:, i], torch.zeros_like(g[:, i])], dim=-1) for i in range(3)])[
                :, None
            ]
        levels = []
        for spatial, temporal in zip(self.spatial, self.temporal):
            s = F.grid_sample(spatial, spatial_grid, mode="bilinear", padding_mode="border", align_corners=True)
            if not per_point_time:
                temporal = _time_slice(temporal, t)
            m = F.grid_sample(temporal, temporal_grid, mode="bilinear", padding_mode="border", align_corners=True)
            levels.append((s.sum(0) + m.sum(0)).reshape(self.features_per_level, n))  # [C, N]
        return torch.cat(levels, dim=0).t()  # [N, levels * C]


def _time_slice(planes: Tensor, t: float) -> Tensor:
    """Rows of time planes [3, C, rows, R] linearly interpolated at t in [0, 1] (align_corners=True): [3, C, 1, R]."""
    rows = planes.shape[2]
    pos = t * (rows - 1)
    i0 = min(int(pos), rows - 2)
    w = pos - i0
    if w < 1e-6:
        return planes[:, :, i0 : i0 + 1]
    if w > 1 - 1e-6:
        return planes[:, :, i0 + 1 : i0 + 2]
    return planes[:, :, i0 : i0 + 1] * (1 - w) + planes[:, :, i0 + 1 : i0 + 2] * w
