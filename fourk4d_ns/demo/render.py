"""Ray-cast rendering of a posed figure into OpenCV cameras (trimesh + Embree), with or without
lens distortion.

The mask is exactly the hit test of the ray through each pixel's center. The color is the mean of
``n x n`` sub-pixel samples (anti-aliasing), each the textured, Lambert-shaded surface at the first
hit or a background gradient that depends only on the ray direction (so it agrees between views,
and is not black, so masking matters). A distorted camera traces, for every sample position of
its (distorted) image, the ray that OpenCV's distortion model maps there (``undistort_pixels``), so
its images are what a real lens with those coefficients records.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from fourk4d_ns.core.camera import camera_center, project_points, undistort_pixels
from fourk4d_ns.demo.figure import PosedSurface
from fourk4d_ns.demo.texture import Material, albedo
from fourk4d_ns.io.errors import InputError

# Lights are fixed in the world, so the shading on a limb changes as it moves.
_LIGHTS_TOWARDS = np.array([[0.45, -0.65, 0.61], [-0.6, 0.5, 0.3]])
LIGHT_DIRECTIONS = _LIGHTS_TOWARDS / np.linalg.norm(_LIGHTS_TOWARDS, axis=1, keepdims=True)
"""Unit directions towards a key light (front, above, figure's left) and a fill light (behind)."""
LIGHT_INTENSITIES = np.array([0.75, 0.30])
AMBIENT = 0.30

BACKGROUND_LOW = np.array([0.30, 0.31, 0.33])
"""Background color of rays looking down."""
BACKGROUND_HIGH = np.array([0.70, 0.73, 0.78])
"""Background color of rays looking up."""


class EmbreeUnavailableError(InputError, RuntimeError):
    """trimesh cannot use Embree, and the slow pure-Python ray caster was not allowed."""


def ray_intersector(mesh: trimesh.Trimesh, allow_slow: bool = False):
    """An Embree ray intersector for ``mesh``; the pure-Python one only when ``allow_slow``."""
    if trimesh.ray.has_embree:
        from trimesh.ray.ray_pyembree import RayMeshIntersector

        return RayMeshIntersector(mesh)
    if not allow_slow:
        raise EmbreeUnavailableError(
            "Embree ray casting is unavailable (install the `embreex` package); "
            "the pure-Python ray caster is far slower and must be asked for explicitly"
        )
    from trimesh.ray.ray_triangle import RayMeshIntersector

    return RayMeshIntersector(mesh)


def pixel_window(
    surface: PosedSurface,
    K: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    height: int,
    width: int,
    dist: np.ndarray | None = None,
):
    """Pixel box ``(x0, x1, y0, y1)`` (exclusive ends) holding the surface's projection, clipped to the image.

    The silhouette lies inside the projection of the vertices' convex hull, so rays outside this box
    cannot hit anything and are not cast. Distortion bends the hull's edges between vertices, so a
    distorted camera's box gets a margin of 2% of the image size.
    """
    distorted = dist is not None and bool(np.any(dist))
    pixels, depth = project_points(surface.vertices, K, R, T, dist if distorted else None)
    if np.any(depth <= 0):
        return 0, width, 0, height  # the camera is among the geometry: cast everything
    margin = 1 + (int(np.ceil(0.02 * max(height, width))) if distorted else 0)
    x0, y0 = np.floor(pixels.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(pixels.max(axis=0)).astype(int) + margin
    return max(x0, 0), min(x1, width), max(y0, 0), min(y1, height)


def sample_offsets(samples_per_side: int) -> np.ndarray:
    """Sub-pixel positions [S,2] of a regular ``n x n`` grid inside the unit pixel (the center when n = 1)."""
    ticks = (np.arange(samples_per_side) + 0.5) / samples_per_side
    return np.stack(np.meshgrid(ticks, ticks, indexing="xy"), axis=-1).reshape(-1, 2)


def pixel_ray_directions(
    K: np.ndarray, R: np.ndarray, xs: np.ndarray, ys: np.ndarray, dist: np.ndarray | None = None
) -> np.ndarray:
    """Unit world directions [N,3] of the rays through continuous pixel positions (xs, ys): ``R^T K^-1 [x, y, 1]``,
    or with OpenCV distortion ``dist`` (k1, k2, p1, p2, k3) ``R^T [undistorted x, undistorted y, 1]``.

    Written out per component: tiny matrix products go through BLAS, which is slow on a busy machine.
    """
    if dist is not None and np.any(dist):
        normalized = undistort_pixels(np.stack([xs, ys], axis=-1), K, dist)
        cam = [normalized[:, 0], normalized[:, 1], np.ones_like(xs)]
    else:
        K_inv = np.linalg.inv(K)
        cam = [K_inv[i, 0] * xs + K_inv[i, 1] * ys + K_inv[i, 2] for i in range(3)]
    directions = cam[0][:, None] * R[0] + cam[1][:, None] * R[1] + cam[2][:, None] * R[2]
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


def background(directions: np.ndarray) -> np.ndarray:
    """Grey-blue gradient [N,3] over the rays' elevation."""
    weight = np.clip((directions[:, 2] + 0.6) / 1.2, 0.0, 1.0)
    weight = weight * weight * (3.0 - 2.0 * weight)  # smoothstep
    return BACKGROUND_LOW + (BACKGROUND_HIGH - BACKGROUND_LOW) * weight[:, None]


def barycentric_hits(origin: np.ndarray, directions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Barycentric weights [N,3] where rays from ``origin`` meet their (known hit) triangles [N,3,3]."""
    edge1 = triangles[:, 1] - triangles[:, 0]
    edge2 = triangles[:, 2] - triangles[:, 0]
    p = np.cross(directions, edge2)
    det = np.einsum("ij,ij->i", edge1, p)
    safe = np.abs(det) > 1e-12
    det = np.where(safe, det, 1.0)
    offset = origin - triangles[:, 0]
    u = np.einsum("ij,ij->i", offset, p) / det
    v = np.einsum("ij,ij->i", directions, np.cross(offset, edge1)) / det
    weights = np.stack([1.0 - u - v, u, v], axis=1)
    weights[~safe] = 1.0 / 3.0  # grazing hits: any point of the triangle will do
    # Embree's float32 test may accept hits just outside the exact triangle.
    weights = np.clip(weights, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def shade(normals: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Lambertian shading [N,3] of ``colors`` with ambient light and the fixed directional lights."""
    lambert = np.clip(normals @ LIGHT_DIRECTIONS.T, 0.0, None) @ LIGHT_INTENSITIES
    return np.clip(colors * (AMBIENT + lambert)[:, None], 0.0, 1.0)


@dataclass
class CameraView:
    """One camera's rays, computed once and reused for every frame."""

    K: np.ndarray
    """Intrinsics [3,3]."""
    R: np.ndarray
    """World-to-camera rotation [3,3]."""
    T: np.ndarray
    """World-to-camera translation [3]."""
    height: int
    """Image height in pixels."""
    width: int
    """Image width in pixels."""
    origin: np.ndarray
    """Camera center [3]."""
    center_directions: np.ndarray
    """Ray directions through the pixel centers [H*W,3]; their hits make the mask."""
    sample_directions: np.ndarray
    """Ray directions of the anti-aliasing samples [S,H*W,3]; their mean color makes the image."""
    background: np.ndarray
    """Background color of every pixel, averaged over its samples [H*W,3]."""
    dist: np.ndarray | None = None
    """OpenCV distortion (k1, k2, p1, p2, k3) the image is recorded with; None: a pinhole camera."""

    @classmethod
    def from_calibration(
        cls,
        K: np.ndarray,
        R: np.ndarray,
        T: np.ndarray,
        height: int,
        width: int,
        samples_per_side: int = 1,
        dist: np.ndarray | None = None,
    ) -> CameraView:
        """Rays of an OpenCV camera, distorted by ``dist`` if given; ``samples_per_side`` squared color samples
        per pixel."""
        ys, xs = np.mgrid[0:height, 0:width].reshape(2, -1).astype(np.float64)
        offsets = sample_offsets(samples_per_side)
        samples = np.stack([pixel_ray_directions(K, R, xs + dx, ys + dy, dist) for dx, dy in offsets])
        center = samples[0] if samples_per_side == 1 else pixel_ray_directions(K, R, xs + 0.5, ys + 0.5, dist)
        shade_background = np.mean([background(d) for d in samples], axis=0)
        origin = camera_center(R, T)
        return cls(K, R, T, int(height), int(width), origin, center, samples, shade_background, dist)


@dataclass
class RenderedView:
    """What one camera records of one frame."""

    rgb: np.ndarray
    """Anti-aliased color [H,W,3] uint8."""
    mask: np.ndarray
    """255 where the pixel-center ray hits the figure, else 0 [H,W] uint8."""
    coverage: np.ndarray
    """Fraction of the color samples that hit the figure [H,W] float (a matte: soft at the silhouette)."""
    part: np.ndarray
    """Index of the figure part the pixel-center ray hits, -1 where it misses [H,W] int."""


class FrameRenderer:
    """Renders one posed surface from any number of cameras (the ray-casting structure is built once)."""

    def __init__(self, surface: PosedSurface, materials: list[Material], allow_slow: bool = False):
        self.surface = surface
        self.materials = materials
        self.intersector = ray_intersector(surface.to_trimesh(), allow_slow=allow_slow)

    def _surface_color(self, origin: np.ndarray, directions: np.ndarray, triangles: np.ndarray) -> np.ndarray:
        """Shaded surface color [N,3] where rays meet the given triangle indices [N]."""
        faces = self.surface.faces[triangles]
        weights = barycentric_hits(origin, directions, self.surface.vertices[faces])
        normals = np.einsum("nk,nkj->nj", weights, self.surface.normals[faces])
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        # Face the viewer, should a ray ever reach the inside of a part.
        normals *= -np.sign(np.einsum("ij,ij->i", normals, directions) + 1e-12)[:, None]
        coords = np.einsum("nk,nkj->nj", weights, self.surface.texture_coords[faces])
        parts = self.surface.vertex_part[faces[:, 0]]
        return shade(normals, albedo(coords, parts, self.materials))

    def render(self, view: CameraView) -> RenderedView:
        """Color, mask, coverage and part labels of the figure seen by ``view``."""
        color = view.background.copy()
        mask = np.zeros(view.height * view.width, dtype=bool)
        coverage = np.zeros(view.height * view.width)
        part = np.full(view.height * view.width, -1, dtype=np.int64)
        x0, x1, y0, y1 = pixel_window(self.surface, view.K, view.R, view.T, view.height, view.width, view.dist)
        if x1 > x0 and y1 > y0:
            ys, xs = np.mgrid[y0:y1, x0:x1].reshape(2, -1)
            pixels = ys * view.width + xs
            samples = len(view.sample_directions)
            with_center = samples > 1  # with one sample per pixel, it is the center ray
            bundles = ([view.center_directions[pixels]] if with_center else []) + [
                d[pixels] for d in view.sample_directions
            ]
            directions = np.concatenate(bundles)  # every ray of this camera in one Embree call
            triangles = self.intersector.intersects_first(np.broadcast_to(view.origin, directions.shape), directions)
            hit = triangles >= 0
            sample_color = np.tile(view.background[pixels], (len(bundles), 1))
            sample_color[hit] = self._surface_color(view.origin, directions[hit], triangles[hit])
            sample_color = sample_color.reshape(len(bundles), len(pixels), 3)
            color[pixels] = sample_color[int(with_center) :].mean(axis=0)
            center_hit = hit[: len(pixels)]
            mask[pixels] = center_hit
            coverage[pixels] = hit.reshape(len(bundles), len(pixels))[int(with_center) :].mean(axis=0)
            faces = self.surface.faces[triangles[: len(pixels)][center_hit], 0]
            part[pixels[center_hit]] = self.surface.vertex_part[faces]

        shape = (view.height, view.width)
        rgb = np.round(color * 255.0).astype(np.uint8).reshape(*shape, 3)
        return RenderedView(
            rgb, (mask.astype(np.uint8) * 255).reshape(shape), coverage.reshape(shape), part.reshape(shape)
        )
