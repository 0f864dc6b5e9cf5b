"""Carve every frame of a capture's chosen views and cache the result inside the capture folder.

The caller says which cameras and frames carving sees (``CarveViews``: the training cameras at the
selected frames, never held-out ones); this module knows nothing of capture layouts.

Layout of the cache (``<scene>/fourk4d/carve/``): ``hulls/<frame>.ply`` (kept voxel centers),
``surfaces/<frame>.ply`` (surface samples that initialize the point clouds) and ``carve.json``
(settings, voxel sizes, per-frame statistics, the tight ``bounds`` of the whole sequence and a
fingerprint of the inputs). A later run with the same views and settings reuses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fourk4d_ns.carving.visual_hull import CameraSet, CarveSettings, carve_coarse, carve_frame_fine, mask_distance
from fourk4d_ns.core.camera import viewing_bounds
from fourk4d_ns.io import CAPTURE_CACHE_FOLDER
from fourk4d_ns.io.atomic import replace_folder, staging_folder
from fourk4d_ns.io.errors import CaptureError
from fourk4d_ns.io.images import read_mask
from fourk4d_ns.io.ply import read_points, write_points
from fourk4d_ns.io.progress import track

FORMAT_VERSION = 3
CARVE_FOLDER = f"{CAPTURE_CACHE_FOLDER}/carve"
"""Where carving stores its per-frame PLY files and ``carve.json`` inside a capture."""


@dataclass
class CarveViews:
    """What carving sees: cameras (OpenCV, at the masks' resolution) and their mask files per frame."""

    scene: Path
    """The capture folder (the cache goes to ``<scene>/fourk4d/carve``)."""
    camera_names: list[str]
    """One name per camera."""
    frame_names: list[str]
    """One name per frame (file stems of the cached PLY files)."""
    K: np.ndarray
    """Intrinsics [C,3,3]."""
    R: np.ndarray
    """World-to-camera rotations [C,3,3]."""
    T: np.ndarray
    """World-to-camera translations [C,3]."""
    dist: np.ndarray
    """OpenCV distortion (k1, k2, p1, p2, k3) [C,5] of the mask images."""
    height: np.ndarray
    """Mask heights [C]."""
    width: np.ndarray
    """Mask widths [C]."""
    mask_paths: list[list[Path]]
    """``mask_paths[c][f]``: the mask of camera c at frame f (an empty mask is left out of that frame's vote)."""


@dataclass
class CarvedCapture:
    """A carved capture as stored on disk."""

    folder: Path
    """The cache folder (``<scene>/fourk4d/carve``)."""
    summary: dict
    """The content of ``carve.json``."""

    @property
    def bounds(self) -> np.ndarray:
        """Tight bounds [2,3] of the hull over all frames."""
        return np.asarray(self.summary["bounds"], dtype=np.float64)

    @property
    def frame_names(self) -> list[str]:
        return list(self.summary["frames"])

    def surface(self, frame: str) -> np.ndarray:
        """The surface samples [N,3] of a frame."""
        return read_points(self.folder / "surfaces" / f"{frame}.ply")

    def hull(self, frame: str) -> np.ndarray:
        """The kept voxel centers [M,3] of a frame."""
        return read_points(self.folder / "hulls" / f"{frame}.ply")


def _fingerprint(views: CarveViews, settings: CarveSettings) -> str:
    """Hash of everything carving depends on: settings, cameras, frames, and the masks' sizes and times."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps([FORMAT_VERSION, dataclasses.asdict(settings), views.camera_names, views.frame_names]).encode()
    )
    for array in (views.K, views.R, views.T, views.dist, views.height, views.width):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    for per_camera in views.mask_paths:
        for path in per_camera:
            stat = path.stat()
            # Resolved, so "data/demo" and "/abs/data/demo" share one cache.
            digest.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def load_carved(scene: Path) -> CarvedCapture | None:
    """The cached carving of a capture, or None when there is none."""
    folder = Path(scene) / CARVE_FOLDER
    summary_path = folder / "carve.json"
    if not summary_path.is_file():
        return None
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as err:
        raise CaptureError(summary_path, f"unreadable carving summary ({err}); carve again with --force") from None
    return CarvedCapture(folder, summary)


def read_carved_bounds(scene: Path) -> np.ndarray | None:
    """The tight bounds [2,3] stored by carving, or None when the capture has not been carved."""
    carved = load_carved(scene)
    if carved is None:
        return None
    path = carved.folder / "carve.json"
    try:
        bounds = carved.bounds
    except (KeyError, TypeError, ValueError) as err:
        raise CaptureError(path, f"unreadable carving summary ({err}); delete it and carve again") from None
    if bounds.shape != (2, 3) or not np.all(np.isfinite(bounds)) or np.any(bounds[1] <= bounds[0]):
        raise CaptureError(path, f"`bounds` must be [[xmin, ymin, zmin], [xmax, ymax, zmax]], got {bounds.tolist()}")
    return bounds


def _load_mask_distances(views: CarveViews, frame: int) -> list[torch.Tensor | None]:
    """Distance-to-mask maps of the frame's masks; empty masks are None (left out of the vote)."""

    def load(path: Path) -> torch.Tensor | None:
        mask = read_mask(path)
        return mask_distance(torch.from_numpy(mask)) if mask.any() else None

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(load, [per_camera[frame] for per_camera in views.mask_paths]))


