"""Where nerfstudio's viewer starts: at a training camera, looking at the subject.

viser opens every client at a fixed pose near the origin of the world, which for a capture in
metres with the subject standing at the origin puts the camera inside the figure. A
``ViewerControl`` found on the model is set up by the viewer with its viser server; on each
new connection it moves the client's camera to the first training camera's center, looking at
the point of its optical axis nearest the subject's center, with a field of view that holds the
whole bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from nerfstudio.viewer.viewer import VISER_NERFSTUDIO_SCALE_RATIO
from nerfstudio.viewer.viewer_elements import ViewerControl


def start_pose(R: torch.Tensor, T: torch.Tensor, bounds: np.ndarray) -> dict[str, tuple[float, ...] | float]:
    """Viewer pose of an OpenCV camera (world to camera R [3,3], T [3]) aimed at ``bounds`` [2,3]:
    position, look_at and up_direction in world units, and the vertical field of view in degrees."""
    R, T = R.double().numpy(), T.double().numpy()
    position = -R.T @ T
    forward, up = R[2], -R[1]  # OpenCV: +z looks forward, +y points down the image
    center = np.asarray(bounds, dtype=np.float64).mean(0)
    distance = max(float(forward @ (center - position)), 1e-3)
    look_at = position + forward * distance
    half_extent = 0.5 * float(np.linalg.norm(np.ptp(np.asarray(bounds, dtype=np.float64), axis=0)))
    fov = math.degrees(2 * math.atan(1.1 * half_extent / distance))
    return {
        "position": tuple(position.tolist()),
        "look_at": tuple(look_at.tolist()),
        "up_direction": tuple(up.tolist()),
        "fov": min(max(fov, 20.0), 100.0),
    }


class StartAtTrainingCamera(ViewerControl):
    """Places every newly connected viewer client at ``start_pose`` of a camera given by ``camera_of()``."""

    def __init__(self, camera_of: Callable[[], tuple[torch.Tensor, torch.Tensor] | None], bounds: np.ndarray):
        self._camera_of = camera_of
        self._bounds = np.asarray(bounds, dtype=np.float64)

    def _setup(self, viewer) -> None:
        super()._setup(viewer)
        self.viser_server.on_client_connect(self.place)

    def place(self, client) -> None:
        """Moves a client's camera to the start pose (nothing happens when no camera is known yet)."""
        camera = self._camera_of()
        if camera is None:
            return
        pose = start_pose(*camera, self._bounds)
        scale = VISER_NERFSTUDIO_SCALE_RATIO
        with client.atomic():
            client.camera.fov = math.radians(pose["fov"])
            client.camera.up_direction = pose["up_direction"]
            client.camera.position = tuple(scale * x for x in pose["position"])
            client.camera.look_at = tuple(scale * x for x in pose["look_at"])
