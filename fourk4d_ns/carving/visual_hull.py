"""Visual-hull carving of one frame from foreground masks (METHOD.md section 1). Pure torch/NumPy.

Hierarchical: a coarse grid over a search box is carved first, then every surviving coarse voxel
and its neighbours are subdivided and carved again at the fine voxel size. A voxel center is kept
when, among the cameras whose image contains it, at least ``vhull_thresh`` of them see it inside the
mask and at least ``count_thresh`` cameras see it at all. "Inside" allows a voxel's projected
half-diagonal plus pixel quantization of distance to the mask (always for the coarse pass, so thin
parts survive it; for the fine pass unless ``conservative`` is off), so the hull contains the
subject. Statistical outliers are then removed and the surface is resampled (marching cubes of the
occupancy at iso 0.5, then area-weighted samples on that surface) from the voxels that also pass the
vote against the exact masks, which lie on the subject rather than around it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fourk4d_ns.core.camera import project_points

NEAR_PLANE = 1e-3
"""Voxels closer to a camera than this (in scene units along its optical axis) count as unseen."""
QUANTIZATION_PIXELS = 1.5
"""A surface point inside the silhouette may lie up to ~0.71 px from the nearest foreground pixel
center, and the vote reads the distance at the center of the pixel a voxel falls in (another ~0.71 px)."""


@dataclass
class CarveSettings:
    """Thresholds and resolutions of the hierarchical carving."""

    vhull_thresh: float = 0.95
    """Fraction of the cameras seeing a voxel that must see it inside their mask (published: 0.95)."""
    count_thresh: int = 6
    """Cameras that must see a voxel for it to be kept; capped at the cameras usable in a frame."""
    coarse_resolution: int = 64
    """Coarse voxels along the longest side of the search box."""
    fine_resolution: int = 256
    """Fine voxels along the longest side of the coarse hull (about 7 mm for a 1.8 m subject)."""
    conservative: bool = True
    """Accept voxel centers up to 1.5 px plus a voxel's projected half-diagonal outside the masks, so
    that the hull contains the subject despite pixel quantization (False: exact masks, as published)."""
    surface_from_exact_vote: bool = True
    """Resample the surface from the voxels that pass the vote against the exact masks (published),
    not from the tolerant hull, which lies ~1.5 px outside the subject and blurs IBR colors."""
    outlier_neighbors: int = 20
    """Neighbours used by the statistical outlier removal (0 disables it)."""
    outlier_std_ratio: float = 2.0
    """Points whose mean neighbour distance exceeds mean + ratio * std are removed."""
    max_surface_points: int = 262144
    """Upper bound on surface points per frame (the published 4K4D count)."""
    surface_points: int | None = None
    """Surface points per frame; None: one per fine-voxel-sized patch of hull surface, capped above."""


@dataclass
class CameraSet:
    """Cameras as tensors, in OpenCV conventions (world-to-camera ``x_cam = R X + T``)."""

    K: torch.Tensor
    """Intrinsics [C,3,3]."""
    R: torch.Tensor
    """Rotations [C,3,3]."""
    T: torch.Tensor
    """Translations [C,3]."""
    dist: torch.Tensor
    """OpenCV distortion (k1, k2, p1, p2, k3) [C,5]."""


def project(points: torch.Tensor, cameras: CameraSet, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel coordinates (u, v) and depth z of points [M,3] in camera ``index``, with distortion."""
    uv, z = project_points(points, cameras.K[index], cameras.R[index], cameras.T[index], cameras.dist[index])
    return uv[:, 0], uv[:, 1], z


