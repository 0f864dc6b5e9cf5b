"""LLFF's ``poses_bounds.npy``, the camera file of the Neural 3D Video (DyNeRF) scenes.

One row of 17 numbers per camera: a 3x5 matrix (row-major), then the near and far depth bounds.
Columns 0-2 of the matrix are the camera-to-world rotation with the camera axes in LLFF's order
[down, right, back]; column 3 is the camera center; column 4 is (height, width, focal) in pixels at
the resolution the poses were computed for. The principal point is the image center.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fourk4d_ns.io.errors import CaptureError


@dataclass
class LLFFCameras:
    """The cameras of a ``poses_bounds.npy``, with rotations in nerfstudio's OpenGL convention."""

    camera_to_world: np.ndarray
    """[N,3,4] camera-to-world, camera axes (x right, y up, z back), as nerfstudio expects."""
    height: np.ndarray
    """[N] image height the focal length refers to (pixels)."""
    width: np.ndarray
    """[N] image width the focal length refers to (pixels)."""
    focal: np.ndarray
    """[N] focal length in pixels at (height, width)."""
    near_far: np.ndarray
    """[N,2] depth bounds of the scene content seen by each camera."""

    def __len__(self) -> int:
        return len(self.focal)


def llff_to_opengl(rotation_and_center: np.ndarray) -> np.ndarray:
    """[N,3,4] LLFF [down, right, back | center] to OpenGL [right, up, back | center]."""
    down, right, back, center = (rotation_and_center[:, :, i : i + 1] for i in range(4))
    return np.concatenate([right, -down, back, center], axis=2)


def opengl_to_llff(camera_to_world: np.ndarray) -> np.ndarray:
    """[N,3,4] OpenGL [right, up, back | center] to LLFF [down, right, back | center]."""
    right, up, back, center = (camera_to_world[:, :, i : i + 1] for i in range(4))
    return np.concatenate([-up, right, back, center], axis=2)


def read_poses_bounds(path: Path) -> LLFFCameras:
    """Read and check a ``poses_bounds.npy``; problems raise ``CaptureError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CaptureError(path, "camera file not found")
    try:
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CaptureError(path, f"not a readable .npy array ({err})") from None
    if rows.ndim != 2 or rows.shape[1] != 17 or len(rows) == 0:
        raise CaptureError(
            path, f"expected an [N,17] array (a 3x5 pose and near, far per camera), got shape {list(rows.shape)}"
        )
    rows = rows.astype(np.float64)
    if not np.all(np.isfinite(rows)):
        raise CaptureError(path, "contains non-finite values")
    poses = rows[:, :15].reshape(-1, 3, 5)
    height, width, focal = poses[:, 0, 4], poses[:, 1, 4], poses[:, 2, 4]
    near_far = rows[:, 15:17]
    bad = np.flatnonzero((height <= 0) | (width <= 0) | (focal <= 0))
    if len(bad):
        hwf = poses[bad[0], :, 4].tolist()
        raise CaptureError(path, f"row {bad[0]}: height, width and focal (column 4) must be positive, got {hwf}")
    bad = np.flatnonzero((near_far[:, 0] <= 0) | (near_far[:, 1] <= near_far[:, 0]))
    if len(bad):
        raise CaptureError(path, f"row {bad[0]}: bounds must satisfy 0 < near < far, got {near_far[bad[0]].tolist()}")
    return LLFFCameras(llff_to_opengl(poses[:, :, :4]), height, width, focal, near_far)


def poses_bounds_rows(cameras: LLFFCameras) -> np.ndarray:
    """The [N,17] rows of ``poses_bounds.npy`` for the given cameras (inverse of ``read_poses_bounds``)."""
    hwf = np.stack([cameras.height, cameras.width, cameras.focal], axis=1)[:, :, None]
    poses = np.concatenate([opengl_to_llff(cameras.camera_to_world), hwf], axis=2)
    return np.concatenate([poses.reshape(-1, 15), cameras.near_far], axis=1)
