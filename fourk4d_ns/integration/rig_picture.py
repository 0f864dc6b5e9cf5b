"""A picture of a camera rig: frusta, names and the hull's bounds, seen from above and from the side.

Drawn headless with matplotlib's object-oriented API (no pyplot, no display) and written atomically.
"Up" is the cameras' mean up direction (OpenCV y points down in every camera), so the views follow
the capture's own world frame whatever its axes are.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fourk4d_ns.core.camera import camera_center
from fourk4d_ns.io.atomic import atomic_write_bytes

COLORS = {"train": "tab:blue", "held-out": "tab:green", "flagged": "tab:red"}
"""Colors of training, held-out and flagged cameras."""


@dataclass
class RigDrawing:
    """What the picture shows."""

    names: list[str]
    """Camera names."""
    K: np.ndarray
    """Intrinsics [C,3,3]."""
    R: np.ndarray
    """World-to-camera rotations [C,3,3] (OpenCV)."""
    T: np.ndarray
    """World-to-camera translations [C,3]."""
    height: np.ndarray
    """Image heights [C]."""
    width: np.ndarray
    """Image widths [C]."""
    roles: list[str]
    """Per camera, a key of ``COLORS``."""
    bounds: np.ndarray | None
    """The hull's bounds [2,3], if carved."""
    points: np.ndarray | None = None
    """Hull voxel centers [M,3] drawn faintly, if any."""
    title: str = ""
    """Title above both views."""


def _view_axes(R: np.ndarray) -> np.ndarray:
    """Rows: two horizontal axes and the rig's up direction (orthonormal)."""
    up = -R[:, 1, :].mean(axis=0)
    up = up / np.linalg.norm(up)
    seed = np.eye(3)[np.argmin(np.abs(up))]  # the world axis least aligned with up
    first = seed - (seed @ up) * up
    first = first / np.linalg.norm(first)
    return np.stack([first, np.cross(up, first), up])


def _frustum_corners(drawing: RigDrawing, index: int, depth: float) -> np.ndarray:
    """World positions [4,3] of the image corners at ``depth`` in front of the camera."""
    h, w = float(drawing.height[index]), float(drawing.width[index])
    pixels = np.array([[0.0, 0.0, 1.0], [w, 0.0, 1.0], [w, h, 1.0], [0.0, h, 1.0]])
    rays = pixels @ np.linalg.inv(drawing.K[index]).T * depth  # camera coordinates at that depth
    return (rays - drawing.T[index]) @ drawing.R[index]  # x_world = R^T (x_cam - T)


def _box_edges(bounds: np.ndarray) -> list[np.ndarray]:
    """The 12 edges [2,3] of an axis-aligned box."""
    corners = np.array([[bounds[i][0], bounds[j][1], bounds[k][2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    return [
        corners[[a, b]] for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1
    ]  # corners differing in one coordinate


def _draw_view(ax, drawing: RigDrawing, axes3: np.ndarray, plane: tuple[int, int], depth: float) -> None:
    """One view: the world projected on the ``plane`` axes (indices into ``axes3``'s rows)."""
    a, b = plane

    def plot(world: np.ndarray, **style) -> None:
        flat = world.reshape(-1, 3) @ axes3.T
        ax.plot(flat[:, a], flat[:, b], **style)

    centers = camera_center(drawing.R, drawing.T)
    middle = centers.mean(axis=0) if drawing.bounds is None else drawing.bounds.mean(axis=0)
    if drawing.points is not None and len(drawing.points):
        flat = drawing.points[:: max(1, len(drawing.points) // 4000)] @ axes3.T
        ax.scatter(flat[:, a], flat[:, b], s=1, color="0.7", linewidths=0)
    if drawing.bounds is not None:
        for edge in _box_edges(drawing.bounds):
            plot(edge, color="0.3", linewidth=1)
    for c, name in enumerate(drawing.names):
        color = COLORS[drawing.roles[c]]
        width = 1.6 if drawing.roles[c] == "flagged" else 0.8
        corners = _frustum_corners(drawing, c, depth)
        for corner in corners:
            plot(np.stack([centers[c], corner]), color=color, linewidth=width)
        plot(np.concatenate([corners, corners[:1]]), color=color, linewidth=width)
        flat, outward = centers[c] @ axes3.T, (centers[c] - middle) @ axes3.T
        offset = outward[[a, b]] / max(float(np.linalg.norm(outward[[a, b]])), 1e-9) * depth * 0.6
        ax.text(flat[a] + offset[0], flat[b] + offset[1], name, color=color, fontsize=8, ha="center", va="center")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, linewidth=0.3)
    ax.set_xlabel("horizontal")
    ax.set_ylabel("up" if b == 2 else "horizontal")


def draw_rig(drawing: RigDrawing, path: Path) -> Path:
    """Writes the picture (PNG) to ``path``; returns it."""
    from matplotlib.figure import Figure  # imported here: only this picture needs matplotlib
    from matplotlib.lines import Line2D

    axes3 = _view_axes(drawing.R)
    centers = camera_center(drawing.R, drawing.T)
    middle = centers.mean(axis=0) if drawing.bounds is None else drawing.bounds.mean(axis=0)
    depth = 0.2 * float(np.median(np.linalg.norm(centers - middle, axis=1)))  # frusta a fifth of the way in
    figure = Figure(figsize=(14, 7), dpi=100, layout="constrained")
    for column, (label, plane) in enumerate((("from above", (0, 1)), ("from the side", (0, 2)))):
        ax = figure.add_subplot(1, 2, column + 1)
        _draw_view(ax, drawing, axes3, plane, depth)
        ax.set_title(label)
    handles = [Line2D([], [], color=COLORS[role], label=role) for role in COLORS if role in drawing.roles]
    if drawing.bounds is not None:
        handles.append(Line2D([], [], color="0.3", label="hull bounds"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    if drawing.title:
        figure.suptitle(drawing.title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())
    return path
