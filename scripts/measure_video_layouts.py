"""Measure what storing the demo capture as videos costs: codec error and decode time.

Writes the demo capture (``--preset``, seed 0) in the image layout and in each video layout into a
temporary folder, decodes every video layout with the readers (JPEG and PNG frame cache), and
prints the mean absolute error against the rendered PNGs (8-bit levels), the fraction of mask pixels
that agree, and the decode time. Run: ``.venv/bin/python scripts/measure_video_layouts.py``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from dataparsers.dynerf import DyNeRFDataParserConfig, read_dynerf_scene
from dataparsers.easymocap_layout import read_layout
from fourk4d_ns.demo.capture import write_demo_capture
from fourk4d_ns.io.images import read_image, read_mask


def image_error(decoded: list[Path], rendered: list[Path]) -> tuple[float, float]:
    """Mean and worst per-image mean absolute error in 8-bit levels."""
    errors = [np.abs(read_image(a).astype(float) - read_image(b)).mean() for a, b in zip(decoded, rendered)]
    return float(np.mean(errors)), float(np.max(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo", choices=["tiny", "demo"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        reference = read_layout(write_demo_capture(root / "images", preset=args.preset, progress=False), progress=False)
        print(f"image layout: written in {time.perf_counter() - start:.1f} s (rendering)")
        rendered = [p for per_camera in reference.image_paths for p in per_camera]
        rendered_masks = [p for per_camera in reference.mask_paths for p in per_camera]
        for video_layout in ("easymocap", "4k4d", "dynerf"):
            start = time.perf_counter()
            scene = write_demo_capture(root / video_layout, preset=args.preset, videos=video_layout, progress=False)
            written = time.perf_counter() - start
            for frame_format in ("jpg", "png"):
                start = time.perf_counter()
                if video_layout == "dynerf":
                    config = DyNeRFDataParserConfig(data=scene, downscale_factor=1, frame_format=frame_format)
                    decoded_scene = read_dynerf_scene(config, progress=False)
                    decoded = [
                        decoded_scene.frames.frame_path(f"cam{c:02d}", f)
                        for c in range(len(decoded_scene.names))
                        for f in range(decoded_scene.num_frames)
                    ]
                    agreement = None
                else:
                    layout = read_layout(scene, frame_format=frame_format, progress=False)
                    decoded = [p for per_camera in layout.image_paths for p in per_camera]
                    masks = [p for per_camera in layout.mask_paths for p in per_camera]
                    agreement = np.mean([(read_mask(a) == read_mask(b)).mean() for a, b in zip(masks, rendered_masks)])
                seconds = time.perf_counter() - start
                mean, worst = image_error(decoded, rendered)
                masks_text = "" if agreement is None else f", masks agree on {100 * agreement:.3f}% of pixels"
                print(
                    f"{video_layout:9s} {frame_format}: image error {mean:.2f} levels "
                    f"(worst image {worst:.2f}){masks_text}; "
                    f"written in {written:.1f} s (rendering + encoding), "
                    f"decoded in {seconds:.1f} s ({len(decoded)} frames)"
                )
                shutil.rmtree(scene / "fourk4d")  # decode from scratch for the other format


if __name__ == "__main__":
    main()
