"""The demo's camera rig: a ring of training cameras and held-out cameras at other heights."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from dataparsers.easymocap_cameras import CameraRig
from fourk4d_ns.core.camera import look_at


@dataclass(frozen=True)
class RigLayout:
    """Where the cameras stand; all look at the subject's center."""

    train_cameras: int
    """Training cameras, evenly spaced in azimuth on the ring."""
    test_cameras: int
    """Held-out cameras, at azimuths halfway between ring cameras and at ``test_heights``."""
    height: int
    """Image height in pixels."""
    width: int
    """Image width in pixels."""
    ring_radius: float = 3.0
    """Horizontal distance of every camera from the vertical axis through the subject (m)."""
    ring_height: float = 1.15
    """Height of the training cameras (m)."""
    test_heights: tuple[float, ...] = (0.5, 2.0)
    """Heights the held-out cameras cycle through (m); none equals ``ring_height``."""
    fill: float = 0.84
    """Largest fraction of the image width/height the subject may span from the center, over all frames and cameras."""


def camera_centers(layout: RigLayout, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centers [C,3] of the cameras and a mask [C] of the held-out ones (training cameras first)."""
    step = 2.0 * np.pi / layout.train_cameras
    start = -np.pi / 2.0  # camera 00 faces the figure's front (it faces -y)
    azimuths = [start + i * step for i in range(layout.train_cameras)]
    heights = [layout.ring_height] * layout.train_cameras
    for k in range(layout.test_cameras):
        # Spread the held-out cameras around the ring, halfway between two training cameras.
        slot = (k * layout.train_cameras) // max(layout.test_cameras, 1)
        azimuths.append(start + (slot + 0.5) * step)
        heights.append(layout.test_heights[k % len(layout.test_heights)])
    azimuths, heights = np.asarray(azimuths), np.asarray(heights)
    centers = np.stack(
        [target[0] + layout.ring_radius * np.cos(azimuths), target[1] + layout.ring_radius * np.sin(azimuths), heights],
        axis=1,
    )
    is_test = np.arange(len(centers)) >= layout.train_cameras
    return centers, is_test


def fitting_focal(points: np.ndarray, rotations: np.ndarray, translations: np.ndarray, layout: RigLayout) -> float:
    """The largest focal length (pixels) at which every point stays within ``fill`` of the image in every camera."""
    focal = np.inf
    for R, T in zip(rotations, translations):
        cam = points @ R.T + T
        if np.any(cam[:, 2] <= 0):
            raise ValueError("a camera of the rig is inside the subject's extent")
        ratio = np.abs(cam[:, :2] / cam[:, 2:3]).max(axis=0)  # tan of the half field of view needed (x, y)
        focal = min(focal, layout.fill * 0.5 * layout.width / ratio[0], layout.fill * 0.5 * layout.height / ratio[1])
    return float(focal)


def build_rig(
    layout: RigLayout, subject_points: np.ndarray, sizes: np.ndarray | None = None
) -> tuple[CameraRig, list[str]]:
    """The rig framing ``subject_points`` (all frames' vertices) and the names of its held-out cameras.

    ``sizes`` [C,2] gives each camera its own (height, width) (default: the layout's for all); every
    image size gets the focal length that frames the subject in it, principal point at its center.
    """
    lower, upper = subject_points.min(axis=0), subject_points.max(axis=0)
    target = 0.5 * (lower + upper)
    centers, is_test = camera_centers(layout, target)
    poses = [look_at(c, target) for c in centers]
    rotations = np.stack([R for R, _ in poses])
    translations = np.stack([T for _, T in poses])
    count = len(centers)
    if sizes is None:
        sizes = np.tile([layout.height, layout.width], (count, 1))
    sizes = np.asarray(sizes, dtype=np.int64)
    K = np.zeros((count, 3, 3))
    for height, width in np.unique(sizes, axis=0):
        sized = replace(layout, height=int(height), width=int(width))
        focal = fitting_focal(subject_points, rotations, translations, sized)
        same = np.all(sizes == [height, width], axis=1)
        K[same] = [[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]]
    names = [f"{i:02d}" for i in range(count)]
    rig = CameraRig(
        names=names,
        K=K,
        dist=np.zeros((count, 5)),
        R=rotations,
        T=translations,
        height=sizes[:, 0].copy(),
        width=sizes[:, 1].copy(),
    )
    return rig, [name for name, test in zip(names, is_test) if test]
