"""Measure what storing the demo capture as videos costs: codec error, decode time, derived masks.

Writes the demo capture (``--preset``, seed 0) in the image layout and in each video layout into a
temporary folder, decodes every video layout with the readers (JPEG and PNG frame cache), and
prints the mean absolute error against the rendered PNGs (8-bit levels; for the foreground-only
layouts, against the rendered image times its mask), the fraction of mask pixels that agree (mask
videos) or the mean IoU of the derived masks with the rendered ones next to that of 4K4D's
``rgb.sum > 12`` on the same decoded frames, and the decode time. A last capture dresses the figure
in black clothing (``with_black_clothing``) to show what mask derivation recovers.
Run: ``.venv/bin/python scripts/measure_video_layouts.py``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from dataparsers.dynerf import DyNeRFDataParserConfig, read_dynerf_scene
from dataparsers.easymocap_layout import CaptureLayout, read_layout
from dataparsers.foreground_masks import lit_pixels
from fourk4d_ns.demo.capture import PRESETS, write_demo_capture
from fourk4d_ns.demo.video_layouts import ENCODERS, write_foreground_videos
from fourk4d_ns.io.images import read_image, read_mask
from fourk4d_ns.io.video import available_encoder

FOREGROUND_ONLY = ("4k4d-cropped", "4k4d-foreground", "black clothing")


def image_error(decoded: list[Path], references: list[np.ndarray]) -> tuple[float, float]:
    """Mean and worst per-image mean absolute error in 8-bit levels."""
    errors = [np.abs(read_image(a).astype(float) - b).mean() for a, b in zip(decoded, references)]
    return float(np.mean(errors)), float(np.max(errors))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def flat(paths: list[list[Path]]) -> list[Path]:
    return [p for per_camera in paths for p in per_camera]


def masks_text(layout: CaptureLayout, true_masks: list[np.ndarray], foreground_only: bool, lossless: bool) -> str:
    """How the decoded (or derived) masks compare with the rendered ones."""
    masks = [read_mask(p) for p in flat(layout.mask_paths)]
    if not foreground_only:
        agreement = np.mean([(a == b).mean() for a, b in zip(masks, true_masks)])
        return f", masks agree on {100 * agreement:.3f}% of pixels"
    derived = [iou(a, b) for a, b in zip(masks, true_masks)]
    text = f", derived masks IoU {np.mean(derived):.4f} (worst {np.min(derived):.4f})"
    if lossless:  # the published rule on exactly the decoded frames
        published = [iou(lit_pixels(read_image(p)), m) for p, m in zip(flat(layout.image_paths), true_masks)]
        text += f", rgb.sum > 12 IoU {np.mean(published):.4f} (worst {np.min(published):.4f})"
    return text


def write_black_clothing(reference: Path, target: Path, fps: float) -> Path:
    """The image-layout capture as foreground-only videos of the figure in black clothing."""
    scene = Path(shutil.copytree(reference, target, ignore=shutil.ignore_patterns("fourk4d")))
    encoder = available_encoder(ENCODERS)
    cameras = sorted(p.name for p in (scene / "images").iterdir())
    write_foreground_videos(scene, scene / f"videos_{encoder}", cameras, fps, encoder, False, black_clothing=True)
    shutil.rmtree(scene / "images")
    shutil.rmtree(scene / "masks")
    return scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo", choices=["tiny", "demo"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        reference = read_layout(write_demo_capture(root / "images", preset=args.preset, progress=False), progress=False)
        print(f"image layout: written in {time.perf_counter() - start:.1f} s (rendering)")
        rendered = [read_image(p) for p in flat(reference.image_paths)]
        true_masks = [read_mask(p) for p in flat(reference.mask_paths)]
        foreground = [image * mask[..., None].astype(np.uint8) for image, mask in zip(rendered, true_masks)]
        for video_layout in ("easymocap", "4k4d", "dynerf", *FOREGROUND_ONLY):
            start = time.perf_counter()
            if video_layout == "black clothing":
                scene = write_black_clothing(reference.scene, root / "black", PRESETS[args.preset].fps)
            else:
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
                    masks = ""
                else:
                    layout = read_layout(scene, frame_format=frame_format, progress=False)
                    decoded = flat(layout.image_paths)
                    masks = masks_text(layout, true_masks, video_layout in FOREGROUND_ONLY, frame_format == "png")
                seconds = time.perf_counter() - start
                if video_layout != "black clothing":  # its images differ from the rendered ones on purpose
                    mean, worst = image_error(decoded, foreground if video_layout in FOREGROUND_ONLY else rendered)
                    masks = f"image error {mean:.2f} levels (worst image {worst:.2f})" + masks
                print(
                    f"{video_layout:15s} {frame_format}: {masks.removeprefix(', ')}; "
                    f"written in {written:.1f} s (rendering + encoding), "
                    f"decoded in {seconds:.1f} s ({len(decoded)} frames)"
                )
                shutil.rmtree(scene / "fourk4d")  # decode from scratch for the other format


if __name__ == "__main__":
    main()
