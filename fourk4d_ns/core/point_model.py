"""``FourK4DCore``: per-frame point clouds, the 4D feature field, the heads and the source CNN.

One render (METHOD.md sections 1-3):

1. positions of the frame's points (plus the optional deformation);
2. radii of all points without gradients, and the index pass ``peel_points`` (not differentiable);
3. the differentiable per-point model (``point_outputs``: field features, radius, density, IBR
   color, SH residual) on the points the index pass listed (the others cannot contribute);
4. ``composite``: front-to-back alpha compositing, differentiable in positions, radii, densities
   and colors.

Pure torch: nothing here imports nerfstudio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fourk4d_ns.rasterizer import composite, peel_points

from .camera import camera_center
from .config import CoreConfig
from .feature_field import SixPlaneField
from .heads import (
    DeformationHead,
    GeometryHead,
    SHHead,
    directions,
    view_dependent_color,
)
from .ibr import (
    BlendHead,
    FeatureCache,
    SourceFeatureNet,
    SourceViews,
    blend_colors,
    sample_sources,
)
from .timeline import frame_time
from .visibility import HIDDEN_LOGIT_PENALTY, first_surface_depth, hidden_in_sources

Tensor = torch.Tensor
PointsLike = Tensor | np.ndarray


@dataclass
class PointOutputs:
    """Per-point quantities of one frame (or of a subset of its points)."""

    xyz: Tensor
    """[N, 3] positions used for rendering (deformed when the deformation is on)."""
    features: Tensor
    """[N, 32] 4D field features."""
    radius: Tensor
    """[N] world radii."""
    density: Tensor
    """[N] opacity scale in (0, 1)."""
    sh: Tensor
    """[N, 3, (degree + 1)^2] SH coefficients of the color residual (before tanh and the 0.25 weight)."""
    delta: Tensor | None = None
    """[N, 3] deformation offsets (None without deformation)."""
    source_rgb: Tensor | None = None
    """[S, N, 3] source colors read at the points' projections (with sources)."""
    blend_logits: Tensor | None = None
    """[S, N] blend logits (with sources; lowered by HIDDEN_LOGIT_PENALTY where the source is hidden)."""
    ibr_rgb: Tensor | None = None
    """[N, 3] softmax-blended source color (with sources)."""
    colors: Tensor | None = None
    """[N, 3] final color clip(c_ibr + 0.25 tanh(SH(d)), 0, 1) (with sources and a camera center)."""


def _cpu_float(value: PointsLike) -> Tensor:
    """A float32 CPU tensor of an array or tensor (the module is moved with ``.to`` afterwards)."""
    if isinstance(value, Tensor):
        return value.detach().to(device="cpu", dtype=torch.float32)
    return torch.as_tensor(np.asarray(value, dtype=np.float32))


