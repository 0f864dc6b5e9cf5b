"""PLY files of points (plyfile): one ``vertex`` element, binary little-endian, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from fourk4d_ns.io.atomic import atomic_path
from fourk4d_ns.io.errors import CaptureError


def write_ply(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """Writes one vertex property per column (in order, each column's dtype kept); returns ``path``."""
    count = len(next(iter(columns.values())))
    vertex = np.empty(count, dtype=[(name, values.dtype.newbyteorder("<")) for name, values in columns.items()])
    for name, values in columns.items():
        vertex[name] = values
    ply = PlyData([PlyElement.describe(vertex, "vertex")], text=False, byte_order="<")
    with atomic_path(Path(path)) as tmp:
        ply.write(str(tmp))
    return Path(path)


def write_points(path: Path, points: np.ndarray) -> Path:
    """A PLY file of xyz float32 vertices [N,3]."""
    points = np.asarray(points, dtype=np.float32)
    return write_ply(path, {"x": points[:, 0], "y": points[:, 1], "z": points[:, 2]})


def read_points(path: Path) -> np.ndarray:
    """The xyz vertices [N,3] (float32) of a PLY file; ``CaptureError`` when it cannot be read."""
    try:
        vertex = PlyData.read(str(path))["vertex"]
        return np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
    except Exception as err:  # plyfile raises several types on damaged files
        raise CaptureError(path, f"unreadable point cloud ({type(err).__name__}: {err})") from None
