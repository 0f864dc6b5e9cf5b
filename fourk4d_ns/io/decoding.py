"""Strict decoding of image and mask files: does a file decode completely, with both readers?

OpenCV, which reads the files for training, returns a partly decoded image of a truncated JPEG with
only a warning on stderr, and refuses a PNG that lacks its end chunk, which Pillow reads. A file
counts as decodable when Pillow decodes it completely (truncated files not allowed) and OpenCV reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from fourk4d_ns.io.errors import CaptureError


@dataclass
class DecodedFile:
    """What decoding one file found."""

    height: int = 0
    """Image height in pixels (0 when the file cannot be decoded)."""
    width: int = 0
    """Image width in pixels."""
    problem: str | None = None
    """Why the file cannot be decoded; None when it can."""
    coverage: float | None = None
    """Masks only: the fraction of foreground pixels."""


def decode_strictly(path: Path, read: Callable[[Path], np.ndarray]) -> DecodedFile:
    """Decodes a file completely with Pillow, then with ``read`` (``io.images.read_image``, or a mask
    reader returning a boolean array, whose mean is then the coverage); never raises for a bad file."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a global some libraries set; it would hide truncated files
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set: truncated images would pass unnoticed")
    try:
        with Image.open(path) as image:
            image.load()
    except UnidentifiedImageError:
        return DecodedFile(problem="not an image file (Pillow recognizes no format)")
    except Exception as err:  # Pillow raises several types for unreadable files
        return DecodedFile(problem=f"{type(err).__name__}: {err}")
    try:
        pixels = read(path)
    except CaptureError as err:
        return DecodedFile(problem=f"OpenCV: {err.problem}")
    height, width = pixels.shape[:2]
    return DecodedFile(height, width, None, float(pixels.mean()) if pixels.dtype == bool else None)
