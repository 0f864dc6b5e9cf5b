"""Settings of the 4K4D point model (METHOD.md sections 1-4), published defaults unless noted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PUBLISHED_LEARNING_RATES = {
    "points": 1e-5,  # per-frame point positions (the published code floors this at 5e-5 by accident)
    "planes": 5e-3,  # dense feature planes of the 4D field (and of the deformation field)
    "cnn": 5e-3,  # source-image feature CNN
    "appearance": 5e-3,  # IBR blend MLP and SH head
    "geometry": 5e-4,  # geometry head (radius, density)
    "deformation": 5e-4,  # deformation MLP
}
"""Adam learning rates per parameter group of ``FourK4DCore.param_groups`` (published values)."""

ADAM_EPS = 1e-15
"""Adam epsilon of the published training."""

LR_DECAY = 0.1
"""Published exponential decay: every learning rate falls to this fraction over the whole run."""


@dataclass
class CoreConfig:
    """Architecture and rendering settings of ``FourK4DCore``."""

    # 4D feature field (K-Planes variant, features of the six planes summed)
    spatial_resolutions: tuple[int, ...] = (64, 128, 256, 512)
    """Side in cells of the xy, xz, yz planes (and the spatial side of tx, ty, tz) at each level."""
    features_per_level: int = 8
    """Features per plane and level; levels are concatenated (4 x 8 = 32 features per point)."""
    time_resolution: int | None = None
    """Rows of the tx, ty, tz planes along time at every level; None: max(2, num_frames), one row per frame."""
    plane_init_scale: float = 0.1
    """Planes start uniform in [-scale, scale] (small: the summed features start near zero)."""

    # geometry
    geometry_hidden: int = 64
    """Width of the two hidden layers of the geometry head (32 -> 64 -> 64 -> 2)."""
    radius_min_fraction: float = 0.0005
    """Smallest point radius as a fraction of the bounds' largest side (published 0.001 m for a ~2 m subject)."""
    radius_max_fraction: float = 0.0075
    """Largest point radius as a fraction of the bounds' largest side (published 0.015 m for a ~2 m subject)."""
    radius_logit_offset: float = -5.0
    """radius = sigmoid(o0 + offset) * (max - min) + min; published -5 (points start small)."""
    density_logit_offset: float = 5.0
    """density = sigmoid(o1 + offset); published +5 (points start nearly opaque)."""

    # optional deformation
    use_deformation: bool = False
    """Offset each frame's points by x = p + scale * MLP(F_pcd(p, t)) (published optional, off by default)."""
    deformation_resolutions: tuple[int, ...] = (32, 64)
    """Levels of the deformation's own six-plane field (2 levels x 8 features = the published 16 inputs)."""
    deformation_features_per_level: int = 8
    """Features per level of the deformation field."""
    deformation_hidden: int = 64
    """Width of the two hidden layers of the deformation MLP (16 -> 64 -> 64 -> 3)."""
    deformation_scale: float = 0.1
    """Scale of the deformation MLP's output (published 0.1, in scene units)."""
    deformation_loss_weight: float = 1.0
    """Weight of the L2 penalty mean(delta^2) on the applied offsets (published 1.0)."""

    # appearance
    num_sources: int = 4
    """S, source views blended by the IBR head for each target view (published 4)."""
    blend_hidden: int = 64
    """Hidden width of the blend MLP (43 -> 64 -> 1)."""
    sh_degree: int = 3
    """Degree of the spherical-harmonics residual, 0 to 3 ((degree + 1)^2 coefficients per color channel; 3: 16)."""
    sh_hidden: int = 64
    """Hidden width of the SH head (32 -> 64 -> 3 * (degree + 1)^2, softplus)."""
    sh_weight: float = 0.25
    """c = clip(c_ibr + sh_weight * tanh(SH(d)), 0, 1) (published 0.25)."""
    ibr_visibility: bool = True
    """Give a source no blend weight for points it sees hidden behind another surface (its depth map
    from the index pass) or, given masks, outside the subject's silhouette (where its color is the
    background). Not in the published method, which blends every source (False)."""
    visibility_tolerance_fraction: float = 0.02
    """A point is hidden in a source when it lies this fraction of the bounds' largest side behind
    the source's first surface (allows for the thickness of overlapping discs)."""
    visibility_refresh_updates: int = 16
    """In training, a source depth map is reused until its frame's points had this many optimizer updates."""
    cnn_full_training_steps: int = 1000
    """The source CNN receives gradients in every step before this one ..."""
    cnn_train_every: int = 100
    """... and afterwards only every this many steps (it runs without gradients otherwise)."""
    feature_cache_size: int = 64
    """Source-image CNN feature maps kept (by the caller's keys) for steps without CNN gradients, and
    as many source depth maps for the visibility test."""

    # rendering
    layers: int = 15
    """K, points composited per pixel (published 15 for training; ~11 suffices for real time)."""
    background: Literal["black", "white", "random"] = "black"
    """Background mixed with (1 - accumulation): "black" (published; targets are masked), "white" or "random"."""
    near: float = 0.01
    """Near plane in scene units: points closer to the camera are not drawn."""
    rasterizer_backend: Literal["auto", "cpu", "cuda", "torch"] = "auto"
    """Backend of the index pass: "auto", "cpu", "cuda" or "torch" (reference)."""
    visible_points_only: bool = True
    """Evaluate the differentiable per-point model only on points the index pass listed (same result, faster)."""

    def __post_init__(self) -> None:
        if not self.spatial_resolutions or min(self.spatial_resolutions) < 2:
            raise ValueError(f"spatial_resolutions must be sides >= 2, got {self.spatial_resolutions}")
        if self.time_resolution is not None and self.time_resolution < 2:
            raise ValueError(f"time_resolution must be >= 2 or None, got {self.time_resolution}")
        if not 0 < self.radius_min_fraction < self.radius_max_fraction:
            raise ValueError(
                "radius fractions must satisfy 0 < radius_min_fraction < radius_max_fraction, got "
                f"{self.radius_min_fraction}, {self.radius_max_fraction}"
            )
        if self.background not in ("black", "white", "random"):
            raise ValueError(f'background must be "black", "white" or "random", got {self.background!r}')
        if self.num_sources < 1 or self.layers < 1 or self.sh_degree not in (0, 1, 2, 3):
            raise ValueError("num_sources and layers must be >= 1 and sh_degree in 0..3")

    @property
    def feature_dim(self) -> int:
        """Features per point of the 4D field (levels x features per level)."""
        return len(self.spatial_resolutions) * self.features_per_level

    def time_rows(self, num_frames: int) -> int:
        """Rows of the time planes: one per frame unless ``time_resolution`` is set."""
        return self.time_resolution if self.time_resolution is not None else max(2, int(num_frames))

    def cnn_trains_at(self, step: int) -> bool:
        """Whether the source CNN receives gradients at this training step (published schedule)."""
        return step < self.cnn_full_training_steps or step % self.cnn_train_every == 0