def carve_capture(
    views: CarveViews, settings: CarveSettings | None = None, force: bool = False, progress: bool = True
) -> CarvedCapture:
    """Carve every frame of ``views`` (or reuse the cache when its fingerprint matches) and return the stored result."""
    settings = settings or CarveSettings()
    scene = Path(views.scene)
    if not views.camera_names:
        raise CaptureError(scene, "no cameras to carve with")
    fingerprint = _fingerprint(views, settings)
    cached = load_carved(scene)
    if cached is not None and not force and cached.summary.get("fingerprint") == fingerprint:
        return cached

    names = views.camera_names
    cameras = CameraSet(*(torch.from_numpy(np.asarray(a)).float() for a in (views.K, views.R, views.T, views.dist)))
    search = torch.from_numpy(viewing_bounds(views.K, views.R, views.T, views.height, views.width)).float()

    coarse, skipped = [], {}
    for f, frame in enumerate(track(views.frame_names, "carving (coarse)", enabled=progress)):
        masks = _load_mask_distances(views, f)
        skipped[frame] = [names[i] for i, m in enumerate(masks) if m is None]
        centers, coarse_voxel = carve_coarse(masks, cameras, search, settings)
        coarse.append(centers)
    occupied = [c for c in coarse if c.shape[0] > 0]
    if not occupied:
        raise CaptureError(scene, "carving kept nothing in any frame: check the masks and the camera files")
    union = torch.cat(occupied)
    extent = float((union.max(0).values - union.min(0).values).max()) + coarse_voxel
    fine_voxel = extent / settings.fine_resolution

    folder = scene / CARVE_FOLDER
    staging = staging_folder(folder)
    try:
        (staging / "hulls").mkdir()
        (staging / "surfaces").mkdir()
        frames, lower, upper = {}, np.full(3, np.inf), np.full(3, -np.inf)
        for f, frame in enumerate(track(views.frame_names, "carving (fine)", enabled=progress)):
            masks = _load_mask_distances(views, f)
            result = carve_frame_fine(coarse[f], coarse_voxel, fine_voxel, masks, cameras, settings, seed=f)
            write_points(staging / "hulls" / f"{frame}.ply", result.hull)
            write_points(staging / "surfaces" / f"{frame}.ply", result.surface)
            entry = {
                "hull_points": len(result.hull),
                "surface_points": len(result.surface),
                "cameras_skipped": skipped[frame],
            }
            if len(result.hull):
                frame_lower, frame_upper = result.hull.min(0) - fine_voxel / 2, result.hull.max(0) + fine_voxel / 2
                entry["bounds"] = [frame_lower.tolist(), frame_upper.tolist()]
                lower, upper = np.minimum(lower, frame_lower), np.maximum(upper, frame_upper)
            frames[frame] = entry
        empty = [frame for frame, entry in frames.items() if entry["hull_points"] == 0]
        for frame, missing in skipped.items():
            if missing:
                warnings.warn(
                    f"{scene}: frame {frame}: empty masks from cameras {missing}; carved without them", stacklevel=2
                )
        if empty:
            warnings.warn(f"{scene}: carving kept nothing in frames {empty}", stacklevel=2)
        summary = {
            "format_version": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "settings": dataclasses.asdict(settings),
            "cameras": names,
            "search_bounds": search.tolist(),
            "coarse_voxel_size": coarse_voxel,
            "fine_voxel_size": fine_voxel,
            # One fine voxel of margin around the union of the frames' voxels.
            "bounds": [(lower - fine_voxel).tolist(), (upper + fine_voxel).tolist()],
            "empty_frames": empty,
            "frames": frames,
        }
        (staging / "carve.json").write_text(json.dumps(summary, indent=1))
        replace_folder(staging, folder)  # an interrupted run leaves at most a hidden staging folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CarvedCapture(folder, summary)
