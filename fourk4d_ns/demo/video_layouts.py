"""The demo capture re-encoded into the video layouts real captures arrive in (``--videos``).

```
easymocap        DIR/videos/<cam>.mp4 (H.264)     DIR/masks/<cam>/<frame>.png, intri/extri.yml, split.json
4k4d             DIR/videos_<codec>/<cam>.mp4     DIR/videos_masks_<codec>/<cam>.mp4, intri/extri.yml, split.json
4k4d-cropped     DIR/videos_<codec>/<cam>_N<n>_x<x>_y<y>_W<w>_H<h>_FW<w>_FH<h>.mp4  (no mask videos)
4k4d-foreground  DIR/videos_<codec>/<cam>.mp4     (no mask videos)
dynerf           DIR/cam00.mp4 ... DIR/camNN.mp4  DIR/poses_bounds.npy (no masks: the background stays)
```
``4k4d-cropped`` and ``4k4d-foreground`` hold the subject on black (the image times its mask), as
4K4D's minimal datasets of DNA-Rendering, NHR and ZJU-MoCap do; the cropped videos are cut to each
camera's box around the subject over all frames plus a margin (``dataparsers.video_crops`` names
them). 4K4D's minimal datasets use libx265 (``videos_libx265/``); where PyAV's FFmpeg lacks it the
next available encoder is used and the folders are named after it. Frames are encoded at high
quality (CRF 12, full-resolution 4:4:4 chroma where the encoder supports it), so decoding them back
is close to the rendered PNGs (the test suite measures it).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

import cv2
import numpy as np
from scipy import ndimage

from dataparsers.easymocap_cameras import CameraRig
from dataparsers.llff_poses import LLFFCameras, poses_bounds_rows
from dataparsers.video_crops import CropPlacement
from fourk4d_ns.core.camera import opencv_to_opengl
from fourk4d_ns.io.atomic import atomic_path
from fourk4d_ns.io.images import read_image, read_mask, resize_image, resize_mask
from fourk4d_ns.io.video import available_encoder, write_video

VideoLayout = Literal["easymocap", "4k4d", "4k4d-cropped", "4k4d-foreground", "dynerf"]
ENCODERS = ("libx265", "libx264", "mpeg4")
"""Encoders in order of preference for the 4K4D layout; the EasyMocap layout prefers libx264."""
CRF = 12
"""Constant rate factor of libx264/libx265: 0 is lossless, 18 is usually called visually lossless."""
CROP_MARGIN = 0.05
"""Margin around the subject's box in cropped videos, as a fraction of the box's longer side (at least 2 px)."""
MIN_CROP = 16
"""Smallest side of a cropped video: x265 refuses smaller pictures."""


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


def _grown(start: int, stop: int, size: int, length: int) -> tuple[int, int]:
    """The span [start, stop) grown to at least ``size`` and to an even length, inside [0, length)."""
    target = min(length, max(size, stop - start))
    target += target % 2 if target < length else 0
    stop = min(length, max(stop, start + target))
    return max(0, stop - target), stop


def subject_box(masks: Sequence[np.ndarray]) -> tuple[int, int, int, int]:
    """(x, y, width, height) around every frame's mask plus ``CROP_MARGIN``, inside the frame; sides are
    even (4:2:0 encoders drop an odd last row or column) and at least ``MIN_CROP`` where the frame allows."""
    height, width = masks[0].shape
    union = np.any(np.stack(masks), axis=0)
    if not union.any():
        return 0, 0, width, height
    x, y, w, h = cv2.boundingRect(union.astype(np.uint8))
    margin = max(2, round(CROP_MARGIN * max(w, h)))
    x0, x1 = _grown(max(0, x - margin), min(width, x + w + margin), MIN_CROP, width)
    y0, y1 = _grown(max(0, y - margin), min(height, y + h + margin), MIN_CROP, height)
    return x0, y0, x1 - x0, y1 - y0


def with_black_clothing(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The image with black clothing across the middle third of the subject's rows: pixels deeper inside
    the mask than 2% of the image size (at least 1.5 px) become 1-4 levels per channel, fabric just
    above the black level, enclosed by the figure's lit edge. Shows what mask derivation recovers."""
    inside = ndimage.distance_transform_edt(mask) > max(1.5, 0.02 * max(mask.shape))
    rows = np.flatnonzero(mask.any(axis=1))
    if not len(rows):
        return image
    third = (rows[-1] - rows[0]) // 3
    inside[: rows[0] + third] = False
    inside[rows[0] + 2 * third + 1 :] = False
    dark = image.copy()
    dark[inside] = rng.integers(1, 5, size=(int(inside.sum()), 3))
    return dark


def write_foreground_videos(
    scene: Path,
    target: Path,
    cameras: Sequence[str],
    fps: float,
    encoder: str,
    cropped: bool,
    scale: float = 1.0,
    black_clothing: bool = False,
) -> None:
    """One video per camera of the subject on black (``images/`` times ``masks/``) into ``target``: full
    frames as ``<cam>.mp4``, or, ``cropped``, as 4K4D names and cuts them (see ``video_crops``), after
    resizing to ``scale`` times the full size as 4K4D does (``int(size * scale)``). ``black_clothing``
    dresses the figure with ``with_black_clothing`` (seeded per camera)."""
    target.mkdir(parents=True, exist_ok=True)
    for index, camera in enumerate(cameras):
        files = sorted((scene / "images" / camera).glob("*.png"))
        masks = [read_mask(scene / "masks" / camera / p.name) for p in files]
        frames = [read_image(p) * m[..., None].astype(np.uint8) for p, m in zip(files, masks)]
        if black_clothing:
            rng = np.random.default_rng(index)
            frames = [with_black_clothing(f, m, rng) for f, m in zip(frames, masks)]
        full = masks[0].shape
        canvas = (int(full[0] * scale), int(full[1] * scale))
        frames = [resize_image(f, canvas) for f in frames]
        name = camera
        if cropped:
            x, y, w, h = subject_box([resize_mask(m, canvas) > 0 for m in masks])
            name = CropPlacement(len(frames), x, y, canvas, full).stem(camera)
            frames = [f[y : y + h, x : x + w] for f in frames]
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
    elif layout in ("4k4d-cropped", "4k4d-foreground"):
        encoder = available_encoder(ENCODERS)
        cropped = layout == "4k4d-cropped"
        write_foreground_videos(scene, scene / f"videos_{encoder}", cameras, fps, encoder, cropped)
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
        raise ValueError(f"unknown video layout {layout!r}; choose one of {', '.join(get_args(VideoLayout))}")
    return {"video_layout": layout, "video_encoder": encoder, "video_crf": CRF if encoder != "mpeg4" else None}
