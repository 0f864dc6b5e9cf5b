"""The demo capture re-encoded into the video layouts real captures arrive in (``--videos``).

```
easymocap  DIR/videos/<cam>.mp4 (H.264)              DIR/masks/<cam>/<frame>.png, intri/extri.yml, split.json
4k4d       DIR/videos_<codec>/<cam>.mp4              DIR/videos_masks_<codec>/<cam>.mp4, intri/extri.yml, split.json
dynerf     DIR/cam00.mp4 ... DIR/camNN.mp4           DIR/poses_bounds.npy (no masks: the background stays)
```
4K4D's minimal datasets use libx265 (``videos_libx265/``); where PyAV's FFmpeg lacks it the next
available encoder is used and the folders are named after it. Frames are encoded at high quality
(CRF 12, full-resolution 4:4:4 chroma where the encoder supports it), so decoding them back is
close to the rendered PNGs (the test suite measures it).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from dataparsers.easymocap_cameras import CameraRig
from dataparsers.llff_poses import LLFFCameras, poses_bounds_rows
from fourk4d_ns.core.camera import opencv_to_opengl
from fourk4d_ns.io.atomic import atomic_path
from fourk4d_ns.io.images import read_image, read_mask
from fourk4d_ns.io.video import available_encoder, write_video

VideoLayout = Literal["easymocap", "4k4d", "dynerf"]
ENCODERS = ("libx265", "libx264", "mpeg4")
"""Encoders in order of preference for the 4K4D layout; the EasyMocap layout prefers libx264."""
CRF = 12
"""Constant rate factor of libx264/libx265: 0 is lossless, 18 is usually called visually lossless."""


def _encode_folders(
    source: Path,
    target: Path,
    cameras: Sequence[str],
    fps: float,
    encoder: str,
    masks: bool = False,
    names: Sequence[str] = (),
) -> None:
    """One video per camera from ``source/<cam>/*.png`` into ``target/<name>.mp4`` (name defaults to the camera)."""
    target.mkdir(parents=True, exist_ok=True)
    for camera, name in zip(cameras, names or cameras):
        files = sorted((source / camera).glob("*.png"))
        frames = (read_mask(p).astype(np.uint8) * 255 if masks else read_image(p) for p in files)
        write_video(target / f"{name}.mp4", frames, fps, encoder, crf=CRF, full_chroma=True)


def llff_cameras(rig: CameraRig, near_far: np.ndarray) -> LLFFCameras:
    """A rig with centered principal points as LLFF cameras (OpenGL camera-to-world, focal from fx)."""
    height, width = rig.height.astype(np.float64), rig.width.astype(np.float64)
    return LLFFCameras(opencv_to_opengl(rig.R, rig.T), height, width, rig.K[:, 0, 0].copy(), near_far)


def depth_bounds(rig: CameraRig, points: np.ndarray) -> np.ndarray:
    """[C,2] nearest and farthest depth of ``points`` [N,3] in each camera."""
    depth = np.einsum("cj,nj->cn", rig.R[:, 2, :], points) + rig.T[:, 2:3]
    return np.stack([depth.min(axis=1), depth.max(axis=1)], axis=1)


def convert_to_video_layout(
    scene: Path, layout: VideoLayout, rig: CameraRig, fps: float, subject_points: np.ndarray
) -> dict:
    """Replace a written image-layout capture's ``images/`` (and ``masks/``) by videos in ``layout``.

    ``subject_points`` (every frame's surface) set the DyNeRF near/far bounds. Returns what to
    record in demo.json about the encoding.
    """
    cameras = rig.names
    if layout == "easymocap":
        encoder = available_encoder(("libx264",) + ENCODERS)
        _encode_folders(scene / "images", scene / "videos", cameras, fps, encoder)
        shutil.rmtree(scene / "images")
    elif layout == "4k4d":
        encoder = available_encoder(ENCODERS)
        _encode_folders(scene / "images", scene / f"videos_{encoder}", cameras, fps, encoder)
        _encode_folders(scene / "masks", scene / f"videos_masks_{encoder}", cameras, fps, encoder, masks=True)
        shutil.rmtree(scene / "images")
        shutil.rmtree(scene / "masks")
    elif layout == "dynerf":
        encoder = available_encoder(ENCODERS)
        _encode_folders(
            scene / "images", scene, cameras, fps, encoder, names=[f"cam{i:02d}" for i in range(len(cameras))]
        )
        rows = poses_bounds_rows(llff_cameras(rig, depth_bounds(rig, subject_points)))
        with atomic_path(scene / "poses_bounds.npy") as tmp:
            np.save(tmp, rows)
        for leftover in ("images", "masks"):
            shutil.rmtree(scene / leftover)
        for leftover in ("intri.yml", "extri.yml", "split.json"):
            (scene / leftover).unlink()
    else:
        raise ValueError(f"unknown video layout {layout!r}; choose one of easymocap, 4k4d, dynerf")
    return {"video_layout": layout, "video_encoder": encoder, "video_crf": CRF if encoder != "mpeg4" else None}
