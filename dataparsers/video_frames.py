"""Video files read frame by frame with PyAV (FFmpeg's libraries; no ffmpeg binary needed).

Every FFmpeg failure (a missing, corrupt or truncated file) is raised as ``CaptureError`` naming the
video, so a bad camera in a large capture is easy to find.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import numpy as np

from fourk4d_ns.io.errors import CaptureError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")

FrameKind = Literal["image", "mask"]
"""``image``: RGB uint8 [H,W,3]; ``mask``: boolean [H,W], the red channel above 127 is foreground (grey
mask videos have it in every channel; 4K4D's full-frame mask videos in the red channel only)."""
MASK_RULE = "red>127"
"""How mask frames are read, recorded with decoded masks so that a change decodes them again."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video's header says, before any decoding."""

    path: Path
    """The video file."""
    num_frames: int
    """Frames in the video stream (from the container, else by counting packets)."""
    height: int
    """Frame height in pixels."""
    width: int
    """Frame width in pixels."""


def list_videos(folder: Path) -> dict[str, Path]:
    """Video files of a folder keyed by stem (the camera name), sorted by name."""
    return {p.stem: p for p in sorted(Path(folder).iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES}


def holds_videos(folder: Path) -> bool:
    """Whether a folder directly contains video files (a video layout rather than image folders)."""
    return Path(folder).is_dir() and bool(list_videos(folder))


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def probe_video(path: Path) -> VideoInfo:
    """Frame count and size of a video's first video stream."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise CaptureError(path, "has no video stream")
            stream = container.streams.video[0]
            context = stream.codec_context
            if context is None or context.width <= 0 or context.height <= 0:  # e.g. a cut-off header
                raise CaptureError(path, "not a readable video (its video stream has no codec or frame size)")
            count = stream.frames
            if count <= 0:  # containers without an index (mkv, avi): count the packets instead
                count = sum(1 for packet in container.demux(stream) if packet.size > 0)
            return VideoInfo(path, int(count), context.height, context.width)
    except (av.FFmpegError, OSError) as err:
        raise CaptureError(path, f"not a readable video ({_reason(err)})") from None


def read_frames(path: Path, kind: FrameKind, limit: int) -> Iterator[np.ndarray]:
    """The first ``limit`` frames of a video, in order, as ``kind`` arrays.

    Raises ``CaptureError`` naming the video when it cannot be decoded or ends before ``limit`` frames.
    """
    path = Path(path)
    index = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # FFmpeg's own frame/slice threads: large frames decode several times faster
            for frame in container.decode(stream) if limit > 0 else ():
                if kind == "mask":
                    yield frame.to_ndarray(format="rgb24")[..., 0] > 127
                else:
                    yield frame.to_ndarray(format="rgb24")
                index += 1
                if index == limit:
                    break
    except (av.FFmpegError, OSError) as err:
        raise CaptureError(path, f"cannot decode frame {index} ({_reason(err)})") from None
    if index < limit:
        raise CaptureError(path, f"decoded only {index} of its {limit} frames: the video is truncated or corrupt")
