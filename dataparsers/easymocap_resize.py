"""Resized (and binarized) copies of a capture's images and masks, cached inside the capture.

Images are resized with area interpolation. Masks are read under their folder's convention
(``fourk4d_ns.io.images.mask_convention``: 0/1 or label PNGs, palette maps, JPEG, soft mattes, 16-bit)
and stored as 0/255 single-channel PNG, so that every reader (nerfstudio takes non-zero as
foreground, the project values above 127) sees the same mask. Copies go to
``<scene>/fourk4d/x<factor>/<source folder>/<cam>/<frame>.png``: a different source folder never
reuses another's copies.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dataparsers.easymocap_layout import CaptureLayout
from fourk4d_ns.io.images import (
    MaskConvention,
    read_image,
    read_mask,
    resize_image,
    resize_mask,
    scaled_size,
    write_image_atomic,
)
from fourk4d_ns.io.progress import track


def _is_fresh(target: Path, source: Path) -> bool:
    return target.is_file() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns


def cache_folder(layout: CaptureLayout, source: Path, factor: float) -> Path:
    """Where copies of the files of ``source`` (a folder inside the capture) at ``factor`` go."""
    try:
        parts = source.resolve().relative_to(layout.scene.resolve()).parts
    except ValueError:  # a folder outside the capture (``--images-dir ../other``)
        parts = (source.name,)
    return layout.cache_dir / f"x{factor:g}" / "_".join(parts)


def _resize_image(source: Path, target: Path, size: tuple[int, int], _: MaskConvention | None) -> None:
    write_image_atomic(target, resize_image(read_image(source), size))


def _binarize_mask(source: Path, target: Path, size: tuple[int, int], convention: MaskConvention | None) -> None:
    write_image_atomic(target, resize_mask(read_mask(source, convention), size))


def prepare_files(
    layout: CaptureLayout, factor: float, progress: bool = True
) -> tuple[list[list[Path]], list[list[Path]] | None]:
    """Image and mask paths to hand to readers, writing cached copies where they are needed.

    Images are copied only when ``factor != 1``; masks also when they are not plain 0/255 PNG.
    """
    jobs: list = []

    def plan(sources: list[list[Path]], root: Path, convert, convention=None) -> list[list[Path]]:
        """Cache targets of every source file; queue one conversion job per file."""
        folder = cache_folder(layout, root, factor)
        targets = []
        for c, camera in enumerate(layout.camera_names):
            size = scaled_size(int(layout.rig.height[c]), int(layout.rig.width[c]), factor)
            per_camera = [folder / camera / f"{p.stem}.png" for p in sources[c]]
            jobs.extend((convert, s, t, size, convention) for s, t in zip(sources[c], per_camera))
            targets.append(per_camera)
        return targets

    image_paths = layout.image_paths
    if factor != 1:
        image_paths = plan(layout.image_paths, layout.image_folder, _resize_image)
    mask_paths = layout.mask_paths
    if mask_paths is not None and (factor != 1 or not layout.masks_are_plain):
        mask_paths = plan(mask_paths, layout.mask_folder, _binarize_mask, layout.mask_convention)
    pending = [job for job in jobs if not _is_fresh(job[2], job[1])]
    if pending:
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            work = pool.map(lambda job: job[0](*job[1:]), pending)
            for _ in track(
                work, f"caching converted files in {layout.cache_dir}", total=len(pending), enabled=progress
            ):
                pass
    return image_paths, mask_paths
