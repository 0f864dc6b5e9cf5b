"""``fourk4d-export --bake DIR``: write the frames of a bake as point-cloud and 3DGS PLY files."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fourk4d_ns.cli.common import CommandOptions, run_command
from fourk4d_ns.io.errors import InputError
from fourk4d_ns.io.progress import track
from fourk4d_ns.playback.bake_format import find_bake, read_frame, read_manifest
from fourk4d_ns.playback.export import FORMATS, export_frame, find_camera, frame_file_stems


@dataclass
class ExportCommand(CommandOptions):
    """Export baked frames as PLY point clouds and/or 3D Gaussian Splatting files."""

    bake: Path | None = None
    """Bake folder (written by fourk4d-bake)."""
    load_config: Path | None = None
    """Training config; the bake is then the ``bake`` folder next to it."""
    output: Path | None = None
    """Output folder; None: ``export`` next to the bake folder."""
    frames: tuple[int, ...] | None = None
    """Frame indices to export; None: all."""
    view: str | None = None
    """Camera whose view fixes the colors (held-out ones allowed); None: the first baked camera."""
    format: Literal["points", "gaussians", "both"] = "both"
    """Which files to write."""
    verify: Literal["checksum", "size"] = "checksum"
    """How each frame file is checked on loading (checksum: SHA-256, size: its size only)."""

    def main(self) -> list[Path]:
        start = time.perf_counter()
        folder = find_bake(self.bake, self.load_config)
        manifest = read_manifest(folder)
        output = folder.parent / "export" if self.output is None else Path(self.output)
        frames = list(range(manifest.num_frames)) if self.frames is None else list(self.frames)
        bad = [f for f in frames if not 0 <= f < manifest.num_frames]
        if bad:
            raise InputError(f"frames {bad} out of range (the bake has {manifest.num_frames})")
        camera = find_camera(manifest, self.view)  # an unknown camera name fails before any work
        formats = FORMATS if self.format == "both" else (self.format,)
        stems = frame_file_stems(manifest.frame_names)
        written: list[Path] = []
        for f in track(frames, "exporting"):
            baked = read_frame(folder, manifest, f, self.verify)
            written += export_frame(manifest, baked, output, stems[f], camera.name, formats)
        print(f"exported {len(frames)} frames of {folder} in {time.perf_counter() - start:.1f} s")
        print(f"colors seen from camera {camera.name!r}")
        for name in formats:
            print(f"{name}: {output / name}")
        return written


def entrypoint(argv: Sequence[str] | None = None) -> None:
    """Console script entry point."""
    run_command(ExportCommand, "fourk4d-export", argv)


if __name__ == "__main__":
    entrypoint()
