"""Image and mask files: strict decoding, header checks, mask conventions and atomic writes (RGB in, RGB out).

Decoding is strict: a truncated or corrupt file is a ``CaptureError`` naming it, never a partly
decoded image. JPEG goes through libjpeg-turbo with its warnings raised as errors (simplejpeg;
OpenCV would return the decoded part with only a printed warning); PNG through OpenCV, which
refuses damaged PNG files itself. The file's content decides its format, not its suffix.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
from PIL import Image

from fourk4d_ns.io.atomic import atomic_write_bytes
from fourk4d_ns.io.errors import CaptureError

JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC
END_WINDOW = 64
"""How many bytes at a file's end may follow its end marker (padding, trailers) and not count as damage."""
MASK_SAMPLE = 16
"""How many files of a mask folder ``mask_convention`` looks at by default."""


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


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise CaptureError(path, f"cannot be read ({err.strerror or err})") from None


def _decode(path: Path, data: bytes, unchanged: bool = False) -> np.ndarray:
    """Strictly decoded pixels: RGB uint8 [H,W,3], or with ``unchanged`` a PNG's own bit depth and
    channels (RGB/RGBA order); JPEG is always 8-bit RGB."""
    if data.startswith(JPEG_START):
        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
        except (ValueError, RuntimeError) as err:
            raise CaptureError(path, f"corrupt or truncated JPEG ({err})") from None
    if data.startswith(PNG_START):
        flag = cv2.IMREAD_UNCHANGED if unchanged else cv2.IMREAD_COLOR
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        if image is None:
            raise CaptureError(path, "corrupt or truncated PNG")
        if image.ndim == 3 and image.shape[2] >= 3:  # OpenCV's BGR(A) to RGB(A)
            image = image[..., [2, 1, 0, 3][: image.shape[2]]]
        return np.ascontiguousarray(image)
    raise CaptureError(path, "not a readable image (neither JPEG nor PNG)")


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 [H,W,3], decoded strictly (truncated or corrupt files raise ``CaptureError``)."""
    return _decode(path, _read_bytes(path))


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, once the file is known to be complete."""

    height: int
    width: int
    format: str
    """"JPEG" or "PNG"."""
    mode: str
    """Pillow's pixel mode: "L" (8-bit gray), "RGB", "I;16" (16-bit gray), "P" (palette), ..."""


def read_image_header(path: Path) -> ImageHeader:
    """Size and format from the header, and a check that the file is complete without decoding it: a
    JPEG's end-of-image marker or a PNG's IEND chunk must lie in its last ``END_WINDOW`` bytes (a
    truncated file, the usual damage of an interrupted copy, lacks them; scan data cannot hold the
    JPEG marker). Other files are decoded strictly to decide. Unreadable, truncated or non-JPEG/PNG
    files raise ``CaptureError``."""
    try:
        with open(path, "rb") as file, Image.open(file) as image:
            (width, height), kind, mode = image.size, image.format, image.mode
            file.seek(0, 2)
            file.seek(max(0, file.tell() - END_WINDOW))
            tail = file.read()
    except Exception as err:  # Pillow raises several types for unreadable files
        raise CaptureError(path, f"not a readable image ({type(err).__name__}: {err})") from None
    kind = "JPEG" if kind == "MPO" else kind  # multi-picture JPEG (some cameras): a JPEG first
    if kind not in ("JPEG", "PNG"):
        raise CaptureError(path, f"not a readable image (a {kind} file; JPEG or PNG expected)")
    if (JPEG_END if kind == "JPEG" else PNG_END) not in tail:
        _decode(path, _read_bytes(path))  # raises unless the data merely continues past the image's end
    return ImageHeader(height, width, kind, mode)


def write_image_atomic(path: Path, image: np.ndarray, params: Sequence[int] = ()) -> None:
    """Write an image (RGB or single channel; format from the suffix, OpenCV ``params``) atomically."""
    data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, encoded = cv2.imencode(path.suffix, np.ascontiguousarray(data), list(params))
    if not ok:
        raise CaptureError(path, "could not be encoded")
    atomic_write_bytes(path, encoded.tobytes())


# --- masks ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskConvention:
    """How a set of mask files marks the foreground (``mask_convention`` tells)."""

    name: str
    """Readable name: "0/1 labels", "label values", "RGB label map", "0/255", "soft (threshold 128)", ..."""
    nonzero: bool
    """Foreground is any non-zero value; otherwise a value above half the file type's maximum."""

    def foreground(self, values: np.ndarray) -> np.ndarray:
        """Foreground [H,W] of a mask's largest channel value per pixel (uint8 or uint16)."""
        if self.nonzero:
            return values > 0
        return values > np.iinfo(values.dtype).max // 2


@dataclass(frozen=True)
class _MaskSample:
    """What one mask file shows of its convention."""

    peak: int
    """Largest value."""
    type_max: int
    """Largest value of the file's type (255, 65535)."""
    intermediate: bool
    """Some value lies strictly between 0 and ``type_max``."""
    colored: bool
    """A lossless file with color channels that differ somewhere: a palette or label color map."""
    lossy: bool
    """JPEG."""

    @classmethod
    def of(cls, values: np.ndarray, colored: bool, lossy: bool) -> _MaskSample:
        type_max = int(np.iinfo(values.dtype).max)
        return cls(
            int(values.max(initial=0)), type_max, bool(((values > 0) & (values < type_max)).any()), colored, lossy
        )


