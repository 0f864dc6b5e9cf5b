"""``fourk4d-orbit-path``: a nerfstudio camera path (JSON) that orbits the subject while time runs.

``ns-render camera-path --camera-path-filename PATH`` renders it; every keyframe carries a
``render_time``, so the sequence plays as the camera moves (nerfstudio's own ``spiral`` preset needs
a ray-based datamanager and has no time).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dataparsers.easymocap_layout import read_layout
from fourk4d_ns.carving.capture import read_carved_bounds
from fourk4d_ns.cli.common import CommandOptions, run_command
from fourk4d_ns.integration.camera_paths import orbit_camera_path
from fourk4d_ns.io.atomic import atomic_write_bytes


@dataclass
class OrbitPathCommand(CommandOptions):
    """Write an orbit camera path with render times for ``ns-render camera-path``."""

    data: Path
    """Capture folder (its cameras and carved bounds place the orbit)."""
    output: Path
    """Camera path JSON to write."""
    frames: int = 96
    """Video frames."""
    turns: float = 1.0
    """Turns around the subject."""
    height: int = 512
    """Rendered height in pixels."""
    width: int | None = None
    """Rendered width; None: same as height."""
    fps: float = 24.0
    """Video frame rate."""

    def main(self) -> None:
        rig = read_layout(self.data).rig  # image sizes from the images when the camera files have none
        bounds = read_carved_bounds(self.data)
        if bounds is None:
            bounds = rig.viewing_bounds()
        path = orbit_camera_path(
            rig.K,
            rig.R,
            rig.T,
            rig.height,
            bounds,
            self.frames,
            self.turns,
            self.height,
            self.width or self.height,
            self.fps,
        )
        atomic_write_bytes(self.output, json.dumps(path, indent=1).encode())
        print(f"wrote {self.output} ({self.frames} frames, time 0 to 1)")


def entrypoint(argv: Sequence[str] | None = None) -> None:
    """Console script entry point."""
    run_command(OrbitPathCommand, "fourk4d-orbit-path", argv)


if __name__ == "__main__":
    entrypoint()