def _vote(
    points: torch.Tensor,
    distances: list[torch.Tensor | None],
    tolerances: list[float],
    cameras: CameraSet,
    settings: CarveSettings,
    chunk: int = 1 << 20,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Booleans [M]: which points pass the mask vote with the tolerances, and which pass it against the
    exact masks. A point counts as inside camera i's mask when the pixel it falls in lies within
    ``tolerances[i]`` pixels of the mask (``distances[i]`` holds each pixel's distance to the mask).
    ``None`` entries are cameras left out of the vote."""
    usable = [i for i, m in enumerate(distances) if m is not None]
    count_thresh = max(min(settings.count_thresh, len(usable)), 1)
    # A point is kept when inside >= thresh * seen, i.e. outside <= (1 - thresh) * seen. Since seen
    # can never exceed the number of cameras, a point with more outside votes than that bound is lost
    # already, and is dropped from the remaining cameras' work.
    max_outside = (1.0 - settings.vhull_thresh) * len(usable)
    keep = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    keep_exact = torch.zeros_like(keep)
    for start in range(0, points.shape[0], chunk):
        active = torch.arange(start, min(start + chunk, points.shape[0]), device=points.device)
        seen = torch.zeros(active.shape[0], dtype=torch.int32, device=points.device)
        inside = torch.zeros_like(seen)
        inside_exact = torch.zeros_like(seen)  # never above inside: the exact vote needs no separate rejection
        for i in usable:
            distance = distances[i]
            height, width = distance.shape
            u, v, z = project(points[active], cameras, i)
            visible = (z > NEAR_PLANE) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
            pixel_distance = distance[v.clamp(0, height - 1).long(), u.clamp(0, width - 1).long()]
            seen += visible.int()
            inside += (visible & (pixel_distance <= tolerances[i])).int()
            inside_exact += (visible & (pixel_distance <= 0)).int()
            alive = (seen - inside) <= max_outside
            active, seen, inside, inside_exact = active[alive], seen[alive], inside[alive], inside_exact[alive]
        enough = seen >= count_thresh
        keep[active] = enough & (inside >= settings.vhull_thresh * seen)
        keep_exact[active] = enough & (inside_exact >= settings.vhull_thresh * seen)
    return keep, keep_exact


def mask_distance(mask: torch.Tensor) -> torch.Tensor:
    """Per pixel, the distance in pixels from its center to the nearest mask pixel's center (0 inside)."""
    import cv2  # OpenCV's exact Euclidean distance transform is far faster than a torch equivalent

    background = (~mask).cpu().numpy().astype(np.uint8)
    distance = cv2.distanceTransform(background, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return torch.from_numpy(distance).to(mask.device)


def vote_tolerances(
    distances: list[torch.Tensor | None], cameras: CameraSet, points: torch.Tensor, voxel: float, conservative: bool
) -> list[float]:
    """Per camera, how far (pixels) outside its mask a voxel center may fall and still count as inside:
    pixel quantization plus the projected half-diagonal of a voxel at the nearest of ``points``."""
    tolerances = []
    for i, distance in enumerate(distances):
        if distance is None or not conservative:
            tolerances.append(0.0)
            continue
        _, _, z = project(points, cameras, i)
        nearest = float(z[z > NEAR_PLANE].min()) if bool((z > NEAR_PLANE).any()) else NEAR_PLANE
        tolerances.append(QUANTIZATION_PIXELS + float(cameras.K[i, 1, 1]) * voxel * 0.87 / nearest)
    return tolerances


def grid_centers(lower: torch.Tensor, voxel: float, shape: tuple[int, int, int]) -> torch.Tensor:
    """Centers [X*Y*Z,3] of a voxel grid whose first voxel's corner is ``lower``."""
    axes = [lower[d] + voxel * (torch.arange(shape[d], dtype=lower.dtype, device=lower.device) + 0.5) for d in range(3)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)


def carve_coarse(
    distances: list[torch.Tensor | None], cameras: CameraSet, search_bounds: torch.Tensor, settings: CarveSettings
) -> tuple[torch.Tensor, float]:
    """Coarse pass over the search box [2,3]: centers [M,3] of the kept voxels and the voxel size."""
    extent = search_bounds[1] - search_bounds[0]
    voxel = float(extent.max()) / settings.coarse_resolution
    shape = tuple(max(1, int(np.ceil(float(e) / voxel))) for e in extent)
    centers = grid_centers(search_bounds[0], voxel, shape)
    # Coarse voxels always get the voxel-size tolerance: the fine pass only refines what survives.
    corners = torch.stack([search_bounds[0], search_bounds[1]])
    tolerances = vote_tolerances(distances, cameras, corners, voxel, conservative=True)
    return centers[_vote(centers, distances, tolerances, cameras, settings)[0]], voxel


def carve_fine(
    coarse_centers: torch.Tensor,
    coarse_voxel: float,
    fine_voxel: float,
    distances: list[torch.Tensor | None],
    cameras: CameraSet,
    settings: CarveSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fine pass over the fine grid covering the coarse voxels and their neighbours: the kept centers
    [M,3], and which of them also pass the vote against the exact masks [M]."""
    if coarse_centers.shape[0] == 0:
        return coarse_centers, torch.zeros(0, dtype=torch.bool)
    lower = coarse_centers.min(dim=0).values - 1.5 * coarse_voxel
    upper = coarse_centers.max(dim=0).values + 1.5 * coarse_voxel
    coarse_shape = tuple(int(round(float(s))) for s in ((upper - lower) / coarse_voxel))
    occupied = torch.zeros(coarse_shape, dtype=torch.bool, device=coarse_centers.device)
    cells = ((coarse_centers - lower) / coarse_voxel).floor().long()
    occupied[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    near = F.max_pool3d(occupied[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0  # one-voxel dilation

    fine_shape = tuple(int(np.ceil(float(s) / fine_voxel)) for s in (upper - lower))
    centers = grid_centers(lower, fine_voxel, fine_shape)
    parent = ((centers - lower) / coarse_voxel).floor().long()
    for d in range(3):
        parent[:, d] = parent[:, d].clamp(0, coarse_shape[d] - 1)
    centers = centers[near[parent[:, 0], parent[:, 1], parent[:, 2]]]
    tolerances = vote_tolerances(distances, cameras, coarse_centers, fine_voxel, settings.conservative)
    keep, keep_exact = _vote(centers, distances, tolerances, cameras, settings)
    return centers[keep], keep_exact[keep]


def remove_statistical_outliers(points: np.ndarray, neighbors: int, std_ratio: float) -> np.ndarray:
    """Boolean [M]: points whose mean distance to their neighbours is not unusually large."""
    from scipy.spatial import cKDTree  # scipy ships with scikit-image; imported here to keep the core light

    if neighbors <= 0 or points.shape[0] <= neighbors:
        return np.ones(points.shape[0], dtype=bool)
    distances, _ = cKDTree(points).query(points, k=neighbors + 1, workers=-1)
    mean_distance = distances[:, 1:].mean(axis=1)
    return mean_distance <= mean_distance.mean() + std_ratio * mean_distance.std()


def sample_hull_surface(points: np.ndarray, voxel: float, settings: CarveSettings, seed: int) -> np.ndarray:
    """Points [N,3] sampled uniformly by area on the iso-0.5 surface of the hull's occupancy grid."""
    from skimage.measure import marching_cubes

    if points.shape[0] == 0:
        return np.zeros((0, 3), dtype=np.float32)
    lower = points.min(axis=0) - 2.5 * voxel  # two empty voxels of padding close the surface
    cells = np.round((points - lower) / voxel - 0.5).astype(np.int64)
    occupancy = np.zeros(cells.max(axis=0) + 3, dtype=np.float32)
    occupancy[cells[:, 0], cells[:, 1], cells[:, 2]] = 1.0
    vertices, faces, _, _ = marching_cubes(occupancy, level=0.5, spacing=(voxel, voxel, voxel))
    vertices = vertices + lower + 0.5 * voxel  # grid index i sits at the voxel center lower + (i + 0.5) voxel
    triangles = vertices[faces]
    areas = 0.5 * np.linalg.norm(np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1)
    count = settings.surface_points
    if count is None:
        count = int(round(areas.sum() / voxel**2))
    count = int(np.clip(count, 1, settings.max_surface_points))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(faces), size=count, p=areas / areas.sum())
    r1, r2 = rng.random(count), rng.random(count)
    flip = r1 + r2 > 1  # fold the unit square onto the triangle for uniform barycentrics
    r1, r2 = np.where(flip, 1 - r1, r1), np.where(flip, 1 - r2, r2)
    tri = triangles[chosen]
    samples = tri[:, 0] + r1[:, None] * (tri[:, 1] - tri[:, 0]) + r2[:, None] * (tri[:, 2] - tri[:, 0])
    return samples.astype(np.float32)


@dataclass
class FrameHull:
    """What carving one frame produced."""

    hull: np.ndarray
    """Kept fine voxel centers after outlier removal [M,3]."""
    surface: np.ndarray
    """Surface samples [N,3]."""
    cameras_used: int
    """Cameras whose mask took part in the vote."""


def carve_frame_fine(
    coarse_centers: torch.Tensor,
    coarse_voxel: float,
    fine_voxel: float,
    distances: list[torch.Tensor | None],
    cameras: CameraSet,
    settings: CarveSettings,
    seed: int,
) -> FrameHull:
    """Fine carving, outlier removal and surface resampling of one frame's coarse hull."""
    fine, exact = (
        t.cpu().numpy() for t in carve_fine(coarse_centers, coarse_voxel, fine_voxel, distances, cameras, settings)
    )
    inliers = remove_statistical_outliers(fine, settings.outlier_neighbors, settings.outlier_std_ratio)
    fine, exact = fine[inliers], exact[inliers]
    # The tolerant hull contains the subject but sits ~1.5 px outside it; points initialized there
    # sample misaligned colors from the source views, so the surface comes from the exact vote.
    source = fine[exact] if settings.surface_from_exact_vote and exact.any() else fine
    surface = sample_hull_surface(source, fine_voxel, settings, seed)
    return FrameHull(fine.astype(np.float32), surface, sum(d is not None for d in distances))
