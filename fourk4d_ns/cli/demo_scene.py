"""``fourk4d-demo-scene``: write the built-in demo capture (a moving, textured figure seen by a camera rig)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fourk4d_ns.cli.common import CommandOptions, run_command
from fourk4d_ns.demo.capture import PRESETS, write_demo_capture
from fourk4d_ns.demo.flavors import Flavor
from fourk4d_ns.demo.video_layouts import VideoLayout


@dataclass
class DemoSceneCommand(CommandOptions):
    """Write a synthetic multi-view video capture in the EasyMocap layout (images, masks, intri/extri.yml)."""

    output: Path
    """Folder to create; it must not exist or be empty unless --overwrite is given."""
    preset: Literal["tiny", "demo"] = "demo"
    """``demo``: 16 training + 4 test cameras, 24 frames, 256x256; ``tiny``: 6 + 2 cameras, 4 frames, 64x64."""
    seed: int = 0
    """Varies texture colors and motion phases slightly; the same seed gives identical files."""
    overwrite: bool = False
    """Replace an existing, non-empty output folder."""
    flavor: Flavor = "easymocap"
    """Write the files as a public capture has them. easymocap: images/, masks/ PNG.
    dna-rendering: images_calib/ and raw images/ JPEG with ccm_, soft JPEG masks/, two image sizes, optimized/ cameras.
    zju-mocap: images/ JPEG, mask/ 0/1 PNG, schp/ label maps, no H_/W_. nhr: mask/ 3-channel JPEG."""
    distorted: bool = False
    """Record every view through a barrel lens (OpenCV k1, k2, p1, p2, k3 per camera, written to intri.yml)."""
    videos: VideoLayout | None = None
    """Write videos instead of images. easymocap: videos/ with masks/. 4k4d: videos_libx265/, videos_masks_libx265/.
    4k4d-cropped: 4K4D's cropped foreground-only videos (<cam>_N<n>_x<X>_y<Y>_W<W>_H<H>_FW<FW>_FH<FH>.mp4), no masks.
    4k4d-foreground: foreground-only videos on black, no masks. dynerf: cam00.mp4 ..., poses_bounds.npy."""
    allow_slow_raycaster: bool = False
    """Fall back to trimesh's pure-Python ray caster when Embree (embreex) is missing; very slow."""
    progress: bool = True
    """Show a progress bar over frames."""

    def main(self) -> Path:
        """Write the capture, print a summary, and return its folder."""
        start = time.perf_counter()
        output = write_demo_capture(
            self.output,
            preset=self.preset,
            seed=self.seed,
            overwrite=self.overwrite,
            progress=self.progress,
            allow_slow_raycaster=self.allow_slow_raycaster,
            videos=self.videos,
            flavor=self.flavor,
            distorted=self.distorted,
        )
        elapsed = time.perf_counter() - start
        config = PRESETS[self.preset]
        cameras = config.layout.train_cameras + config.layout.test_cameras
        views = cameras * config.num_frames
        size = f"{cameras} cameras x {config.num_frames} frames, {config.layout.width}x{config.layout.height}"
        kind = f"'{self.flavor}'" + " distorted" * self.distorted
        if self.flavor != "easymocap":
            folders = ", ".join(p.name + "/" for p in sorted(output.iterdir()) if p.is_dir())
            files = ", ".join(p.name for p in sorted(output.iterdir()) if p.is_file())
            contents = f"  {folders} ({cameras} cameras x {config.num_frames} frames)\n  {files}"
        elif self.videos is None:
            contents = (
                f"  images/ and masks/: {views} PNGs each ({size})\n"
                f"  intri.yml, extri.yml ({config.layout.train_cameras} training + "
                f"{config.layout.test_cameras} test cameras), "
                f"split.json, demo.json"
            )
        else:
            entries = ", ".join(p.name + "/" * p.is_dir() for p in sorted(output.iterdir()) if p.suffix != ".mp4")
            contents = f"  '{self.videos}' video layout ({size}): {entries} and one .mp4 per camera"
        print(
            f"Wrote the '{self.preset}' demo capture ({kind}, seed {self.seed}) to {output} "
            f"in {elapsed:.1f} s:\n{contents}"
        )
        return output


def entrypoint(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    run_command(DemoSceneCommand, "fourk4d-demo-scene", argv)


if __name__ == "__main__":
    entrypoint()
