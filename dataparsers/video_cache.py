"""Frames decoded from one video per camera into a resumable cache: ``<root>/<camera>/<frame:06d>.<ext>``.

Images are stored as JPEG (quality 95, full-resolution chroma) unless PNG is asked for: the frames are
already lossy video, JPEG adds far less error than the codec did (measured in the README) and takes
a fraction of PNG's disk space and load time, which matters at 60 cameras x 150 frames x 2K.
Masks are always PNG with 0/255 values (decoded luma above 127 is foreground).

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

from dataparsers.video_frames import FrameKind, VideoInfo, probe_video, read_frames
from fourk4d_ns.io.atomic import atomic_write_bytes
from fourk4d_ns.io.errors import CaptureError
from fourk4d_ns.io.images import resize_image, resize_mask, scaled_size, write_image_atomic
from fourk4d_ns.io.progress import progress_bar

FrameFormat = Literal["jpg", "png"]
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
    kind: FrameKind
    suffix: str
    size: tuple[int, int]

    @property
    def source(self) -> dict:
        """Everything the decoded frames depend on; a record that differs in any of it is stale."""
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
        }

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
        for index, frame in enumerate(read_frames(self.info.path, self.kind, self.info.num_frames)):
            if stop.is_set():
                return
            name = frame_file_name(index, self.suffix)
            if name not in present:
                frame = resize_mask(frame, self.size) if self.kind == "mask" else resize_image(frame, self.size)
                write_frame(self.folder / name, frame)
            advance()
        _write_record(self.folder, {**source, "complete": True, "frames": self.info.num_frames})


def _existing_suffix(folder: Path) -> str | None:
    record = _read_record(folder)
    return record.get("suffix") if record is not None and record.get("complete") else None


def decode_videos(
    videos: Mapping[str, Path],
    root: Path,
    kind: FrameKind,
    frame_format: FrameFormat | None = None,
    downscale_factor: float = 1.0,
    progress: bool = True,
    workers: int | None = None,
) -> DecodedVideos:
    """Decode every frame of each camera's video into ``root/<camera>/`` unless already there.

    ``frame_format`` applies to images (masks are PNG); None keeps an existing complete cache in
    whichever format it has and decodes new cameras to JPEG. ``downscale_factor`` shrinks frames
    with area interpolation as they are written. Raises ``CaptureError`` naming any video that cannot
    be read or decoded to its end.
    """
    root = Path(root)
    infos = {name: probe_video(path) for name, path in videos.items()}
    for info in infos.values():
        if info.num_frames == 0:
            raise CaptureError(info.path, "the video has no frames")
    jobs = []
    for name, info in infos.items():
        folder = root / name
        suffix = "png" if kind == "mask" else (frame_format or _existing_suffix(folder) or "jpg")
        size = scaled_size(info.height, info.width, downscale_factor)
        jobs.append(_CameraJob(name, info, folder, kind, suffix, size))
    pending = [job for job in jobs if not (job.folder.is_dir() and job.is_complete(_read_record(job.folder)))]

    if pending:
        stop = threading.Event()
        total = sum(job.info.num_frames for job in pending)
        description = f"decoding {len(pending)} {kind} videos into {root}"
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
