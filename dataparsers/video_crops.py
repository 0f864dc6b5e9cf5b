"""4K4D's cropped videos, ``<cam>_N<n>_x<x>_y<y>_W<w>_H<h>_FW<fw>_FH<fh>.mp4``, and which video is a camera's.

4K4D's minimal datasets store each camera's (masked) frames cropped to the subject's bounding box
over the whole sequence: the frames are first resized from the camera's full FWxFH to a WxH canvas
(half size by default), then cut at (x, y); the crop's own size is the video's frame size, and N its
frame count. Reading reverses it, as 4K4D's ``extract_images.py`` does: each decoded frame is pasted
at (x, y) into a black WxH canvas, and the canvas is resized to FWxFH, the size the camera files
describe. Camera names contain no ``_`` in this form.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataparsers.video_frames import VideoInfo, list_videos
from fourk4d_ns.io.errors import CaptureError

CROPPED_NAME = re.compile(
    r"(?P<camera>[^_]+)_N(?P<frames>\d+)_x(?P<x>\d+)_y(?P<y>\d+)_W(?P<width>\d+)_H(?P<height>\d+)"
    r"_FW(?P<full_width>\d+)_FH(?P<full_height>\d+)"
)
LOOKS_CROPPED = re.compile(r"_N\d+_x")
"""A stem with this in it is meant to be a cropped-video name; one that does not parse is an error."""
NAME_FORM = "<camera>_N<frames>_x<x>_y<y>_W<canvas width>_H<canvas height>_FW<full width>_FH<full height>"


@dataclass(frozen=True)
class CropPlacement:
    """Where a cropped video's frames go in its camera's full frame."""

    num_frames: int
    """N: frames in the video."""
    x: int
    """Left edge of the crop in the canvas."""
    y: int
    """Top edge of the crop in the canvas."""
    canvas: tuple[int, int]
    """(H, W): the full frame at the stored scale, into which crops are pasted."""
    full: tuple[int, int]
    """(FH, FW): the camera's full frame, the size the camera files describe."""

    def stem(self, camera: str) -> str:
        """The video's file stem for ``camera``."""
        (height, width), (full_height, full_width) = self.canvas, self.full
        return f"{camera}_N{self.num_frames}_x{self.x}_y{self.y}_W{width}_H{height}_FW{full_width}_FH{full_height}"

    def check(self, info: VideoInfo) -> None:
        """Raise ``CaptureError`` naming the video when its name does not fit the video or itself."""
        (height, width), (full_height, full_width) = self.canvas, self.full
        if min(height, width, full_height, full_width) <= 0:
            raise CaptureError(info.path, "the canvas and full sizes in the name (W, H, FW, FH) must be positive")
        if self.x + info.width > width or self.y + info.height > height:
            raise CaptureError(
                info.path,
                f"its {info.width}x{info.height} frames placed at x{self.x}, y{self.y} do not fit in the "
                f"W{width}xH{height} canvas its name gives",
            )
        if abs(width * full_height - height * full_width) > max(full_width, full_height):
            raise CaptureError(
                info.path,
                f"the W{width}xH{height} canvas in its name is not the FW{full_width}xFH{full_height} "
                "full frame scaled (the aspect ratios differ)",
            )
        if self.num_frames != info.num_frames:
            raise CaptureError(
                info.path, f"its name says N{self.num_frames} frames but the video holds {info.num_frames}"
            )

    def place(self, frame: np.ndarray) -> np.ndarray:
        """The canvas [H,W,...] with ``frame`` at (x, y) and black (zero) elsewhere."""
        canvas = np.zeros(self.canvas + frame.shape[2:], dtype=frame.dtype)
        canvas[self.y : self.y + frame.shape[0], self.x : self.x + frame.shape[1]] = frame
        return canvas


def parse_video_name(path: Path) -> tuple[str, CropPlacement | None]:
    """The camera a video belongs to, and its crop placement when it is a cropped video."""
    stem = Path(path).stem
    match = CROPPED_NAME.fullmatch(stem)
    if match is None:
        if LOOKS_CROPPED.search(stem):
            raise CaptureError(path, f"not a valid cropped-video name (expected {NAME_FORM})")
        return stem, None
    number = {key: int(value) for key, value in match.groupdict().items() if key != "camera"}
    placement = CropPlacement(
        number["frames"],
        number["x"],
        number["y"],
        (number["height"], number["width"]),
        (number["full_height"], number["full_width"]),
    )
    return match["camera"], placement


def camera_video_files(folder: Path) -> dict[str, Path]:
    """Each camera's video in ``folder``, by camera name (sorted).

    A camera with both a plain ``<cam>.mp4`` and a cropped video uses the plain one (it holds the
    whole frame; nothing needs rebuilding), with a warning naming the ignored file; two cropped
    videos of one camera are an error.
    """
    plain: dict[str, Path] = {}
    cropped: dict[str, list[Path]] = {}
    for path in list_videos(folder).values():
        camera, placement = parse_video_name(path)
        if placement is None:
            plain[camera] = path
        else:
            cropped.setdefault(camera, []).append(path)
    for camera, paths in cropped.items():
        if camera in plain:
            ignored = ", ".join(p.name for p in paths)
            warnings.warn(f"{folder}: camera '{camera}' has a plain video; ignoring {ignored}", stacklevel=2)
        elif len(paths) > 1:
            raise CaptureError(
                folder, f"camera '{camera}' has several cropped videos ({', '.join(p.name for p in paths)})"
            )
    videos = plain | {camera: paths[0] for camera, paths in cropped.items() if camera not in plain}
    return dict(sorted(videos.items()))
