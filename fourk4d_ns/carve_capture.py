"""Carve every frame of an EasyMocap capture and cache the result inside the capture folder.

Layout of the cache (``<scene>/fourk4d/carve/``): ``hulls/<frame>.ply`` (kept voxel centres),
``surfaces/<frame>.ply`` (surface samples that initialise the point clouds) and ``carve.json``
(settings, voxel sizes, per-frame statistics, the tight ``bounds`` of the whole sequence and a
fingerprint of the inputs). A later run with the same inputs and settings reuses it.
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
from typing import Optional, Sequence

import numpy as np
import torch
from plyfile import PlyData, PlyElement
from tqdm import tqdm

from dataparsers.atomic import replace_folder, staging_folder
from dataparsers.easymocap_cameras import viewing_bounds
from dataparsers.easymocap_layout import CARVE_FOLDER, CaptureLayout, eval_camera_names, read_layout, read_mask
from dataparsers.errors import CaptureError
from fourk4d_ns.visual_hull import CameraSet, CarveSettings, carve_coarse, carve_frame_fine, mask_distance

FORMAT_VERSION = 2


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
        """The kept voxel centres [M,3] of a frame."""
        return read_points(self.folder / "hulls" / f"{frame}.ply")


def write_points(path: Path, points: np.ndarray) -> None:
    """A PLY file of xyz float32 vertices."""
    vertices = np.empty(points.shape[0], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    vertices["x"], vertices["y"], vertices["z"] = points[:, 0], points[:, 1], points[:, 2]
    PlyData([PlyElement.describe(vertices, "vertex")]).write(str(path))


def read_points(path: Path) -> np.ndarray:
    """The xyz vertices [N,3] of a PLY file."""
    try:
        vertex = PlyData.read(str(path))["vertex"]
        return np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
    except Exception as err:  # plyfile raises several types on damaged files
        raise CaptureError(path, f"unreadable point cloud ({err}); carve again with --force") from None


def _fingerprint(layout: CaptureLayout, cameras: Sequence[str], settings: CarveSettings) -> str:
    """Hash of everything carving depends on: settings, camera files, and the masks' sizes and times."""
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT_VERSION, dataclasses.asdict(settings), list(cameras), layout.frame_names]).encode())
    for name in ("intri.yml", "extri.yml"):
        for folder in (layout.scene / "optimized", layout.scene):
            if (folder / name).is_file():
                digest.update((folder / name).read_bytes())
                break
    for per_camera in layout.mask_paths or []:
        for path in per_camera:
            stat = path.stat() if path is not None else None
            digest.update(f"{path}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1}".encode())
    return digest.hexdigest()


def load_carved(scene: Path) -> Optional[CarvedCapture]:
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


def _load_mask_distances(layout: CaptureLayout, cameras: Sequence[int], frame: int) -> list[Optional[torch.Tensor]]:
    """Distance-to-mask maps of the frame's masks; missing or empty masks are None (left out of the vote)."""

    def load(path: Optional[Path]) -> Optional[torch.Tensor]:
        mask = None if path is None else read_mask(path)
        return None if mask is None or not mask.any() else mask_distance(torch.from_numpy(mask))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(load, [layout.mask_paths[c][frame] for c in cameras]))


def carve_capture(
    scene: Path,
    settings: CarveSettings = CarveSettings(),
    masks_dir: Optional[str] = None,
    eval_cameras: Optional[Sequence[str]] = None,
    eval_camera_interval: int = 8,
    include_eval_cameras: bool = False,
    force: bool = False,
    progress: bool = True,
) -> CarvedCapture:
    """Carve all frames of a capture (or reuse the cache) and return the stored result.

    Held-out evaluation cameras (chosen as the dataparser chooses them) are left out of carving
    unless ``include_eval_cameras``, so that their masks never shape the geometry that is evaluated.
    """
    scene = Path(scene)
    layout = read_layout(scene, masks_dir=masks_dir, require_masks=True, allow_missing_masks=True)
    held_out = [] if include_eval_cameras else eval_camera_names(scene, layout.camera_names, eval_cameras, eval_camera_interval)
    cameras = [i for i, name in enumerate(layout.camera_names) if name not in held_out]
    names = [layout.camera_names[i] for i in cameras]
    if not cameras:
        raise CaptureError(scene, "no cameras left for carving after removing the evaluation cameras")
    fingerprint = _fingerprint(layout, names, settings)
    cached = load_carved(scene)
    if cached is not None and not force and cached.summary.get("fingerprint") == fingerprint:
        return cached

    rig = layout.rig.select(cameras)
    tensors = CameraSet(*(torch.from_numpy(a).float() for a in (rig.K, rig.R, rig.T, rig.dist)))
    search = torch.from_numpy(viewing_bounds(rig)).float()
    torch.manual_seed(0)

    coarse, skipped = [], {}
    for f, frame in enumerate(tqdm(layout.frame_names, desc="carving (coarse)", disable=not progress)):
        masks = _load_mask_distances(layout, cameras, f)
        skipped[frame] = [names[i] for i, m in enumerate(masks) if m is None]
        centers, coarse_voxel = carve_coarse(masks, tensors, search, settings)
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
        for f, frame in enumerate(tqdm(layout.frame_names, desc="carving (fine)", disable=not progress)):
            masks = _load_mask_distances(layout, cameras, f)
            result = carve_frame_fine(coarse[f], coarse_voxel, fine_voxel, masks, tensors, settings, seed=f)
            write_points(staging / "hulls" / f"{frame}.ply", result.hull)
            write_points(staging / "surfaces" / f"{frame}.ply", result.surface)
            entry = {"hull_points": len(result.hull), "surface_points": len(result.surface),
                     "cameras_skipped": skipped[frame]}
            if len(result.hull):
                frame_lower, frame_upper = result.hull.min(0) - fine_voxel / 2, result.hull.max(0) + fine_voxel / 2
                entry["bounds"] = [frame_lower.tolist(), frame_upper.tolist()]
                lower, upper = np.minimum(lower, frame_lower), np.maximum(upper, frame_upper)
            frames[frame] = entry
        empty = [frame for frame, entry in frames.items() if entry["hull_points"] == 0]
        for frame, missing in skipped.items():
            if missing:
                warnings.warn(f"{scene}: frame {frame}: no usable mask from cameras {missing}; carved without them")
        if empty:
            warnings.warn(f"{scene}: carving kept nothing in frames {empty}")
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
