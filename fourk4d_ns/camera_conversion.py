"""nerfstudio cameras (OpenGL camera-to-world) to the OpenCV K, R, T the core works with."""

from __future__ import annotations

import torch
from nerfstudio.cameras.cameras import Cameras


def opencv_from_cameras(cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """K [B,3,3], world-to-camera R [B,3,3] and T [B,3] of a flat batch of perspective cameras."""
    c2w = cameras.camera_to_worlds.reshape(-1, 3, 4).float()
    rotation = c2w[:, :, :3] * torch.tensor([1.0, -1.0, -1.0], device=c2w.device)  # OpenGL to OpenCV axes
    R = rotation.transpose(1, 2)
    T = -(R @ c2w[:, :, 3:4])[:, :, 0]
    K = torch.zeros(R.shape[0], 3, 3, device=c2w.device)
    K[:, 0, 0] = cameras.fx.reshape(-1)
    K[:, 1, 1] = cameras.fy.reshape(-1)
    K[:, 0, 2] = cameras.cx.reshape(-1)
    K[:, 1, 2] = cameras.cy.reshape(-1)
    K[:, 2, 2] = 1.0
    return K, R, T


def crop_camera(camera: Cameras, x0: int, y0: int, width: int, height: int) -> Cameras:
    """The same single camera looking at the pixel window [x0, x0+width) x [y0, y0+height)."""
    return Cameras(
        camera_to_worlds=camera.camera_to_worlds,
        fx=camera.fx,
        fy=camera.fy,
        cx=camera.cx - x0,
        cy=camera.cy - y0,
        width=torch.full_like(camera.width, width),
        height=torch.full_like(camera.height, height),
        distortion_params=None,
        camera_type=camera.camera_type,
        times=camera.times,
        metadata=camera.metadata,
    )
