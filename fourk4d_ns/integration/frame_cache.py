"""Images and masks of a capture, loaded on demand and kept per frame under a memory budget.

A 60-camera x 150-frame capture at full resolution does not fit in memory, so images are decoded
when first asked for (as uint8) and grouped by frame: a training step touches the target image and
its image-based-rendering sources, all of one frame. Whole frames are evicted, least recently used
first, once the cache holds more than its byte budget. Distorted cameras are undistorted on load
into the pinhole camera of the capture's own K (``core.camera.undistortion_maps``), so that
everything downstream (training crops, image-based-rendering sources, evaluation) sees pinhole
images of the cameras the dataparser hands to nerfstudio.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fourk4d_ns.core.camera import undistortion_maps
from fourk4d_ns.io.errors import CaptureError
from fourk4d_ns.io.images import apply_color_curves, read_image, read_mask


@dataclass
class ImageSource:
    """Where one (camera, frame) image lives and how to undistort it."""

    image: Path
    """Image file."""
    mask: Path | None
    """Mask file, or None when the capture has no masks (everything is foreground)."""
    K: np.ndarray
    """Intrinsics [3,3] at the file's resolution (pixel centers at +0.5)."""
    dist: np.ndarray
    """OpenCV distortion (k1, k2, p1, p2, k3); zeros when undistorted already."""
    color_curves: np.ndarray | None = None
    """Per-channel color curves [3,3] applied as the image is decoded (``apply_color_curves``), or None."""


@dataclass
class LoadedImage:
    """A decoded, undistorted image and its mask."""

    rgb: np.ndarray
    """RGB uint8 [H,W,3]."""
    mask: np.ndarray
    """Foreground bool [H,W]."""

    @property
    def nbytes(self) -> int:
        return self.rgb.nbytes + self.mask.nbytes


def _undistort(image: np.ndarray, source: ImageSource, interpolation: int) -> np.ndarray:
    if not np.any(source.dist):
        return image
    map_x, map_y = undistortion_maps(source.K, source.dist, *image.shape[:2])
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_CONSTANT)


def load_image(source: ImageSource) -> LoadedImage:
    """Decode (and color-correct) and undistort one image and its mask; unreadable or mismatched files
    raise ``CaptureError``."""
    rgb = read_image(source.image)
    if source.color_curves is not None:
        rgb = apply_color_curves(rgb, source.color_curves)
    if source.mask is None:
        mask = np.ones(rgb.shape[:2], dtype=bool)
    else:
        mask = read_mask(source.mask)
        if mask.shape != rgb.shape[:2]:
            raise CaptureError(
                source.mask,
                f"mask is {mask.shape[1]}x{mask.shape[0]} but its image {source.image.name} "
                f"is {rgb.shape[1]}x{rgb.shape[0]}",
            )
    rgb = _undistort(rgb, source, cv2.INTER_LINEAR)
    mask = _undistort(mask.astype(np.uint8), source, cv2.INTER_NEAREST).astype(bool)
    return LoadedImage(rgb, mask)


class FrameImageCache:
    """(camera, frame) -> ``LoadedImage``, cached per frame, least recently used frames evicted."""

    def __init__(self, sources: dict[tuple[int, int], ImageSource], budget_bytes: int):
        self.sources = sources
        self.budget_bytes = budget_bytes
        self._frames: OrderedDict[int, dict[int, LoadedImage]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[int, int]) -> bool:
        return key in self.sources

    def get(self, camera: int, frame: int) -> LoadedImage:
        """The image of a camera at a frame, loading it if needed."""
        with self._lock:
            cached = self._frames.get(frame, {}).get(camera)
            if cached is not None:
                self._frames.move_to_end(frame)
                return cached
        if (camera, frame) not in self.sources:
            raise KeyError(f"no image for camera index {camera} at frame index {frame}")
        loaded = load_image(self.sources[(camera, frame)])  # outside the lock: other images load meanwhile
        with self._lock:
            images = self._frames.setdefault(frame, {})
            if camera in images:  # another thread loaded it meanwhile: keep one copy, counted once
                loaded = images[camera]
            else:
                images[camera] = loaded
                self._bytes += loaded.nbytes
            self._frames.move_to_end(frame)
            while self._bytes > self.budget_bytes and len(self._frames) > 1:
                _, evicted = self._frames.popitem(last=False)
                self._bytes -= sum(image.nbytes for image in evicted.values())
        return loaded

    @property
    def cached_bytes(self) -> int:
        return self._bytes
