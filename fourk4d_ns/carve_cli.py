"""``fourk4d-carve --data DIR``: carve the visual hulls of a capture and store their tight bounds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

import tyro

from fourk4d_ns.carve_capture import carve_capture
from fourk4d_ns.visual_hull import CarveSettings


@dataclass
class CarveCommand:
    """Carve per-frame visual hulls from the masks and cache them in the capture folder."""

    data: Path
    """Capture folder in the EasyMocap layout."""
    settings: CarveSettings = field(default_factory=CarveSettings)
    """Carving thresholds and resolutions."""
    masks_dir: Optional[str] = None
    """Mask folder name; None: the first of masks/, mask/, msk/."""
    eval_cameras: Optional[Tuple[str, ...]] = None
    """Held-out cameras left out of carving; None: the scene's split.json, else every 8th camera."""
    eval_camera_interval: int = 8
    """Without a list or split.json, every this-many-th camera is held out (0: none)."""
    include_eval_cameras: bool = False
    """Also carve with the held-out cameras' masks (their views are then no longer unseen)."""
    force: bool = False
    """Carve again even when a cached result matches the inputs."""

    def main(self) -> None:
        start = time.perf_counter()
        carved = carve_capture(
            self.data, self.settings, masks_dir=self.masks_dir, eval_cameras=self.eval_cameras,
            eval_camera_interval=self.eval_camera_interval, include_eval_cameras=self.include_eval_cameras,
            force=self.force,
        )
        summary = carved.summary
        counts = [entry["surface_points"] for entry in summary["frames"].values()]
        lower, upper = carved.bounds
        print(f"carved {len(counts)} frames with {len(summary['cameras'])} cameras in {time.perf_counter() - start:.1f} s")
        print(f"fine voxel {summary['fine_voxel_size']:.4g}, surface points per frame {min(counts)}..{max(counts)}")
        print(f"bounds min {lower.round(4).tolist()} max {upper.round(4).tolist()}")
        print(f"cache: {carved.folder}")


def entrypoint() -> None:
    """Console script entry point."""
    tyro.cli(CarveCommand).main()


if __name__ == "__main__":
    entrypoint()
