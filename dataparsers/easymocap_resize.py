"""Resized (and binarized) copies of a capture's images and masks, cached inside the capture.

Images are resized with area interpolation; masks are thresholded at 127 (JPEG-safe) and stored as
PNG, so that any reader that treats non-zero as foreground (nerfstudio does) sees the right mask.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dataparsers.easymocap_layout import CaptureLayout
from fourk4d_ns.io.images import read_image, read_mask, resize_image, resize_mask, scaled_size, write_image_atomic
from fourk4d_ns.io.progress import track


def _is_fresh(target: Path, source: Path) -> bool:
    return target.is_file() and target.stat().st_mtime_ns >= source.stat().st_mtime_ns


def _cache_path(layout: CaptureLayout, kind: str, factor: float, camera: str, source: Path) -> Path:
    return layout.cache_dir / f"{kind}_x{factor:g}" / camera / f"{source.stem}.png"


def _resize_image(source: Path, target: Path, size: tuple[int, int]) -> None:
    write_image_atomic(target, resize_image(read_image(source), size))


def _binarize_mask(source: Path, target: Path, size: tuple[int, int]) -> None:
    write_image_atomic(target, resize_mask(read_mask(source), size))


def prepare_files(
    layout: CaptureLayout, factor: float, progress: bool = True
) -> tuple[list[list[Path]], list[list[Path]] | None]:
    """Image and mask paths to hand to readers, writing cached copies where they are needed.

    Images are copied only when ``factor != 1``; masks also when they are not PNG.
    """
    jobs: list = []

    def plan(kind: str, sources: list[list[Path]], convert) -> list[list[Path]]:
        """Cache targets of every source file of ``kind``; queue one conversion job per file."""
        targets = []
        for c, camera in enumerate(layout.camera_names):
            size = scaled_size(int(layout.rig.height[c]), int(layout.rig.width[c]), factor)
            per_camera = [_cache_path(layout, kind, factor, camera, p) for p in sources[c]]
            jobs.extend((convert, s, t, size) for s, t in zip(sources[c], per_camera))
            targets.append(per_camera)
        return targets

    image_paths = layout.image_paths if factor == 1 else plan("images", layout.image_paths, _resize_image)
    mask_paths = layout.mask_paths
    if mask_paths is not None and (factor != 1 or any(p.suffix.lower() != ".png" for per in mask_paths for p in per)):
        mask_paths = plan("masks", layout.mask_paths, _binarize_mask)
    pending = [job for job in jobs if not _is_fresh(job[2], job[1])]
    if pending:
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            work = pool.map(lambda job: job[0](*job[1:]), pending)
            for _ in track(work, f"caching resized files in {layout.cache_dir}", total=len(pending), enabled=progress):
                pass
    return image_paths, mask_paths
