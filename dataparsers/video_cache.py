"""Frames decoded from one video per camera into a resumable cache: ``<root>/<camera>/<frame:06d>.<ext>``.

Images are stored as JPEG (quality 95, full-resolution chroma) unless PNG is asked for: the frames are
already lossy video, JPEG adds far less error than the codec did (measured in the README) and takes
a fraction of PNG's disk space and load time, which matters at 60 cameras x 150 frames x 2K.
Masks are always PNG with 0/255 values: read from mask videos (red channel above 127), or derived
from foreground-only image videos (``derived-mask``, see ``foreground_masks``). 4K4D's cropped
videos are pasted back into the camera's full frame first (``video_crops``).

Interruptions cost nothing but the frame in flight: every frame is written atomically, and each
camera folder holds a record (``decoded.json``) that says "in progress" while frames are written and
"complete", with the frame count, after the last one. A rerun skips complete cameras (after checking
that their frames are all there and that the source video is unchanged) and, in an unfinished camera,
keeps the whole frames already written.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from dataparsers.foreground_masks import RULE as DERIVED_MASK_RULE
from dataparsers.foreground_masks import foreground_mask
from dataparsers.video_crops import CropPlacement, parse_video_name
from dataparsers.video_frames import MASK_RULE, VideoInfo, probe_video, read_frames
from fourk4d_ns.io.atomic import atomic_write_bytes
from fourk4d_ns.io.errors import CaptureError
from fourk4d_ns.io.images import resize_image, resize_mask, scaled_size, write_image_atomic
from fourk4d_ns.io.progress import progress_bar

FrameFormat = Literal["jpg", "png"]
CacheKind = Literal["image", "mask", "derived-mask"]
"""What a camera's frames become: images, masks read from mask videos, or masks derived from
foreground-only image videos."""
RECORD_NAME = "decoded.json"
RECORD_VERSION = 1
JPEG_PARAMS = (cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444)


@dataclass(frozen=True)
class DecodedVideos:
    """Where a set of videos was decoded to, and what each camera's frames are."""

    root: Path
    """Folder with one sub-folder of frames per camera."""
    videos: dict[str, VideoInfo]
    """Each camera's video as probed (all its frames are decoded)."""
    frame_sizes: dict[str, tuple[int, int]]
    """(height, width) of each camera's decoded frames."""
    suffixes: dict[str, str]
    """File suffix of each camera's decoded frames (without the dot)."""

    @property
    def frame_counts(self) -> dict[str, int]:
        """Frames of each camera."""
        return {name: info.num_frames for name, info in self.videos.items()}

    def frame_path(self, camera: str, index: int) -> Path:
        """The decoded file of a camera's frame."""
        return self.root / camera / frame_file_name(index, self.suffixes[camera])


def frame_file_name(index: int, suffix: str) -> str:
    """File name of a decoded frame: six digits, like the EasyMocap layout."""
    return f"{index:06d}.{suffix}"


def write_frame(path: Path, frame: np.ndarray) -> None:
    """Write one decoded frame atomically (the format follows the suffix)."""
    write_image_atomic(path, frame, JPEG_PARAMS if path.suffix == ".jpg" else ())


def _read_record(folder: Path) -> dict | None:
    try:
        record = json.loads((folder / RECORD_NAME).read_text())
    except (OSError, ValueError):
        return None  # none yet, or damaged: the camera is decoded again
    return record if isinstance(record, dict) else None


def _write_record(folder: Path, record: dict) -> None:
    atomic_write_bytes(folder / RECORD_NAME, (json.dumps(record, indent=1) + "\n").encode())


@dataclass
class _CameraJob:
    """One camera's video and what its decoded frames must look like."""

    name: str
    info: VideoInfo
    folder: Path
    kind: CacheKind
    suffix: str
    size: tuple[int, int]
    placement: CropPlacement | None
    """Where a cropped video's frames go in the full frame (None: the video is the full frame)."""

    @property
    def source(self) -> dict:
        """Everything the decoded frames depend on; a record that differs in any of it is stale.

        (A cropped video's placement is in its file name; images have no rule, so their records from
        before masks had one stay valid.)"""
        stat = self.info.path.stat()
        return {
            "version": RECORD_VERSION,
            "source": str(self.info.path.resolve()),
            "source_bytes": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns,
            "kind": self.kind,
            "suffix": self.suffix,
            "height": self.size[0],
            "width": self.size[1],
            "rule": {"mask": MASK_RULE, "derived-mask": DERIVED_MASK_RULE}.get(self.kind),
        }

    def convert(self, frame: np.ndarray) -> np.ndarray:
        """A decoded frame as it is stored: in the full frame, at the cache's size, masks as 0/255."""
        if self.placement is not None:
            frame = self.placement.place(frame)
        if self.kind == "mask":
            return resize_mask(frame, self.size)
        frame = resize_image(frame, self.size)
        return foreground_mask(frame).astype(np.uint8) * 255 if self.kind == "derived-mask" else frame

    def is_complete(self, record: dict | None) -> bool:
        """Whether the record marks this very decode as finished and every frame file is there."""
        if record is None or not record.get("complete") or record.get("frames") != self.info.num_frames:
            return False
        if {k: record.get(k) for k in self.source} != self.source:
            return False
        present = {p.name for p in self.folder.iterdir()}
        return all(frame_file_name(i, self.suffix) in present for i in range(self.info.num_frames))

    def run(self, stop: threading.Event, advance: Callable[[], None]) -> None:
        """Decode every frame not yet on disk, then mark the camera complete."""
        if stop.is_set():
            return
        source = self.source
        record = _read_record(self.folder)
        if record is None or {k: record.get(k) for k in source} != source:
            shutil.rmtree(self.folder, ignore_errors=True)  # frames of another source or format
        self.folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.folder.glob(".*"):  # temporary files of a killed run
            leftover.unlink()
        present = {p.name for p in self.folder.iterdir()}
        _write_record(self.folder, {**source, "complete": False})
        frames = read_frames(self.info.path, "mask" if self.kind == "mask" else "image", self.info.num_frames)
        for index, frame in enumerate(frames):
            if stop.is_set():
                return
            name = frame_file_name(index, self.suffix)
            if name not in present:
                write_frame(self.folder / name, self.convert(frame))
            advance()
        _write_record(self.folder, {**source, "complete": True, "frames": self.info.num_frames})


