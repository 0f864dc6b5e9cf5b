"""The views of a free-viewpoint video of a bake: an orbit (time running or frozen) or one capture
camera through time. (Camera paths from the viewer: ``integration/camera_paths.py``.)"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fourk4d_ns.core.camera import intrinsics_from_fov, orbit, rig_fov, scale_intrinsics
from fourk4d_ns.core.timeline import frame_at_time, frame_time

from .bake_format import BakeManifest


@dataclass
class View:
    """One video frame: a camera (OpenCV K, R, T), an image size and a sequence frame."""

    K: np.ndarray
    """Intrinsics [3, 3]."""
    R: np.ndarray
    """World-to-camera rotation [3, 3]."""
    T: np.ndarray
    """World-to-camera translation [3]."""
    height: int
    """Image height in pixels."""
    width: int
    """Image width in pixels."""
    frame: int
    """Frame of the sequence shown."""


def orbit_views(
    manifest: BakeManifest, count: int, turns: float, height: int, width: int, frozen: int | None = None
) -> list[View]:
    """``count`` views circling the subject at the rig's distance and height; time runs through the
    sequence once, or stays at frame ``frozen`` (bullet time)."""
    R = np.array([c.R for c in manifest.cameras])
    T = np.array([c.T for c in manifest.cameras])
    target = np.asarray(manifest.bounds).mean(axis=0)
    rotations, translations = orbit(R, T, target, count, turns)
    fov = rig_fov(np.array([c.K for c in manifest.cameras]), np.array([c.height for c in manifest.cameras]))
    K = intrinsics_from_fov(fov, height, width)
    frames = [
        frozen if frozen is not None else frame_at_time(frame_time(i, count), manifest.num_frames) for i in range(count)
    ]
    return [View(K, r, t, height, width, f) for r, t, f in zip(rotations, translations, frames)]


def fixed_views(manifest: BakeManifest, camera: str | None, height: int | None) -> list[View]:
    """A capture camera (default: the first held-out one) at every frame, scaled to ``height``."""
    if camera is None:
        held_out = [c for c in manifest.cameras if not c.baked]
        chosen = held_out[0] if held_out else manifest.cameras[0]
    else:
        chosen = manifest.camera_named(camera)
    scale = 1.0 if height is None else height / chosen.height
    K = scale_intrinsics(np.array(chosen.K), scale, scale)
    h, w = round(chosen.height * scale), round(chosen.width * scale)
    return [View(K, np.array(chosen.R), np.array(chosen.T), h, w, f) for f in range(manifest.num_frames)]
