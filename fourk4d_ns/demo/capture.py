"""Writes the built-in demo capture: the moving figure seen by a calibrated rig, in the EasyMocap layout.

```
DIR/images/<cam>/<frame>.png   RGB          DIR/intri.yml, DIR/extri.yml
DIR/masks/<cam>/<frame>.png    0 / 255      DIR/split.json, DIR/demo.json
```
or the same renders in a public capture's conventions (``flavor``, see ``flavors``), or, with
``videos``, one of the video layouts of ``video_layouts`` (EasyMocap, 4K4D, DyNeRF). ``distorted``
records every view through a lens with OpenCV distortion (``imperfections.lens_distortion``,
written to intri.yml). The capture is assembled in a hidden sibling folder and renamed into place
at the end, so an interrupted run never leaves a half-written capture under DIR.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fourk4d_ns.core.timeline import frame_time
from fourk4d_ns.demo.figure import ArticulatedFigure
from fourk4d_ns.demo.flavors import Flavor, FlavorWriter, camera_sizes
from fourk4d_ns.demo.imperfections import lens_distortion
from fourk4d_ns.demo.render import CameraView, FrameRenderer, ray_intersector
from fourk4d_ns.demo.rig import RigLayout, build_rig
from fourk4d_ns.demo.video_layouts import VideoLayout, convert_to_video_layout
from fourk4d_ns.io.atomic import atomic_write_bytes, replace_folder, staging_folder
from fourk4d_ns.io.errors import InputError
from fourk4d_ns.io.progress import track

GENERATOR_VERSION = 1
"""Bumped whenever the same preset and seed would produce different files."""


@dataclass(frozen=True)
class DemoPreset:
    """Size of a demo capture."""

    layout: RigLayout
    """Cameras and image size."""
    num_frames: int
    """Frames, spread evenly over the figure's normalized time [0, 1]."""
    fps: float
    """Nominal frame rate recorded in demo.json."""
    samples_per_side: int = 2
    """Anti-aliasing: color is the mean of n x n samples per pixel (the mask is always the center ray)."""


PRESETS: dict[str, DemoPreset] = {
    "demo": DemoPreset(RigLayout(train_cameras=16, test_cameras=4, height=256, width=256), num_frames=24, fps=12.0),
    "tiny": DemoPreset(RigLayout(train_cameras=6, test_cameras=2, height=64, width=64), num_frames=4, fps=12.0),
}


class OutputExistsError(InputError, FileExistsError):
    """The output folder exists, is not empty, and overwriting was not asked for."""


def frame_name(frame_index: int) -> str:
    """File stem of a frame: six digits."""
    return f"{frame_index:06d}"


def _write_json(path: Path, content: dict) -> None:
    atomic_write_bytes(path, (json.dumps(content, indent=2) + "\n").encode())


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise OutputExistsError(f"{output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise OutputExistsError(f"{output} exists and is not empty; pass --overwrite to replace it")


def write_demo_capture(
    output: Path,
    preset: str = "demo",
    seed: int = 0,
    overwrite: bool = False,
    *,
    progress: bool = True,
    allow_slow_raycaster: bool = False,
    videos: VideoLayout | None = None,
    flavor: Flavor = "easymocap",
    distorted: bool = False,
) -> Path:
    """Render the demo capture into ``output`` and return it.

    ``flavor`` writes the files as a public capture has them (``easymocap``, ``dna-rendering``,
    ``zju-mocap``, ``nhr``: see ``flavors``); ``distorted`` renders every view through its own
    barrel lens and writes the coefficients to intri.yml; ``videos`` writes one of the video layouts
    (``easymocap``, ``4k4d``, ``dynerf``) instead of images (only with the easymocap flavour).

    Raises ``OutputExistsError`` when ``output`` is a non-empty folder and ``overwrite`` is false,
    ``InputError`` for options that do not combine, and ``EmbreeUnavailableError`` when Embree is
    missing unless ``allow_slow_raycaster``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if videos is not None and flavor != "easymocap":
        raise InputError(f"videos are written in the easymocap flavor only, not {flavor!r}")
    if videos == "dynerf" and distorted:
        raise InputError("a DyNeRF scene (poses_bounds.npy) cannot describe lens distortion")
    config = PRESETS[preset]
    layout = config.layout
    output = Path(output).absolute()
    _check_output(output, overwrite)

    figure = ArticulatedFigure(seed=seed)
    surfaces = [figure.pose(frame_time(f, config.num_frames)) for f in range(config.num_frames)]
    ray_intersector(surfaces[0].to_trimesh(), allow_slow=allow_slow_raycaster)  # fail before any work
    subject_points = np.concatenate([s.vertices for s in surfaces])
    rig, test_names = build_rig(layout, subject_points, camera_sizes(flavor, layout))
    if distorted:
        rig.dist = lens_distortion(len(rig), seed)

    staging = staging_folder(output)
    try:
        writer = FlavorWriter(staging, flavor, rig, [part.name for part in figure.parts], seed)
        writer.write_cameras()
        _write_json(
            staging / "split.json",
            {
                "train_cameras": [n for n in rig.names if n not in test_names],
                "test_cameras": test_names,
                "note": "Test cameras stand at other heights and between the training ring's azimuths; "
                "never train on them or use them as image-based-rendering sources.",
            },
        )
        summary = {
            "preset": preset,
            "seed": int(seed),
            "num_frames": config.num_frames,
            "fps": config.fps,
            "height": layout.height,
            "width": layout.width,
            "generator_version": GENERATOR_VERSION,
        }
        if flavor != "easymocap" or distorted:  # the default capture's demo.json stays as it was
            summary.update({"flavor": flavor, "distorted": distorted})

        views = [
            CameraView.from_calibration(
                rig.K[c],
                rig.R[c],
                rig.T[c],
                int(rig.height[c]),
                int(rig.width[c]),
                config.samples_per_side,
                rig.dist[c] if distorted else None,
            )
            for c in range(len(rig))
        ]
        for f in track(range(config.num_frames), "rendering frames", enabled=progress):
            renderer = FrameRenderer(surfaces[f], figure.materials, allow_slow=allow_slow_raycaster)
            for name, view in zip(rig.names, views):
                writer.write_view(name, frame_name(f), renderer.render(view))
        if videos is not None:
            summary.update(convert_to_video_layout(staging, videos, rig, config.fps, subject_points))
        _write_json(staging / "demo.json", summary)
        replace_folder(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output
