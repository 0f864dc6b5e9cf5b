"""nerfstudio camera paths (the viewer's JSON): reading one into the views of a video, and writing
an orbit whose keyframes carry render times, so ``ns-render camera-path`` plays the sequence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fourk4d_ns.core.camera import opencv_to_opengl, orbit, rig_fov
from fourk4d_ns.core.timeline import frame_at_time, frame_time
from fourk4d_ns.integration.cameras import opencv_from_cameras
from fourk4d_ns.io.errors import InputError
from fourk4d_ns.playback.views import View


def orbit_camera_path(
    K: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    heights: np.ndarray,
    bounds: np.ndarray,
    frames: int,
    turns: float = 1.0,
    height: int = 512,
    width: int = 512,
    fps: float = 24.0,
) -> dict:
    """A camera path circling the subject (``bounds`` [2,3]) at a rig's distance, height and field of
    view (K, R [C,3,3], T [C,3], image heights [C]) while time runs from 0 to 1."""
    rotations, translations = orbit(R, T, np.asarray(bounds).mean(axis=0), frames, turns)
    fov = rig_fov(K, heights)
    keyframes = [
        {
            "camera_to_world": np.concatenate([c2w, [[0, 0, 0, 1]]]).ravel().tolist(),
            "fov": fov,
            "aspect": width / height,
            "render_time": frame_time(i, frames),
        }
        for i, c2w in enumerate(opencv_to_opengl(rotations, translations))
    ]
    return {
        "camera_type": "perspective",
        "render_height": height,
        "render_width": width,
        "fps": fps,
        "seconds": frames / fps,
        "smoothness_value": 0,
        "is_cycle": False,
        "crop": None,
        "camera_path": keyframes,
    }


def camera_path_views(path: Path, num_frames: int) -> tuple[list[View], float | None]:
    """The views of a nerfstudio camera path JSON (read with nerfstudio's ``get_path_from_json``) and its fps.

    When every keyframe has a ``render_time`` it picks the frame; otherwise the sequence plays once
    over the path, as in ``ns-render camera-path``.
    """
    from nerfstudio.cameras.camera_paths import get_path_from_json

    try:
        data = json.loads(Path(path).read_text())
        if data.get("camera_type", "perspective") != "perspective":
            raise ValueError(f"camera_type {data['camera_type']!r} (only perspective is supported)")
        cameras = get_path_from_json(data)
    except FileNotFoundError:
        raise InputError(f"{path}: no such camera path file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: not a usable nerfstudio camera path ({exc})") from None
    K, R, T = (x.double().numpy() for x in opencv_from_cameras(cameras))
    height, width = int(data["render_height"]), int(data["render_width"])
    count = len(cameras)
    views = []
    for i in range(count):
        time = float(cameras.times[i]) if cameras.times is not None else frame_time(i, count)
        views.append(View(K[i], R[i], T[i], height, width, frame_at_time(time, num_frames)))
    return views, data.get("fps")