def _existing_suffix(folder: Path) -> str | None:
    record = _read_record(folder)
    return record.get("suffix") if record is not None and record.get("complete") else None


def _full_frame(info: VideoInfo, expected: tuple[int, int] | None) -> tuple[tuple[int, int], CropPlacement | None]:
    """A video's full frame size (its own, or a cropped video's FHxFW) and placement, checked against
    the camera's size where known; ``CaptureError`` names the video otherwise."""
    if info.num_frames == 0:
        raise CaptureError(info.path, "the video has no frames")
    placement = parse_video_name(info.path)[1]
    if placement is not None:
        placement.check(info)
    size = placement.full if placement is not None else (info.height, info.width)
    if expected is not None and min(expected) > 0 and tuple(expected) != size:
        raise CaptureError(
            info.path,
            f"holds {size[1]}x{size[0]} (WxH) frames but the camera files give {expected[1]}x{expected[0]}",
        )
    return size, placement


def decode_videos(
    videos: Mapping[str, Path],
    root: Path,
    kind: CacheKind,
    frame_format: FrameFormat | None = None,
    downscale_factor: float = 1.0,
    progress: bool = True,
    workers: int | None = None,
    camera_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> DecodedVideos:
    """Decode every frame of each camera's video into ``root/<camera>/`` unless already there.

    ``kind``: see ``CacheKind``; ``frame_format`` applies to images (masks are PNG); None keeps an
    existing complete cache in whichever format it has and decodes new cameras to JPEG.
    ``downscale_factor`` shrinks frames with area interpolation as they are written. Cropped videos
    (``video_crops``) are pasted into their full frame. ``camera_sizes`` ((height, width), 0 where
    unknown) are what each camera's full frame must be. Raises ``CaptureError`` naming any video that
    cannot be read, decoded to its end, or placed.
    """
    root = Path(root)
    infos = {name: probe_video(path) for name, path in videos.items()}
    jobs = []
    for name, info in infos.items():
        full, placement = _full_frame(info, (camera_sizes or {}).get(name))
        folder = root / name
        suffix = "png" if kind != "image" else (frame_format or _existing_suffix(folder) or "jpg")
        size = scaled_size(*full, downscale_factor)
        jobs.append(_CameraJob(name, info, folder, kind, suffix, size, placement))
    pending = [job for job in jobs if not (job.folder.is_dir() and job.is_complete(_read_record(job.folder)))]

    if pending:
        stop = threading.Event()
        total = sum(job.info.num_frames for job in pending)
        videos_of = "foreground-only videos: deriving masks" if kind == "derived-mask" else f"{kind} videos"
        description = f"decoding {len(pending)} {videos_of} into {root}"
        with progress_bar(description, total, enabled=progress) as advance:
            pool = ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1))
            try:
                futures = [pool.submit(job.run, stop, advance) for job in pending]
                for future in futures:
                    future.result()
            except BaseException:
                stop.set()  # let the other cameras stop after their current frame
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    return DecodedVideos(root, infos, {j.name: j.size for j in jobs}, {j.name: j.suffix for j in jobs})


def common_frame_count(decoded: list[DecodedVideos]) -> int:
    """The frame count every camera has: the shortest video's. When videos differ in length, warn
    (naming the cameras and their counts) that only this common prefix is used."""
    counts = {(d.videos[name].path.parent.name, name): n for d in decoded for name, n in d.frame_counts.items()}
    common = min(counts.values())
    if any(n != common for n in counts.values()):
        listed = ", ".join(f"{folder}/{name}: {n}" for (folder, name), n in sorted(counts.items()))
        warnings.warn(
            f"videos differ in length ({listed}); using the first {common} frames of every camera", stacklevel=2
        )
    return common