class FourK4DCore(nn.Module):
    """The trainable 4K4D model of one sequence."""

    def __init__(
        self,
        config: CoreConfig,
        initial_points: Sequence[PointsLike],
        bounds: PointsLike,
        num_frames: int | None = None,
    ) -> None:
        """
        Args:
            config: architecture and rendering settings.
            initial_points: one [N_f, 3] array per frame (N_f may differ), e.g. the carved surfaces.
            bounds: [2, 3] tight scene bounds (lower, upper) normalizing the feature field; radius
                limits scale with their largest side.
            num_frames: number of frames (defaults to ``len(initial_points)``; must match it).
        """
        super().__init__()
        num_frames = len(initial_points) if num_frames is None else int(num_frames)
        if num_frames < 1 or len(initial_points) != num_frames:
            raise ValueError(f"expected one point array per frame ({num_frames}), got {len(initial_points)}")
        self.config = config
        self.num_frames = num_frames
        bounds = _cpu_float(bounds).reshape(2, 3)
        scene_size = float((bounds[1] - bounds[0]).max())
        if not scene_size > 0:
            raise ValueError(f"bounds must have a positive extent, got {bounds.tolist()}")

        params = []
        for f, pts in enumerate(initial_points):
            pts = _cpu_float(pts).reshape(-1, 3).clone()
            if not bool(torch.isfinite(pts).all()):
                raise ValueError(f"initial points of frame {f} contain non-finite values")
            params.append(nn.Parameter(pts))
        self.points = nn.ParameterList(params)

        time_rows = config.time_rows(num_frames)
        self.field = SixPlaneField(
            bounds, config.spatial_resolutions, time_rows, config.features_per_level, config.plane_init_scale
        )
        self.geometry_head = GeometryHead(
            config.feature_dim,
            config.geometry_hidden,
            config.radius_min_fraction * scene_size,
            config.radius_max_fraction * scene_size,
            config.radius_logit_offset,
            config.density_logit_offset,
        )
        self.deformation_field: SixPlaneField | None = None
        self.deformation_head: DeformationHead | None = None
        if config.use_deformation:
            self.deformation_field = SixPlaneField(
                bounds,
                config.deformation_resolutions,
                time_rows,
                config.deformation_features_per_level,
                config.plane_init_scale,
            )
            self.deformation_head = DeformationHead(
                self.deformation_field.out_dim, config.deformation_hidden, config.deformation_scale
            )
        self.sh_head = SHHead(config.feature_dim, config.sh_hidden, config.sh_degree)
        self.blend_head = BlendHead(config.feature_dim, config.blend_hidden)
        self.cnn = SourceFeatureNet()
        self._feature_cache = FeatureCache(config.feature_cache_size)
        self._depth_cache = FeatureCache(config.feature_cache_size)  # (depth map, points version) per key
        self._scene_size = scene_size
        self._register_load_state_dict_pre_hook(self._resize_before_load)

    # ------------------------------------------------------------------ basics
    @property
    def bounds(self) -> Tensor:
        """[2, 3] scene bounds of the feature field."""
        return self.field.bounds

    @property
    def radius_limits(self) -> tuple[float, float]:
        """(smallest, largest) point radius in world units."""
        lo, hi = self.geometry_head.radius_limits.tolist()
        return lo, hi

    def time_of(self, frame: int) -> float:
        """t in [0, 1] of a frame: frame / max(num_frames - 1, 1)."""
        if not 0 <= int(frame) < self.num_frames:
            raise IndexError(f"frame {frame} out of range (the model has {self.num_frames} frames)")
        return frame_time(int(frame), self.num_frames)

    def point_counts(self) -> list[int]:
        """Points per frame."""
        return [int(p.shape[0]) for p in self.points]

    def pick_background(self, generator: torch.Generator | None = None) -> Tensor | None:
        """Background color [3] of a training step per ``config.background`` (None for black).

        Use the same color for the target: target = rgb * mask + (1 - mask) * background.
        """
        kind = self.config.background
        if kind == "black":
            return None
        if kind == "white":
            return torch.ones(3, device=self.bounds.device)
        return torch.rand(3, generator=generator).to(self.bounds.device)

    # ------------------------------------------------------------------ per-point model
    def positions(self, frame: int) -> tuple[Tensor, Tensor | None]:
        """Positions [N, 3] of a frame's points and the deformation offsets (None when off)."""
        p = self.points[int(frame)]
        if self.deformation_head is None:
            return p, None
        delta = self.deformation_head(self.deformation_field(p, self.time_of(frame)))
        return p + delta, delta

    def point_outputs(
        self,
        xyz: Tensor,
        t: float,
        camera_center: Tensor | None = None,
        sources: SourceViews | None = None,
        feature_maps: list[Tensor] | None = None,
        depth_maps: list[Tensor] | None = None,
    ) -> PointOutputs:
        """Everything the renderer needs per point; used by ``render`` and by baking.

        Args:
            xyz: [N, 3] positions (after the deformation).
            t: time in [0, 1].
            camera_center: [3] target camera center (for the SH direction); None skips colors.
            sources: source views (for the IBR color); None skips IBR and colors.
            feature_maps: the sources' CNN maps; computed (without gradients) when None.
            depth_maps: the sources' first-surface depths (``source_depth_maps``) for the
                visibility test; None skips the test.
        """
        features = self.field(xyz, t)
        radius, density = self.geometry_head(features)
        out = PointOutputs(xyz=xyz, features=features, radius=radius, density=density, sh=self.sh_head(features))
        if sources is not None:
            images = sources.image_list(xyz.device)
            if feature_maps is None:
                feature_maps = self.source_feature_maps(sources, train_cnn=False)
            samples = sample_sources(xyz, sources, images, feature_maps)  # [S, N, 11]
            out.source_rgb = samples[..., -3:]
            out.blend_logits = self.source_logits(xyz, features, samples, sources, depth_maps)
            out.ibr_rgb = blend_colors(out.blend_logits, out.source_rgb)
            if camera_center is not None:
                dirs = directions(xyz, camera_center)
                out.colors = view_dependent_color(out.ibr_rgb, out.sh, dirs, self.config.sh_weight)
        return out

    def frame_outputs(
        self,
        frame: int,
        camera_center: Tensor | None = None,
        sources: SourceViews | None = None,
        train_cnn: bool = False,
    ) -> PointOutputs:
        """Per-point outputs of all points of a frame (e.g. for baking or pruning)."""
        xyz, delta = self.positions(frame)
        maps = None if sources is None else self.source_feature_maps(sources, train_cnn)
        if camera_center is not None:
            camera_center = torch.as_tensor(camera_center, dtype=torch.float32, device=xyz.device)
        out = self.point_outputs(xyz, self.time_of(frame), camera_center, sources, maps)
        out.delta = delta
        return out

    def deformation_loss(self, frame: int) -> Tensor:
        """mean(delta^2) of a frame's deformation offsets (zero without deformation)."""
        _, delta = self.positions(frame)
        if delta is None:
            return self.bounds.new_zeros(())
        return delta.pow(2).mean()

    def source_logits(
        self, xyz: Tensor, features: Tensor, samples: Tensor, sources: SourceViews, depth_maps: list[Tensor] | None
    ) -> Tensor:
        """Blend logits [S, N] of points in sources; with ``depth_maps`` (the visibility test on), sources
        in which a point is hidden, or outside the silhouette when ``sources`` has masks, are lowered."""
        logits = self.blend_head(features, samples)
        if depth_maps is None:
            return logits
        xyz = xyz.detach()
        tolerance = self.config.visibility_tolerance_fraction * self._scene_size
        masks = sources.mask_list(xyz.device)
        hidden = hidden_in_sources(xyz, sources.K, sources.R, sources.T, depth_maps, tolerance, masks)
        return logits - HIDDEN_LOGIT_PENALTY * hidden.to(logits)

    @torch.no_grad()
    def source_depth_maps(self, frame: int, xyz: Tensor, radius: Tensor, sources: SourceViews) -> list[Tensor] | None:
        """First-surface depth [H_i, W_i] of a frame's points (``xyz``, ``radius``) in each source;
        None when ``config.ibr_visibility`` is off.

        Maps of sources with ``keys`` are cached: in training until the frame's points had
        ``visibility_refresh_updates`` optimizer updates (they move little in between), otherwise
        while the points are unchanged. Switching between training and evaluation empties the cache.
        """
        if not self.config.ibr_visibility:
            return None
        version = self.points[int(frame)]._version
        stale_after = self.config.visibility_refresh_updates if self.training else 1
        maps = []
        for i, (height, width) in enumerate(sources.sizes()):
            key = None if sources.keys is None else sources.keys[i]
            cached = None if key is None else self._depth_cache.get(key, ())
            if cached is not None and 0 <= version - cached[1] < stale_after:
                maps.append(cached[0])
                continue
            K, R, T = (x[i].to(xyz) for x in (sources.K, sources.R, sources.T))
            cfg = self.config
            depth = first_surface_depth(
                xyz.detach(), radius.detach(), K, R, T, height, width, cfg.rasterizer_backend, cfg.near
            )
            if key is not None:
                self._depth_cache.put(key, (), (depth, version))
            maps.append(depth)
        return maps

    def train(self, mode: bool = True):
        if mode != self.training:
            self._depth_cache.clear()  # maps made in training may be stale; evaluation wants exact ones
        return super().train(mode)

    # ------------------------------------------------------------------ source features
    def _cnn_version(self) -> tuple[int, ...]:
        """Changes whenever a CNN weight is updated in place or replaced (keys the feature cache)."""
        return tuple(v for p in self.cnn.parameters() for v in (p._version, p.data_ptr()))

    def _run_cnn(self, images: list[Tensor]) -> list[Tensor]:
        if not images:
            return []
        if all(im.shape == images[0].shape for im in images):
            return list(self.cnn(torch.stack(images)).unbind(0))
        return [self.cnn(im[None])[0] for im in images]

    def source_feature_maps(self, sources: SourceViews, train_cnn: bool = True) -> list[Tensor]:
        """CNN maps [8, H_i, W_i] of the source images.

        With ``train_cnn`` (and gradients enabled) the CNN runs with gradients. Otherwise it runs
        without them, and maps of sources carrying ``keys`` are cached until the CNN's weights
        change. Precomputed ``sources.features`` are returned as they are.
        """
        device = self.bounds.device
        given = sources.feature_list(device)
        if given is not None:
            return given
        images = sources.image_list(device)
        if train_cnn and torch.is_grad_enabled():
            return self._run_cnn(images)
        version = self._cnn_version()
        keys = sources.keys
        maps: list[Tensor | None] = [None] * len(images)
        if keys is not None:
            maps = [self._feature_cache.get(k, version) for k in keys]
        missing = [i for i, m in enumerate(maps) if m is None]
        with torch.no_grad():
            computed = self._run_cnn([images[i] for i in missing])
        for i, m in zip(missing, computed):
            maps[i] = m
            if keys is not None:
                self._feature_cache.put(keys[i], version, m)
        return maps  # type: ignore[return-value]

    # ------------------------------------------------------------------ rendering
    def render(
        self,
        frame: int,
        K: Tensor,
        R: Tensor,
        T: Tensor,
        height: int,
        width: int,
        sources: SourceViews,
        background: Tensor | None = None,
        train_cnn: bool = True,
        layers: int | None = None,
    ) -> dict[str, Tensor | int]:
        """Renders a frame from a camera.

        Args:
            frame: frame index; time t = frame / max(num_frames - 1, 1).
            K, R, T: target camera [3, 3], [3, 3], [3] (OpenCV, world to camera). K may describe a
                crop (shifted cx, cy with the crop's height and width).
            height, width: image size in pixels.
            sources: the source views of this frame (never containing the target in training).
            background: color [3] mixed in with (1 - accumulation); None is black.
            train_cnn: whether the source CNN receives gradients (see ``CoreConfig.cnn_trains_at``).
            layers: points per pixel (default ``config.layers``).

        Returns:
            "rgb" [H, W, 3], "accumulation" [H, W, 1], "depth" [H, W, 1] (weighted camera z, not
            normalized), "num_points" and "num_visible" (ints), and "deformation_loss" (scalar,
            with the deformation on).
        """
        cfg = self.config
        device = self.bounds.device
        K, R, T = (torch.as_tensor(x, dtype=torch.float32, device=device) for x in (K, R, T))
        layers = cfg.layers if layers is None else int(layers)
        t = self.time_of(frame)
        xyz, delta = self.positions(frame)
        n = xyz.shape[0]
        center = camera_center(R, T)
        maps = self.source_feature_maps(sources, train_cnn)
        with torch.no_grad():
            radius_all, _ = self.geometry_head(self.field(xyz.detach(), t))
        depth_maps = self.source_depth_maps(frame, xyz, radius_all, sources)
        full = None if cfg.visible_points_only else self.point_outputs(xyz, t, center, sources, maps, depth_maps)
        peel = peel_points(
            xyz.detach(), radius_all, K, R, T, height, width, layers, backend=cfg.rasterizer_backend, near=cfg.near
        )
        idx = peel.idx
        if full is None:
            listed = torch.zeros(n + 1, dtype=torch.bool, device=device)
            listed[idx.reshape(-1).long() + 1] = True
            visible = listed[1:].nonzero().squeeze(1)
            lookup = torch.full((n + 1,), -1, dtype=torch.int32, device=device)
            lookup[visible + 1] = torch.arange(visible.numel(), dtype=torch.int32, device=device)
            idx = lookup[idx.long() + 1]
            num_visible = int(visible.numel())
        else:
            num_visible = int(torch.unique(idx[idx >= 0]).numel())

        outputs: dict[str, Tensor | int] = {}
        if num_visible == 0:
            # Nothing drawn: an empty image that still depends on the parameters (zero gradients).
            zero = xyz.sum() * 0
            rgb = torch.zeros(height, width, 3, device=device) + zero
            if background is not None:
                rgb = rgb + background.to(rgb).reshape(1, 1, 3)
            outputs.update(
                rgb=rgb,
                accumulation=torch.zeros(height, width, 1, device=device) + zero,
                depth=torch.zeros(height, width, 1, device=device) + zero,
            )
        else:
            po = full if full is not None else self.point_outputs(xyz[visible], t, center, sources, maps, depth_maps)
            result = composite(
                idx,
                po.xyz,
                po.radius,
                po.density,
                po.colors,
                K,
                R,
                T,
                background=background,
                near=cfg.near,
            )
            outputs.update(rgb=result.rgb, accumulation=result.accumulation, depth=result.depth)
        outputs["num_points"] = n
        outputs["num_visible"] = num_visible
        if delta is not None:
            outputs["deformation_loss"] = delta.pow(2).mean()
        return outputs

    # ------------------------------------------------------------------ optimization
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters per optimizer group (learning rates: ``config.PUBLISHED_LEARNING_RATES``).

        "points" (per-frame positions), "planes" (feature planes, including the deformation
        field's), "cnn", "appearance" (blend MLP and SH head), "geometry" (geometry head) and
        "deformation" (deformation MLP). Groups without parameters are left out.
        """
        planes = list(self.field.parameters())
        if self.deformation_field is not None:
            planes += list(self.deformation_field.parameters())
        groups = {
            "points": list(self.points),
            "planes": planes,
            "cnn": list(self.cnn.parameters()),
            "appearance": list(self.blend_head.parameters()) + list(self.sh_head.parameters()),
            "geometry": list(self.geometry_head.parameters()),
            "deformation": [] if self.deformation_head is None else list(self.deformation_head.parameters()),
        }
        return {name: params for name, params in groups.items() if params}

    # ------------------------------------------------------------------ point bookkeeping
    def resize_points_(self, sizes: Sequence[int]) -> None:
        """Gives each frame's position Parameter ``sizes[f]`` rows (new zero data where the size changes).

        The Parameter objects stay the same (optimizers keep pointing at them); their values are
        meant to be overwritten next, e.g. by ``load_state_dict``. Optimizer state (Adam moments)
        of resized frames no longer matches and should be reset or loaded too.
        """
        if len(sizes) != self.num_frames:
            raise ValueError(f"expected {self.num_frames} sizes, got {len(sizes)}")
        for p, size in zip(self.points, sizes):
            if p.shape[0] != int(size):
                p.data = p.data.new_zeros(int(size), 3)
                p.grad = None

    @staticmethod
    def point_counts_in_state_dict(state_dict: Mapping[str, Tensor], prefix: str = "") -> dict[int, int]:
        """{frame: point count} of the position entries ``<prefix>points.<frame>`` of a state dict."""
        counts = {}
        head = prefix + "points."
        for key, value in state_dict.items():
            if key.startswith(head) and key[len(head) :].isdigit():
                counts[int(key[len(head) :])] = int(value.shape[0])
        return counts

    def _resize_before_load(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ) -> None:
        """load_state_dict pre-hook: adopt the checkpoint's per-frame point counts."""
        counts = self.point_counts_in_state_dict(state_dict, prefix)
        if counts:
            sizes = self.point_counts()
            for frame, count in counts.items():
                if 0 <= frame < self.num_frames:
                    sizes[frame] = count
            self.resize_points_(sizes)

    @torch.no_grad()
    def prune_(self, frame: int, keep_mask: Tensor, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Keeps only the points of ``frame`` where ``keep_mask`` [N] is True; returns how many remain.

        With ``optimizer``, per-point state of the frame's Parameter (e.g. Adam moments) is cut too.
        """
        p = self.points[int(frame)]
        keep = torch.as_tensor(keep_mask, dtype=torch.bool, device=p.device).reshape(-1)
        if keep.numel() != p.shape[0]:
            raise ValueError(f"keep_mask has {keep.numel()} entries, frame {frame} has {p.shape[0]} points")
        old = p.shape[0]
        p.data = p.data[keep].contiguous()
        if p.grad is not None:
            p.grad = p.grad[keep].contiguous()
        if optimizer is not None and p in optimizer.state:
            state = optimizer.state[p]
            for name, value in list(state.items()):
                if isinstance(value, Tensor) and value.dim() >= 1 and value.shape[0] == old:
                    state[name] = value[keep].contiguous()
        return int(keep.sum())

    @torch.no_grad()
    def low_density_mask(self, frame: int, threshold: float = 0.01) -> Tensor:
        """[N] True for points of ``frame`` whose density is below ``threshold`` (pruning candidates)."""
        return self.frame_outputs(frame).density < threshold
