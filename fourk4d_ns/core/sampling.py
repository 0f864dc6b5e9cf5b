"""Choosing a frame's starting points from its carved surface, and the spacing of a point cloud."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

SubsetKind = Literal["even", "random"]


def random_subset(points: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """``limit`` points drawn uniformly without replacement (the published code's choice)."""
    return points[np.random.default_rng(seed).choice(len(points), limit, replace=False)]


def _one_per_cell(points: np.ndarray, cell: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of one randomly chosen point in every occupied cube of side ``cell``."""
    cells = np.floor((points - points.min(0)) / cell).astype(np.int64)
    sides = cells.max(0) + 1
    keys = (cells[:, 0] * sides[1] + cells[:, 1]) * sides[2] + cells[:, 2]
    order = rng.permutation(len(points))
    _, first = np.unique(keys[order], return_index=True)
    return np.sort(order[first])


def even_subset(points: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """About ``limit`` points spread evenly over the surface: one per cell of a voxel grid.

    A uniform random subset leaves clusters and gaps (its nearest-neighbour distances vary a
    lot), and every gap is a hole the discs must stretch over. Keeping one point per occupied
    cube, with the cube side found by bisection so that the count lands just under ``limit``
    (topped up at random to exactly ``limit``), bounds the gaps by the cube diagonal at the
    same point count. Cost: a few ``np.unique`` calls per frame.
    """
    rng = np.random.default_rng(seed)
    extent = float((points.max(0) - points.min(0)).max())
    lo, hi = 0.0, max(extent, 1e-12)  # cube sides giving too many and too few points
    chosen = _one_per_cell(points, hi, rng)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        picked = _one_per_cell(points, mid, rng)
        if len(picked) > limit:
            lo = mid
        else:
            hi, chosen = mid, picked
        if limit - len(chosen) <= max(1, limit // 200):
            break
    missing = limit - len(chosen)
    if missing > 0:
        rest = np.setdiff1d(np.arange(len(points)), chosen, assume_unique=True)
        chosen = np.sort(np.concatenate([chosen, rng.choice(rest, missing, replace=False)]))
    return points[chosen]


def surface_subset(points: np.ndarray, limit: int | None, seed: int, kind: SubsetKind = "even") -> np.ndarray:
    """At most ``limit`` of a frame's carved surface points (all of them when ``limit`` is None)."""
    if limit is None or len(points) <= limit:
        return points
    if kind == "even":
        return even_subset(points, limit, seed)
    if kind == "random":
        return random_subset(points, limit, seed)
    raise ValueError(f'kind must be "even" or "random", got {kind!r}')


def neighbour_distances(points: np.ndarray, k: int = 1) -> np.ndarray:
    """[N] distance from each point to its ``k``-th nearest other point."""
    return cKDTree(points).query(points, k=k + 1)[0][:, k]


def typical_spacing(frames: Sequence[np.ndarray]) -> float:
    """Median distance from a point to its nearest neighbour, over (up to four of) the frames' clouds."""
    step = max(1, len(frames) // 4)
    return float(np.median(np.concatenate([neighbour_distances(np.asarray(p)) for p in frames[::step]])))