def _mask_values(path: Path) -> tuple[np.ndarray, _MaskSample]:
    """A mask's largest channel value per pixel [H,W] (alpha ignored) and what it shows of its convention."""
    data = _read_bytes(path)
    pixels = _decode(path, data, unchanged=True)
    lossy = data.startswith(JPEG_START)
    colored = False
    if pixels.ndim == 3:
        channels = [pixels[..., c] for c in range(3 if pixels.shape[2] >= 3 else 1)]
        colored = not lossy and len(channels) == 3 and any(np.any(c != channels[0]) for c in channels[1:])
        pixels = np.maximum.reduce(channels)  # per channel: ndarray.max(axis=2) is ten times slower
    return pixels, _MaskSample.of(pixels, colored, lossy)


def _decide(samples: Sequence[_MaskSample]) -> MaskConvention:
    """The convention the samples show together (see ``mask_convention``)."""
    if all(s.peak == 0 for s in samples):
        return MaskConvention("all background", nonzero=True)
    if any(s.colored for s in samples):
        return MaskConvention("RGB label map", nonzero=True)
    if all(s.peak <= 1 for s in samples):
        return MaskConvention("0/1 labels", nonzero=True)
    if all(s.peak <= s.type_max // 2 for s in samples):
        return MaskConvention("label values", nonzero=True)
    top = max(s.type_max for s in samples)
    if not any(s.intermediate for s in samples):
        return MaskConvention(f"0/{top}", nonzero=False)
    kind = "JPEG" if all(s.lossy for s in samples) else "soft"
    return MaskConvention(f"{kind} (threshold {top // 2 + 1})", nonzero=False)


def mask_convention(paths: Sequence[Path], sample: int | None = MASK_SAMPLE) -> MaskConvention:
    """The foreground convention of a set of mask files, decided from up to ``sample`` of them spread
    evenly over the list (every file when None), read together:

    - "all background": every value is 0 (foreground: non-zero, should other files have any);
    - "RGB label map": lossless color files whose channels differ (parsing palettes): non-zero in any channel;
    - "0/1 labels": no value above 1: non-zero;
    - "label values": no value above half the type's maximum (class indices; 0/255 stored in 16 bits): non-zero;
    - "0/255" ("0/65535"): only 0 and the maximum: above half the maximum;
    - "JPEG (threshold 128)", "soft (threshold 128)" (mattes; 32768 for 16 bits): above half the maximum.

    Values are the largest channel of each pixel, so 3-channel and gray files read alike. The set
    decides, not each file: an all-background frame, or a matte that happens to be 0/255 in one
    frame, says nothing about its folder alone. Unreadable files raise ``CaptureError``.
    """
    paths = list(paths)
    if not paths:
        raise ValueError("no mask files to look at")
    if sample is not None and len(paths) > sample:
        paths = [paths[i] for i in sorted(set(np.linspace(0, len(paths) - 1, sample).round().astype(int)))]
    with ThreadPoolExecutor(max_workers=4) as pool:
        samples = [found for _, found in pool.map(_mask_values, paths)]
    return _decide(samples)


def read_mask(path: Path, convention: MaskConvention | None = None) -> np.ndarray:
    """A mask file as a boolean foreground [H,W] under ``convention`` (by default the file's own, as
    ``mask_convention([path])`` would find it), decoded strictly."""
    values, sample = _mask_values(path)
    return (convention or _decide([sample])).foreground(values)


# --- color correction -----------------------------------------------------------------------------


def color_curve_values(curves: np.ndarray) -> np.ndarray:
    """[3, 256]: each channel's curve ``a x² + b x + c`` (``curves`` [3,3]: rows R, G, B; columns a, b, c) at 0..255."""
    x = np.arange(256.0)
    return curves[:, :1] * x**2 + curves[:, 1:2] * x + curves[:, 2:]


def color_curves_problem(curves: np.ndarray) -> str | None:
    """Why ``curves`` [3,3] are not plausible per-channel tone curves (see ``apply_color_curves``), or None.

    They must rise over 0..255 and keep it within -64..320: a 3x3 color *matrix* read as curves
    (x² terms near 1) fails both.
    """
    values = color_curve_values(curves)
    if np.any(np.diff(values, axis=1) <= 0):
        return "its curves do not rise over 0..255"
    if values.min() < -64 or values.max() > 320:
        return f"its curves map 0..255 to {values.min():.4g}..{values.max():.4g}"
    return None


def apply_color_curves(rgb: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """An RGB uint8 image through per-channel curves ``a x² + b x + c`` on 0..255 values (``curves``
    [3,3]: rows R, G, B; columns a, b, c), rounded and clipped to 0..255: DNA-Rendering's ``ccm_``."""
    table = np.clip(np.round(color_curve_values(curves)), 0, 255).astype(np.uint8)
    return cv2.LUT(np.ascontiguousarray(rgb), np.ascontiguousarray(table.T.reshape(256, 1, 3)))
