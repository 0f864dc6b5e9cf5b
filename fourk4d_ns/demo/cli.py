"""``fourk4d-demo-scene``: write the built-in demo capture (a moving, textured figure seen by a camera rig)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import tyro

from fourk4d_ns.demo.capture import PRESETS, OutputExistsError, write_demo_capture
from fourk4d_ns.demo.render import EmbreeUnavailableError
from fourk4d_ns.demo.video_layouts import VideoLayout


@dataclass
class DemoSceneArgs:
    """Write a synthetic multi-view video capture in the EasyMocap layout (images, masks, intri/extri.yml)."""

    output: Path
    """Folder to create; it must not exist or be empty unless --overwrite is given."""
    preset: Literal["tiny", "demo"] = "demo"
    """``demo``: 16 training + 4 test cameras, 24 frames, 256x256; ``tiny``: 6 + 2 cameras, 4 frames, 64x64."""
    seed: int = 0
    """Varies texture colours and motion phases slightly; the same seed gives identical files."""
    overwrite: bool = False
    """Replace an existing, non-empty output folder."""
    videos: Optional[VideoLayout] = None
    """Write videos instead of images: easymocap (videos/), 4k4d (videos_libx265/, videos_masks_libx265/), dynerf (camNN.mp4)."""
    allow_slow_raycaster: bool = False
    """Fall back to trimesh's pure-Python ray caster when Embree (embreex) is missing; very slow."""
    progress: bool = True
    """Show a progress bar over frames."""


def run(args: DemoSceneArgs) -> Path:
    """Write the capture described by ``args``, print a summary, and return its folder."""
    start = time.perf_counter()
    output = write_demo_capture(
        args.output,
        preset=args.preset,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=args.progress,
        allow_slow_raycaster=args.allow_slow_raycaster,
        videos=args.videos,
    )
    elapsed = time.perf_counter() - start
    config = PRESETS[args.preset]
    cameras = config.layout.train_cameras + config.layout.test_cameras
    views = cameras * config.num_frames
    size = f"{cameras} cameras x {config.num_frames} frames, {config.layout.width}x{config.layout.height}"
    if args.videos is None:
        contents = (
            f"  images/ and masks/: {views} PNGs each ({size})\n"
            f"  intri.yml, extri.yml ({config.layout.train_cameras} training + {config.layout.test_cameras} test cameras), "
            f"split.json, demo.json"
        )
    else:
        entries = ", ".join(p.name + "/" * p.is_dir() for p in sorted(output.iterdir()) if p.suffix != ".mp4")
        contents = f"  '{args.videos}' video layout ({size}): {entries} and one .mp4 per camera"
    print(f"Wrote the '{args.preset}' demo capture (seed {args.seed}) to {output} in {elapsed:.1f} s:\n{contents}")
    return output


def entrypoint(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = tyro.cli(DemoSceneArgs, args=argv)
    try:
        run(args)
    except (OutputExistsError, EmbreeUnavailableError) as error:
        print(f"fourk4d-demo-scene: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    entrypoint()
