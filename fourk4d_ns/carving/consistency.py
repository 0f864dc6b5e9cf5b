"""Do a capture's calibration and masks agree? Leave-one-out visual hulls, pure arrays.

For every camera, the visual hull is carved from the OTHER cameras' masks and projected back into the
left-out camera. A hull carved from correct cameras contains the subject, so its silhouette covers
the camera's mask when the camera's calibration and masks agree with the rest of the rig; the mask of
a miscalibrated camera, or one whose masks come from another moment (mis-synchronised), sticks out
of it. The fraction covered flags cameras; the intersection over union (IoU) of silhouette and mask,
which also drops where the others' hull is merely loose, ranks the suspects. Carving is coarse
(seconds per frame): it only has to tell one camera from the others, not to rebuild the subject.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from fourk4d_ns.carving.visual_hull import NEAR_PLANE, CameraSet, CarveSettings, carve_coarse, carve_fine, project
from fourk4d_ns.io.progress import track


@dataclass
class ConsistencySettings:
    """How the leave-one-out silhouette check carves and when it flags a camera."""

    frames: int = 3
    """Frames checked, evenly spaced over the selected ones."""
    silhouette_size: int = 256
    """Masks are compared at this longest side in pixels (never enlarged)."""
    coarse_resolution: int = 32
    """Coarse voxels along the longest side of the cameras' search box."""
    resolution: int = 64
    """Fine voxels along the longest side of the hull."""
    flag_ratio: float = 0.85
    """A camera is flagged when the hull of the others covers less of its mask than this fraction of the median."""

    def carve_settings(self) -> CarveSettings:
        """The published vote, against the exact masks (the silhouettes compared must not grow)."""
        return CarveSettings(coarse_resolution=self.coarse_resolution, conservative=False)


@dataclass
class FrameConsistency:
    """The leave-one-out check of one frame; per camera None where its mask is empty or unusable."""

    ious: list[float | None]
    """Per camera, the IoU of its mask with the silhouette of the hull of the other cameras."""
    covered: list[float | None]
    """Per camera, the fraction of its mask inside that silhouette."""
    hull: np.ndarray
    """Voxel centers [M,3] of the hull carved from every voting camera."""


@dataclass
class Consistency:
    """The leave-one-out check over several frames (means over the frames of the last round)."""

    ious: list[float | None]
    """Per camera, the mean IoU of its mask with the silhouette of the others' hull (None: no usable mask)."""
    covered: list[float | None]
    """Per camera, the mean fraction of its mask inside that silhouette."""
    median_covered: float | None
    """Median of ``covered`` over the cameras."""
    flagged: list[bool]
    """Per camera: ``covered`` below ``flag_ratio`` times its median."""
    excluded: list[int]
    """Cameras left out of every hull, in the order they were found (see ``check_consistency``)."""
    hulls: list[np.ndarray]
    """Per checked frame, the hull [M,3] of the voting cameras (empty when nothing was kept)."""


def silhouette(points: torch.Tensor, voxel: float, cameras: CameraSet, index: int, size: tuple[int, int]) -> np.ndarray:
    """Boolean image (height, width) covered by voxels of side ``voxel`` centered at ``points`` [M,3],
    each drawn as the square its side spans at its depth (at least the pixel its center falls in)."""
    height, width = size
    image = np.zeros((height + 1, width + 1), dtype=np.int32)  # a difference array: one extra row and column
    if points.shape[0] == 0:
        return image[:height, :width] > 0
    u, v, z = (t.double().cpu().numpy() for t in project(points, cameras, index))
    front = z > NEAR_PLANE
    u, v, z = u[front], v[front], z[front]
    half = 0.5 * voxel * float(cameras.K[index, 0, 0]) / z
    # Pixel i spans [i, i + 1): covered when its center i + 0.5 lies within the square.
    x0 = np.minimum(np.ceil(u - half - 0.5), np.floor(u)).clip(0, width)
    x1 = np.maximum(np.floor(u + half - 0.5), np.floor(u)).clip(-1, width - 1) + 1
    y0 = np.minimum(np.ceil(v - half - 0.5), np.floor(v)).clip(0, height)
    y1 = np.maximum(np.floor(v + half - 0.5), np.floor(v)).clip(-1, height - 1) + 1
    inside = (x0 < x1) & (y0 < y1)
    x0, x1, y0, y1 = (a[inside].astype(np.int64) for a in (x0, x1, y0, y1))
    np.add.at(image, (y0, x0), 1)
    np.add.at(image, (y0, x1), -1)
    np.add.at(image, (y1, x0), -1)
    np.add.at(image, (y1, x1), 1)
    return image.cumsum(0).cumsum(1)[:height, :width] > 0


