"""nerfstudio ``Cameras`` (OpenGL camera-to-world) to the OpenCV K, R, T the core works with, and
the camera edits the datamanager makes (crops, distortion removed)."""

from __future__ import annotations

import torch
from nerfstudio.cameras.cameras import Cameras

from fourk4d_ns.core.camera import opengl_to_opencv


def opencv_from_cameras(cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """K [B,3,3], world-to-camera R [B,3,3] and T [B,3] of a flat batch of perspective cameras."""
    R, T = opengl_to_opencv(cameras.camera_to_worlds.reshape(-1, 3, 4).float())
    return cameras.get_intrinsics_matrices().reshape(-1, 3, 3).float(), R, T


def opencv_distortion(cameras: Cameras) -> torch.Tensor:
    """OpenCV distortion (k1, k2, p1, p2, k3) [B,5] of cameras (nerfstudio stores k1, k2, k3, k4, p1, p2)."""
    if cameras.distortion_params is None:
        return torch.zeros(len(cameras), 5)
    return cameras.distortion_params.reshape(-1, 6)[:, [0, 1, 4, 5, 2]]


def pinhole(cameras: Cameras) -> Cameras:
    """The same cameras without distortion (the images are undistorted on load)."""
    return Cameras(
        camera_to_worlds=cameras.camera_to_worlds,
        fx=cameras.fx,
        fy=cameras.fy,
        cx=cameras.cx,
        cy=cameras.cy,
        width=cameras.width,
        height=cameras.height,
        camera_type=cameras.camera_type,
        times=cameras.times,
        metadata=cameras.metadata,
    )


def crop_camera(camera: Cameras, x0: int, y0: int, width: int, height: int) -> Cameras:
    """The same single pinhole camera looking at the pixel window [x0, x0+width) x [y0, y0+height)."""
    return Cameras(
        camera_to_worlds=camera.camera_to_worlds,
        fx=camera.fx,
        fy=camera.fy,
        cx=camera.cx - x0,
        cy=camera.cy - y0,
        width=torch.full_like(camera.width, width),
        height=torch.full_like(camera.height, height),
        camera_type=camera.camera_type,
        times=camera.times,
        metadata=camera.metadata,
    )
