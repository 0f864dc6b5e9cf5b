"""``fourk4d-export --bake DIR``: write the frames of a bake as point-cloud and 3DGS PLY files."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from fourk4d_ns.playback.bake_format import MANIFEST, read_frame, read_manifest
from fourk4d_ns.playback.export import FORMATS, export_frame, find_camera


def bake_folder(bake: Path | None, load_config: Path | None) -> Path:
    """The bake folder: ``bake``, or ``<config's folder>/bake``; a clear error when it is missing."""
    if (bake is None) == (load_config is None):
        raise ValueError("give either --bake DIR or --load-config CONFIG")
    if bake is not None:
        if not Path(bake).is_dir():
            raise FileNotFoundError(f"{bake}: no such bake folder")
        return Path(bake)
    folder = Path(load_config).parent / "bake"
    if not (folder / MANIFEST).is_file():
        raise FileNotFoundError(
            f"{folder}: no bake next to {load_config}; "
            f"run fourk4d-bake --load-config {load_config} first"
        )
    return folder


def file_stems(names: list[str]) -> list[str]:
    """The frames' names when they are distinct plain file names, else ``frame_<index>``."""
    if len(set(names)) == len(names) and all(
        re.fullmatch(r"[\w-][\w.-]*", n) for n in names
    ):
        return list(names)
    return [f"frame_{index:06d}" for index in range(len(names))]


@dataclass
class ExportCommand:
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
    """Camera whose view fixes the colours (held-out ones allowed); None: the first baked camera."""
    format: Literal["points", "gaussians", "both"] = "both"
    """Which files to write."""
    verify: Literal["checksum", "size"] = "checksum"
    """How each frame file is checked on loading (checksum: SHA-256, size: its size only)."""

    def main(self) -> list[Path]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        start = time.perf_counter()
        folder = bake_folder(self.bake, self.load_config)
        manifest = read_manifest(folder)
        output = folder.parent / "export" if self.output is None else Path(self.output)
        frames = (
            list(range(manifest.num_frames))
            if self.frames is None
            else list(self.frames)
        )
        bad = [f for f in frames if not 0 <= f < manifest.num_frames]
        if bad:
            raise ValueError(
                f"frames {bad} out of range (the bake has {manifest.num_frames})"
            )
        # An unknown camera name fails before any work.
        camera = find_camera(manifest, self.view)
        formats = FORMATS if self.format == "both" else (self.format,)
        stems = file_stems(manifest.frame_names)
        written: list[Path] = []
        columns = (
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns) as progress:
            task = progress.add_task("export", total=len(frames))
            for f in frames:
                baked = read_frame(folder, manifest, f, self.verify)
                written += export_frame(
                    manifest, baked, output, stems[f], camera.name, formats
                )
                progress.advance(task)
        elapsed = time.perf_counter() - start
        print(f"exported {len(frames)} frames of {folder} in {elapsed:.1f} s")
        print(f"colours seen from camera {camera.name!r}")
        for name in formats:
            print(f"{name}: {output / name}")
        return written


def entrypoint() -> None:
    """Console script entry point."""
    from fourk4d_ns.playback.bake_format import BakeError

    command = tyro.cli(ExportCommand)
    try:
        command.main()
    except (BakeError, FileNotFoundError, ValueError, IndexError) as exc:
        raise SystemExit(f"fourk4d-export: {exc}") from None


if __name__ == "__main__":
    entrypoint()