def intersection_over_union(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean images (1 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def frame_consistency(
    masks: list[np.ndarray | None],
    distances: list[torch.Tensor | None],
    cameras: CameraSet,
    search_bounds: torch.Tensor,
    settings: ConsistencySettings,
    excluded: Collection[int] = (),
    map_function: Callable = map,
) -> FrameConsistency:
    """Leave-one-out check of one frame: ``masks`` (None: unusable) and their distance maps
    (``mask_distance``; None also for empty masks). ``excluded`` cameras vote in no hull; their own
    masks are still compared with the others' hull. ``map_function`` runs the left-out cameras (a
    thread pool's ``map`` runs them in parallel)."""
    carve = settings.carve_settings()
    voting = [None if i in excluded else d for i, d in enumerate(distances)]
    ious: list[float | None] = [None] * len(masks)
    covered: list[float | None] = [None] * len(masks)
    coarse, coarse_voxel = carve_coarse(voting, cameras, search_bounds, carve)
    if coarse.shape[0] == 0:
        return FrameConsistency(ious, covered, np.zeros((0, 3), np.float32))
    # One fine voxel size for every left-out camera, from the hull of all of them.
    extent = float((coarse.max(0).values - coarse.min(0).values).max()) + coarse_voxel
    voxel = extent / settings.resolution
    hull = carve_fine(coarse, coarse_voxel, voxel, voting, cameras, carve)[0]

    def compare(i: int) -> tuple[float, float]:
        others = [None if j == i else d for j, d in enumerate(voting)]
        others_coarse, _ = carve_coarse(others, cameras, search_bounds, carve)
        others_hull = carve_fine(others_coarse, coarse_voxel, voxel, others, cameras, carve)[0]
        shadow = silhouette(others_hull, voxel, cameras, i, masks[i].shape)
        return intersection_over_union(shadow, masks[i]), float(np.logical_and(shadow, masks[i]).sum() / masks[i].sum())

    measured = [i for i, mask in enumerate(masks) if mask is not None and distances[i] is not None]
    for i, (iou, cover) in zip(measured, map_function(compare, measured)):
        ious[i], covered[i] = iou, cover
    return FrameConsistency(ious, covered, hull.cpu().numpy())


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch ops each on one thread meanwhile: the carving's many small ops run faster that way, in
    parallel threads of their own, than split over cores (and far faster on a busy machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_consistency(
    frames: list[tuple[list[np.ndarray | None], list[torch.Tensor | None]]],
    cameras: CameraSet,
    search_bounds: torch.Tensor,
    settings: ConsistencySettings,
    workers: int = 1,
    progress: bool = False,
) -> Consistency:
    """Leave-one-out check over several frames (each given as its masks and their distance maps),
    with ``workers`` threads.

    The hull carved from correct cameras contains the subject, so its silhouette covers a consistent
    camera's mask however loose the hull is; the mask of a miscalibrated or mis-synchronised camera
    sticks out of it, and a camera is flagged when less of its mask is covered than ``flag_ratio``
    times the median. But a bad camera also carves away part of the hull every other camera is
    compared with, lowering the median (and most the coverage of the camera facing it). So suspects
    (IoU or coverage below ``flag_ratio`` times its median), lowest IoU first, are tried out of every
    hull: one stays out when the others, compared without it, flag it; at most half of the cameras do."""
    count = len(cameras.K)

    def measure(excluded: list[int], pool: ThreadPoolExecutor) -> Consistency:
        label = "leave-one-out hulls" + (f" ({len(excluded)} cameras left out)" if excluded else "")
        results = [
            frame_consistency(m, d, cameras, search_bounds, settings, excluded, pool.map)
            for m, d in track(frames, label, enabled=progress)
        ]
        ious = [_mean([r.ious[c] for r in results]) for c in range(count)]
        covered = [_mean([r.covered[c] for r in results]) for c in range(count)]
        flagged, median = flagged_cameras(covered, settings.flag_ratio)
        return Consistency(ious, covered, median, flagged, list(excluded), [r.hull for r in results])

    with one_torch_thread(), ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        current, tried = measure([], pool), set()
        while 2 * (len(current.excluded) + 1) <= count:
            low_iou = flagged_cameras(current.ious, settings.flag_ratio)[0]
            suspects = [
                c
                for c in range(count)
                if c not in tried and current.ious[c] is not None and (low_iou[c] or current.flagged[c])
            ]
            if not suspects:
                break
            suspect = min(suspects, key=lambda c: current.ious[c])
            tried.add(suspect)
            trial = measure(current.excluded + [suspect], pool)
            if trial.flagged[suspect]:
                current = trial
    return current


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def flagged_cameras(values: list[float | None], ratio: float) -> tuple[list[bool], float | None]:
    """Which cameras' value lies below ``ratio`` times the median of all of them, and that median."""
    known = [x for x in values if x is not None]
    if not known:
        return [False] * len(values), None
    median = float(np.median(known))
    return [x is not None and x < ratio * median for x in values], median
