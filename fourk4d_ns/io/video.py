"""Video files written with PyAV (FFmpeg's libraries; no ffmpeg program needed), atomically."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from fourk4d_ns.io.atomic import atomic_path


def available_encoder(preferred: Sequence[str]) -> str:
    """The first of ``preferred`` that this PyAV build can encode with."""
    for name in preferred:
        try:
            av.codec.Codec(name, "w")
            return name
        except av.codec.codec.UnknownCodecError:
            continue
    raise RuntimeError(f"PyAV's FFmpeg has none of the video encoders {list(preferred)}")


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: float,
    encoder: str = "libx264",
    crf: int | None = None,
    full_chroma: bool = False,
) -> int:
    """Encodes RGB [H,W,3] or grey [H,W] uint8 frames of one size into ``path``; returns the frame count.

    ``frames`` may be a generator (one frame in memory at a time). ``crf``: constant rate factor of
    libx264/libx265 (None: the encoder's default); other encoders get their highest constant
    quality. ``full_chroma``: 4:4:4 colour where the encoder has it, else 4:2:0, for which odd
    sizes are cropped by one pixel (most players need even sizes).
    """
    codec = av.codec.Codec(encoder, "w")
    formats = {f.name for f in codec.video_formats or ()}
    pixel_format = "yuv444p" if full_chroma and "yuv444p" in formats else "yuv420p"
    count = 0
    with atomic_path(Path(path)) as tmp, av.open(str(tmp), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream(encoder, rate=Fraction(fps).limit_denominator(1001))
                height, width = frame.shape[:2]
                if pixel_format == "yuv420p":
                    height, width = height // 2 * 2, width // 2 * 2
                stream.height, stream.width, stream.pix_fmt = height, width, pixel_format
                if encoder in ("libx264", "libx265"):
                    stream.options = {"preset": "medium"} | ({} if crf is None else {"crf": str(crf)})
                    if encoder == "libx265":
                        # x265's SIMD code corrupts the heap in 4:4:4 (seen with 40-48 px wide frames, and
                        # later in the process after mixed sizes): its C code, about 2.4x slower, is safe.
                        safe = ":asm=0" if pixel_format == "yuv444p" else ""
                        stream.options["x265-params"] = "log-level=error" + safe
                elif encoder == "mpeg4":
                    stream.options = {"qscale": "2"}
            image = np.ascontiguousarray(frame[: stream.height, : stream.width])
            container.mux(
                stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24" if image.ndim == 3 else "gray"))
            )
            count += 1
        if stream is not None:
            container.mux(stream.encode())
    return count
