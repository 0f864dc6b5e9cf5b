"""Rendering novel views of a baked sequence: nearest cameras, then the fused kernel.

For a view, the S baked (training) cameras nearest to its center are chosen, their baked colors
are softmax-blended with their baked logits, the SH term is added, and the points are rasterized
and composited in one pass (``render_baked_points``). Frames come from a ``FrameStream``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fourk4d_ns.core.camera import camera_center
from fourk4d_ns.core.ibr import nearest_sources
from fourk4d_ns.rasterizer import Composited

from .bake_format import BakeManifest, read_manifest
from .frame_stream import FrameStream
from .fused import MAX_SOURCES, fused_module, render_baked_points

Tensor = torch.Tensor


def baked_camera_centers(manifest: BakeManifest) -> Tensor:
    """[C, 3] centers of the baked cameras, in the order of ``ibr``."""
    baked = manifest.baked_cameras()
    R = torch.tensor([c.R for c in baked], dtype=torch.float32)
    T = torch.tensor([c.T for c in baked], dtype=torch.float32)
    return camera_center(R, T)


def nearest_baked_cameras(manifest: BakeManifest, centers: Tensor, center: Tensor, count: int | None = None) -> Tensor:
    """The ``count`` baked cameras (of ``centers``) nearest to ``center``; default: the bake's num_sources."""
    count = manifest.num_sources if count is None else int(count)
    return nearest_sources(center.cpu(), centers, max(1, min(count, MAX_SOURCES)))


class BakedRenderer:
    """Renders any camera at any frame of a bake folder.

    Construction compiles (first use, minutes, announced on stderr) or loads the fused kernels, so
    that a missing toolchain is reported before any frame, not in the middle of the first one.
    """

    def __init__(
        self,
        folder: Path,
        device: torch.device | str = "cpu",
        backend: str = "auto",
        cache_frames: int = 8,
        prefetch: int = 2,
        verify: str = "checksum",
    ) -> None:
        self.folder = Path(folder)
        self.manifest: BakeManifest = read_manifest(self.folder)
        self.device = torch.device(device)
        self.backend = backend
        fused_module(backend, self.device.type == "cuda")
        self.stream = FrameStream(self.folder, self.device, cache_frames, prefetch, verify, self.manifest)
        self.centers = baked_camera_centers(self.manifest)
        """[C, 3] centers of the baked cameras (the order of ``ibr``)."""

    @property
    def num_frames(self) -> int:
        return self.manifest.num_frames

    def sources_for(self, center: Tensor, count: int | None = None) -> Tensor:
        """The ``count`` baked cameras nearest to ``center`` (default: the bake's num_sources)."""
        return nearest_baked_cameras(self.manifest, self.centers, center, count)

    def render(
        self,
        frame: int,
        K: Tensor,
        R: Tensor,
        T: Tensor,
        height: int,
        width: int,
        num_sources: int | None = None,
        background: Tensor | None = None,
        layers: int | None = None,
    ) -> Composited:
        """rgb [H, W, 3], accumulation and depth [H, W, 1] of ``frame`` from camera (K, R, T)."""
        K, R, T = (torch.as_tensor(x, dtype=torch.float32) for x in (K, R, T))
        sources = self.sources_for(camera_center(R.cpu(), T.cpu()), num_sources)
        baked = self.stream.get(frame)
        layers = self.manifest.layers if layers is None else int(layers)
        return render_baked_points(
            baked.xyz,
            baked.radius,
            baked.density,
            baked.sh,
            baked.ibr,
            sources,
            K,
            R,
            T,
            height,
            width,
            layers,
            background=background,
            near=self.manifest.near,
            sh_weight=self.manifest.sh_weight,
            backend=self.backend,
        )

    def close(self) -> None:
        self.stream.close()
