"""``fourk4d-orbit-path``: a nerfstudio camera path (JSON) that orbits the subject while time runs.

``ns-render camera-path --camera-path-filename PATH`` renders it; every keyframe carries a
``render_time``, so the sequence plays as the camera moves (nerfstudio's own ``spiral`` preset needs
a ray-based datamanager and has no time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import tyro

from dataparsers.atomic import atomic_write_bytes
from dataparsers.easymocap_cameras import camera_files, read_cameras, viewing_bounds
from dataparsers.easymocap_layout import read_carved_bounds


def look_at_c2w(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """OpenGL camera-to-world [4,4] (x right, y up, looking down -z) of a camera at ``eye``."""
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    right /= np.linalg.norm(right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, np.cross(back, right), back, eye
    return c2w


def orbit_keyframes(R: np.ndarray, centers: np.ndarray, fy: np.ndarray, heights: np.ndarray, bounds: np.ndarray,
                    frames: int, turns: float = 1.0, aspect: float = 1.0, times: bool = True) -> list[dict]:
    """Keyframes of an orbit at the rig's mean camera distance and height, around the bounds' centre.

    Args:
        R, centers: the capture cameras' world-to-camera rotations [C, 3, 3] and centres [C, 3].
        fy, heights: their focal lengths and image heights [C] (the orbit keeps their field of view).
        bounds: [2, 3] subject bounds; the orbit looks at their centre.
        frames: keyframes; ``turns``: turns around the subject; ``aspect``: width / height.
        times: give keyframe i the render_time i / (frames - 1); else no render_time.
    """
    target = bounds.mean(axis=0)
    up = -R[:, 1, :].mean(axis=0)  # OpenCV y points down in every camera: average "up"
    up /= np.linalg.norm(up)
    offsets = centers - target
    elevation = float(np.mean(offsets @ up))
    radius = float(np.mean(np.linalg.norm(offsets - np.outer(offsets @ up, up), axis=1)))
    horizontal = offsets[0] - (offsets[0] @ up) * up
    x_axis = horizontal / np.linalg.norm(horizontal)
    y_axis = np.cross(up, x_axis)
    # The training cameras' vertical field of view, so the subject is framed as in the capture.
    fov = float(np.degrees(2 * np.arctan(0.5 * np.median(heights) / np.median(fy))))
    keyframes = []
    for i in range(frames):
        angle = 2 * np.pi * turns * i / max(frames, 1)
        eye = target + radius * (np.cos(angle) * x_axis + np.sin(angle) * y_axis) + elevation * up
        keyframe = {"camera_to_world": look_at_c2w(eye, target, up).ravel().tolist(), "fov": fov, "aspect": aspect}
        if times:
            keyframe["render_time"] = i / max(frames - 1, 1)
        keyframes.append(keyframe)
    return keyframes


def orbit_path(scene: Path, frames: int, turns: float = 1.0, height: int = 512, width: int = 512,
               fps: float = 24.0) -> dict:
    """A nerfstudio camera path orbiting a capture's subject while time runs from 0 to 1."""
    rig = read_cameras(*camera_files(scene))
    bounds = read_carved_bounds(scene)
    if bounds is None:
        bounds = viewing_bounds(rig)
    keyframes = orbit_keyframes(rig.R, rig.centers, rig.K[:, 1, 1], rig.height, bounds, frames, turns, width / height)
    return {"camera_type": "perspective", "render_height": height, "render_width": width, "fps": fps,
            "seconds": frames / fps, "smoothness_value": 0, "is_cycle": False, "crop": None, "camera_path": keyframes}


@dataclass
class OrbitPathCommand:
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
    width: Optional[int] = None
    """Rendered width; None: same as height."""
    fps: float = 24.0
    """Video frame rate."""

    def main(self) -> None:
        path = orbit_path(self.data, self.frames, self.turns, self.height, self.width or self.height, self.fps)
        atomic_write_bytes(self.output, json.dumps(path, indent=1).encode())
        print(f"wrote {self.output} ({self.frames} frames, time 0 to 1)")


def entrypoint() -> None:
    """Console script entry point."""
    tyro.cli(OrbitPathCommand).main()


if __name__ == "__main__":
    entrypoint()
