"""Pinhole cameras: the one home of the project's camera conventions.

Conventions: OpenCV world-to-camera ``x_cam = R X + T`` (x right, y down, z forward), pixel
centers at +0.5, distortion in OpenCV order (k1, k2, p1, p2, k3). nerfstudio (and the viewer,
camera paths and LLFF files after their own axis swap) use OpenGL camera-to-world matrices
(x right, y up, looking down -z); ``opencv_to_opengl`` and ``opengl_to_opencv`` convert.

Every function takes NumPy arrays or torch tensors (with leading batch dimensions) and returns the
same kind. The rasterizer keeps its own projection (``rasterizer/projection.py``): it must repeat
the kernels' float32 arithmetic operation for operation, which no general function should promise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

OPENGL_AXIS_SIGNS = (1.0, -1.0, -1.0)
"""OpenCV camera axes (right, down, forward) times these signs are OpenGL's (right, up, back)."""


def _like(reference: Array, values) -> Array:
    """``values`` as an array of ``reference``'s kind, dtype and device."""
    if isinstance(reference, torch.Tensor):
        return torch.as_tensor(values, dtype=reference.dtype, device=reference.device)
    return np.asarray(values, dtype=reference.dtype)


def _concatenate(parts: Sequence[Array], axis: int) -> Array:
    return torch.cat(list(parts), dim=axis) if isinstance(parts[0], torch.Tensor) else np.concatenate(parts, axis=axis)


def camera_center(R: Array, T: Array) -> Array:
    """World position [..., 3] of cameras (R [..., 3, 3], T [..., 3]): ``C = -R^T T``."""
    return -(R.swapaxes(-1, -2) @ T[..., None])[..., 0]


def opencv_to_opengl(R: Array, T: Array) -> Array:
    """OpenGL camera-to-world [..., 3, 4] of OpenCV world-to-camera (R, T)."""
    rotation = R.swapaxes(-1, -2) * _like(R, OPENGL_AXIS_SIGNS)  # flips the y and z columns
    return _concatenate([rotation, camera_center(R, T)[..., None]], axis=-1)


def opengl_to_opencv(camera_to_world: Array) -> tuple[Array, Array]:
    """OpenCV world-to-camera (R [..., 3, 3], T [..., 3]) of OpenGL camera-to-world [..., 3 or 4, 4]."""
    c2w = camera_to_world[..., :3, :]
    R = (c2w[..., :3] * _like(c2w, OPENGL_AXIS_SIGNS)).swapaxes(-1, -2)
    return R, -(R @ c2w[..., 3:4])[..., 0]


