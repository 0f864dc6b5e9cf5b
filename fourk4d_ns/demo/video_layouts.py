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
from fractions import Fraction
from pathlib import Path
from typing import Literal, Sequence

import av
import numpy as np

from dataparsers.atomic import atomic_path
from dataparsers.easymocap_cameras import CameraRig
from dataparsers.image_files import read_image, read_mask
from dataparsers.llff_poses import LLFFCameras, poses_bounds_rows

VideoLayout = Literal["easymocap", "4k4d", "dynerf"]
ENCODERS = ("libx265", "libx264", "mpeg4")
"""Encoders in order of preference for the 4K4D layout; the EasyMocap layout prefers libx264."""
CRF = 12
"""Constant rate factor of libx264/libx265: 0 is lossless, 18 is usually called visually lossless."""


def available_encoder(preferred: Sequence[str] = ENCODERS) -> str:
    """The first of ``preferred`` that this PyAV build can encode with."""
    for name in preferred:
        try:
            av.codec.Codec(name, "w")
            return name
        except av.codec.codec.UnknownCodecError:
            continue
    raise RuntimeError(f"PyAV's FFmpeg has none of the video encoders {list(preferred)}")


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float, encoder: str) -> None:
    """Encode RGB [H,W,3] or grey [H,W] uint8 frames (all of one size) into a video file, atomically."""
    codec = av.codec.Codec(encoder, "w")
    formats = {f.name for f in codec.video_formats or ()}
    with atomic_path(Path(path)) as tmp, av.open(str(tmp), "w") as container:
        stream = container.add_stream(encoder, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv444p" if "yuv444p" in formats else "yuv420p"
        if encoder in ("libx264", "libx265"):
            stream.options = {"crf": str(CRF), "preset": "medium"}
            if encoder == "libx265":
                stream.options["x265-params"] = "log-level=error"
        else:
            stream.options = {"qscale": "2"}  # mpeg4: highest constant quality
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24" if frame.ndim == 3 else "gray")
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())


def _encode_folders(source: Path, target: Path, cameras: Sequence[str], fps: float, encoder: str,
                    masks: bool = False, names: Sequence[str] = ()) -> None:
    """One video per camera from ``source/<cam>/*.png`` into ``target/<name>.mp4`` (name defaults to the camera)."""
    target.mkdir(parents=True, exist_ok=True)
    for camera, name in zip(cameras, names or cameras):
        files = sorted((source / camera).glob("*.png"))
        frames = [read_mask(p).astype(np.uint8) * 255 if masks else read_image(p) for p in files]
        write_video(target / f"{name}.mp4", frames, fps, encoder)


def llff_cameras(rig: CameraRig, near_far: np.ndarray) -> LLFFCameras:
    """A rig with centred principal points as LLFF cameras (OpenCV world-to-camera to OpenGL camera-to-world)."""
    rotation_c2w = np.transpose(rig.R, (0, 2, 1))
    camera_to_world = np.concatenate([rotation_c2w, rig.centers[:, :, None]], axis=2)
    camera_to_world[:, :, 1:3] *= -1  # OpenCV (y down, z forward) to OpenGL (y up, z back)
    height, width = rig.height.astype(np.float64), rig.width.astype(np.float64)
    return LLFFCameras(camera_to_world, height, width, rig.K[:, 0, 0].copy(), near_far)


def depth_bounds(rig: CameraRig, points: np.ndarray) -> np.ndarray:
    """[C,2] nearest and farthest depth of ``points`` [N,3] in each camera."""
    depth = np.einsum("cj,nj->cn", rig.R[:, 2, :], points) + rig.T[:, 2:3]
    return np.stack([depth.min(axis=1), depth.max(axis=1)], axis=1)


def convert_to_video_layout(scene: Path, layout: VideoLayout, rig: CameraRig, fps: float, subject_points: np.ndarray) -> dict:
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
        encoder = available_encoder()
        _encode_folders(scene / "images", scene / f"videos_{encoder}", cameras, fps, encoder)
        _encode_folders(scene / "masks", scene / f"videos_masks_{encoder}", cameras, fps, encoder, masks=True)
        shutil.rmtree(scene / "images")
        shutil.rmtree(scene / "masks")
    elif layout == "dynerf":
        encoder = available_encoder()
        _encode_folders(scene / "images", scene, cameras, fps, encoder, names=[f"cam{i:02d}" for i in range(len(cameras))])
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
