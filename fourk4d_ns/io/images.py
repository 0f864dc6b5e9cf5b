"""Image and mask files read and written with OpenCV (RGB in, RGB out; writes are atomic)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fourk4d_ns.io.atomic import atomic_write_bytes
from fourk4d_ns.io.errors import CaptureError


def scaled_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """Size of an image downscaled by ``factor`` (>= 1 shrinks), at least one pixel."""
    return max(1, int(round(height / factor))), max(1, int(round(width / factor)))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An image resized to (height, width): area interpolation when shrinking, bilinear when enlarging
    (OpenCV's area mode enlarges by repeating pixels); unchanged when already that size."""
    if image.shape[:2] == tuple(size):
        return image
    enlarging = size[0] * size[1] > image.shape[0] * image.shape[1]
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR if enlarging else cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A boolean mask resized to (height, width) as a 0/255 uint8 image: area-averaged, then cut at 127."""
    resized = resize_image(mask.astype(np.uint8) * 255, size)
    return np.where(resized > 127, 255, 0).astype(np.uint8)


def read_mask(path: Path) -> np.ndarray:
    """A mask file as a boolean array [H,W]: values above 127 are foreground (JPEG-safe)."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise CaptureError(path, "not a readable mask image")
    return mask > 127


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 [H,W,3]."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CaptureError(path, "not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_image_atomic(path: Path, image: np.ndarray, params: Sequence[int] = ()) -> None:
    """Write an image (RGB or single channel; format from the suffix, OpenCV ``params``) atomically."""
    data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, encoded = cv2.imencode(path.suffix, np.ascontiguousarray(data), list(params))
    if not ok:
        raise CaptureError(path, "could not be encoded")
    atomic_write_bytes(path, encoded.tobytes())