def look_at(
    eye: np.ndarray, target: np.ndarray, up: Sequence[float] = (0.0, 0.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera (R, T) of a camera at ``eye`` facing ``target``, ``up`` roughly up."""
    forward = np.asarray(target, dtype=np.float64) - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -R @ eye


def project_points(
    xyz: Array, K: Array, R: Array, T: Array, dist: Array | None = None, min_depth: float = 1e-6
) -> tuple[Array, Array]:
    """Pixel coordinates [..., N, 2] and depths [..., N] of world points xyz [N, 3].

    Cameras are K, R [..., 3, 3], T [..., 3] with optional OpenCV distortion dist [..., 5]; a pixel
    (i, j) spans [i, i + 1) x [j, j + 1). The division uses depths floored at ``min_depth``:
    points behind a camera land somewhere meaningless, so callers test the returned depth.
    """
    cam = xyz @ R.swapaxes(-1, -2) + T[..., None, :]
    z = cam[..., 2]
    safe = z.clip(min=min_depth)
    x, y = cam[..., 0] / safe, cam[..., 1] / safe
    if dist is not None and bool((dist != 0).any()):
        k1, k2, p1, p2, k3 = (dist[..., i, None] for i in range(5))
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        x, y = (
            x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y,
        )
    u = K[..., 0, 0, None] * x + K[..., 0, 1, None] * y + K[..., 0, 2, None]
    v = K[..., 1, 1, None] * y + K[..., 1, 2, None]
    stack = torch.stack if isinstance(u, torch.Tensor) else np.stack
    return stack([u, v], -1), z


def opencv_intrinsics(K: np.ndarray) -> np.ndarray:
    """K [..., 3, 3] in OpenCV's image convention, where pixel centers sit at integers: the principal
    point moves by -0.5. Needed wherever OpenCV maps pixel indices (``remap``, undistortion maps);
    point functions (``projectPoints``, ``undistortPoints``) take either K if both sides agree."""
    shifted = np.array(K, dtype=np.float64)
    shifted[..., :2, 2] -= 0.5
    return shifted


def undistort_pixels(pixels: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Normalized coordinates [N, 2] (x/z, y/z) of the rays through continuous pixel positions [N, 2]
    of one distorted camera: the inverse of ``project_points``' distortion.

    OpenCV's iterative solver runs to convergence here: its default 5 iterations leave half a pixel
    of error at the corners of a 1920x1080 image with k1 = -0.3.
    """
    import cv2  # OpenCV only where distortion is handled: the core imports without it (torch-only machines)

    points = np.ascontiguousarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    dist = np.asarray(dist, dtype=np.float64).reshape(-1)
    normalized = cv2.undistortPointsIter(points, np.asarray(K, dtype=np.float64), dist, None, None, criteria)
    return normalized.reshape(-1, 2)


def undistortion_maps(K: np.ndarray, dist: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``cv2.remap`` maps (x, y) [H, W] float32 that resample a distorted image into the pinhole image
    of the same K: the capture's K stays the camera of the undistorted image (no new K is derived)."""
    import cv2

    K_cv = opencv_intrinsics(K)
    dist = np.asarray(dist, dtype=np.float64).reshape(-1)
    return cv2.initUndistortRectifyMap(K_cv, dist, None, K_cv, (int(width), int(height)), cv2.CV_32FC1)


def scale_intrinsics(K: Array, scale_x, scale_y) -> Array:
    """K of cameras whose images are resized by (scale_x, scale_y), scalars or one per camera: rows 0 and 1 scaled."""
    scaled = K * 1.0  # a float copy
    scaled[..., 0, :] = scaled[..., 0, :] * _like(scaled, scale_x)[..., None]
    scaled[..., 1, :] = scaled[..., 1, :] * _like(scaled, scale_y)[..., None]
    return scaled


def intrinsics_from_fov(fov_degrees: float, height: int, width: int) -> np.ndarray:
    """Pinhole K [3, 3] with the given vertical field of view, square pixels and the principal point at the center."""
    fy = 0.5 * height / np.tan(np.radians(fov_degrees) / 2)
    return np.array([[fy, 0.0, width / 2], [0.0, fy, height / 2], [0.0, 0.0, 1.0]])


def rig_fov(K: np.ndarray, height: np.ndarray) -> float:
    """Vertical field of view in degrees of a rig's typical camera (median focal length and image
    height of K [C, 3, 3] and height [C]): views made for the rig frame the subject as it does."""
    return float(np.degrees(2 * np.arctan(0.5 * np.median(height) / np.median(K[:, 1, 1]))))


def nearest_point_to_axes(centers: np.ndarray, axes: np.ndarray) -> np.ndarray | None:
    """The point [3] closest (least squares) to the lines through ``centers`` [C, 3] along unit ``axes``
    [C, 3] (the optical axes: what the cameras look at), or None when the lines are (nearly) parallel."""
    projectors = np.eye(3)[None] - axes[:, :, None] * axes[:, None, :]
    A, b = projectors.sum(0), np.einsum("cij,cj->i", projectors, centers)
    return np.linalg.solve(A, b) if np.linalg.cond(A) < 1e6 else None


def viewing_bounds(K: np.ndarray, R: np.ndarray, T: np.ndarray, height: np.ndarray, width: np.ndarray) -> np.ndarray:
    """A box [2, 3] that every camera frames: centered on the point closest to all optical axes, with
    a half-size equal to what a typical camera's image spans at that distance. Image sizes of 0
    (unknown) are taken as twice the principal point."""
    centers = camera_center(R, T)
    axes = R[:, 2, :]  # camera z axes in world coordinates
    focus = nearest_point_to_axes(centers, axes)
    if focus is None:  # (nearly) parallel axes, as in a forward-facing rig: look one median distance ahead
        spread = np.linalg.norm(centers - centers.mean(0), axis=1).max()
        focus = (centers + axes * max(spread, 1.0)).mean(0)
    height = np.where(height > 0, height, 2 * K[:, 1, 2])
    width = np.where(width > 0, width, 2 * K[:, 0, 2])
    distance = np.linalg.norm(centers - focus, axis=1)
    half_view = np.maximum(0.5 * width / K[:, 0, 0], 0.5 * height / K[:, 1, 1])
    half = float(np.median(distance * half_view))
    return np.stack([focus - half, focus + half])


def orbit(
    R: np.ndarray, T: np.ndarray, target: np.ndarray, count: int, turns: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` OpenCV cameras (R [count, 3, 3], T [count, 3]) circling ``target`` ``turns`` times.

    The orbit keeps the rig's (R [C, 3, 3], T [C, 3]) mean "up" (OpenCV y points down in every
    camera), mean height above the target and mean horizontal distance, and starts at the first
    camera's azimuth.
    """
    centers = camera_center(R, T)
    up = -R[:, 1, :].mean(axis=0)
    up /= np.linalg.norm(up)
    offsets = centers - target
    elevation = float(np.mean(offsets @ up))
    radius = float(np.mean(np.linalg.norm(offsets - np.outer(offsets @ up, up), axis=1)))
    horizontal = offsets[0] - (offsets[0] @ up) * up
    x_axis = horizontal / np.linalg.norm(horizontal)
    y_axis = np.cross(up, x_axis)
    poses = []
    for i in range(count):
        angle = 2 * np.pi * turns * i / max(count, 1)
        eye = target + radius * (np.cos(angle) * x_axis + np.sin(angle) * y_axis) + elevation * up
        poses.append(look_at(eye, target, up))
    return np.stack([p[0] for p in poses]), np.stack([p[1] for p in poses])
