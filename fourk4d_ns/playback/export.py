"""Export of baked frames to PLY files that other tools open.

Two formats, one file per frame:

- ``points``: the points with their color seen from one view, radius and density (any PLY tool,
  Open3D, MeshLab, CloudCompare);
- ``gaussians``: isotropic 3D Gaussians in the layout of 3D Gaussian Splatting (SuperSplat, the
  INRIA SIBR viewer, gsplat tools), with the view-dependent SH term kept to first order; the bake's
  SH degree d gives 3 * ((d+1)^2 - 1) ``f_rest`` properties (none for d = 0), from whose count
  3DGS readers infer the degree.

The IBR part of the color depends on which training cameras are blended, which a static file
cannot follow: it is frozen at one view (default: the first baked camera). Pure torch/numpy and
plyfile, no nerfstudio import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fourk4d_ns.core.camera import camera_center
from fourk4d_ns.core.heads import SH_C0, directions, sh_basis, sh_coefficients, sh_degree_of
from fourk4d_ns.io.ply import write_ply

from .bake_format import BakedCamera, BakedFrame, BakeManifest
from .baked_renderer import baked_camera_centers, nearest_baked_cameras
from .fused import baked_colors

Tensor = torch.Tensor

FORMATS = ("points", "gaussians")
DENSITY_EPS = 1e-6


def gaussian_properties(sh_degree: int) -> list[str]:
    """Vertex properties of a 3DGS PLY of SH degree ``sh_degree``, in the order its readers expect:
    3 * ((degree + 1)^2 - 1) ``f_rest_j`` (45 for degree 3, none for 0)."""
    rest = sh_coefficients(sh_degree) - 1
    return (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{j}" for j in range(3 * rest)]
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )


def _numpy(x: Tensor, dtype=np.float32) -> np.ndarray:
    return x.detach().cpu().to(torch.float64).numpy().astype(dtype)


def export_point_cloud_ply(path: Path, xyz: Tensor, colors: Tensor, radius: Tensor, density: Tensor) -> Path:
    """A colored point cloud: ``x y z`` (float32), ``red green blue`` (uchar, color * 255
    rounded) and ``radius density`` (float32)."""
    rgb = np.clip(np.rint(_numpy(colors, np.float64) * 255.0), 0, 255).astype(np.uint8)
    xyz_np = _numpy(xyz)
    columns = {"x": xyz_np[:, 0], "y": xyz_np[:, 1], "z": xyz_np[:, 2]}
    columns |= {"red": rgb[:, 0], "green": rgb[:, 1], "blue": rgb[:, 2]}
    columns |= {
        "radius": _numpy(radius.reshape(-1)),
        "density": _numpy(density.reshape(-1)),
    }
    return write_ply(path, columns)


def gaussian_parameters(
    xyz: Tensor,
    colors: Tensor,
    sh: Tensor,
    radius: Tensor,
    density: Tensor,
    center: Tensor,
    sh_weight: float,
) -> dict[str, Tensor]:
    """3DGS parameters (float64): ``f_dc`` [N, 3], ``f_rest`` [N, 3, (d+1)^2 - 1] for ``sh`` of
    degree d, ``opacity`` [N], ``scale`` [N] (log, isotropic). See ``export_gaussian_ply`` for the
    derivation."""
    xyz64, sh64 = xyz.detach().cpu().double(), sh.detach().cpu().double()
    f_rest = sh_weight * sh64[:, :, 1:]
    d0 = directions(xyz64, torch.as_tensor(center).cpu().double())
    rest_at_view = (f_rest * sh_basis(d0, sh_degree_of(sh.shape[-1]))[:, None, 1:]).sum(-1)
    f_dc = (colors.detach().cpu().double() - 0.5 - rest_at_view) / SH_C0
    dens = density.detach().cpu().double().reshape(-1).clamp(DENSITY_EPS, 1 - DENSITY_EPS)
    scale = torch.log(radius.detach().cpu().double().reshape(-1) / math.sqrt(6.0))
    return {
        "f_dc": f_dc,
        "f_rest": f_rest,
        "opacity": torch.logit(dens),
        "scale": scale,
    }


def export_gaussian_ply(
    path: Path,
    xyz: Tensor,
    colors: Tensor,
    sh: Tensor,
    radius: Tensor,
    density: Tensor,
    center: Tensor,
    sh_weight: float,
) -> Path:
    """A 3D Gaussian Splatting PLY of isotropic Gaussians, all properties float32.

    - Shape: a point is a disc kernel 1 - d^2/r^2 of second moment E[d^2] = r^2/3; the Gaussian
      with the same moment has 2 sigma^2 = r^2/3, so ``scale_i = log(r / sqrt(6))``; rotation is
      the identity (``rot_0 = 1``), normals are 0.
    - Opacity: ``logit(clamp(density, 1e-6, 1 - 1e-6))`` (3DGS applies a sigmoid).
    - Color: 3DGS evaluates ``SH(d) . f + 0.5``; the model's is ``c_ibr + w tanh(SH(d) . sh)``
      (clipped). With tanh linearized, the view dependence is kept by ``f_k = w sh_k`` for k >= 1
      (``f_rest_j``, channel-major: j = channel * ((d+1)^2 - 1) + k - 1 for SH degree d, so 45
      properties for d = 3 and none for d = 0), and the IBR part, frozen at the view ``center``,
      goes into the DC term, chosen so that the color at that view is exactly ``colors``:
      ``f_dc = (colors - 0.5 - sum_{k>=1} f_k Y_k(d0)) / SH_C0`` with d0 the unit direction
      center -> point. Elsewhere the error is that of the linearization, plus the change of the
      blended cameras a static file cannot follow.

    Args:
        xyz: [N, 3] positions; colors: [N, 3] the model's color seen from ``center``.
        sh: [N, 3, (d+1)^2] SH coefficients of the color residual (degree d in 0..3);
            radius, density: [N].
        center: [3] camera center of the view the colors were computed for.
        sh_weight: the model's weight w of tanh(SH).
    """
    params = gaussian_parameters(xyz, colors, sh, radius, density, center, sh_weight)
    n = xyz.shape[0]
    xyz_np = _numpy(xyz)
    # [N, 3, R] -> [N, 3 R] (R = 15 for degree 3), channel-major as 3DGS lays f_rest out.
    f_rest = _numpy(params["f_rest"]).reshape(n, 3 * params["f_rest"].shape[-1])
    columns = {"x": xyz_np[:, 0], "y": xyz_np[:, 1], "z": xyz_np[:, 2]}
    columns |= {name: np.zeros(n, np.float32) for name in ("nx", "ny", "nz")}
    columns |= {f"f_dc_{c}": _numpy(params["f_dc"][:, c]) for c in range(3)}
    columns |= {f"f_rest_{j}": f_rest[:, j] for j in range(f_rest.shape[1])}
    columns["opacity"] = _numpy(params["opacity"])
    columns |= {f"scale_{i}": _numpy(params["scale"]) for i in range(3)}
    columns |= {f"rot_{i}": np.full(n, 1.0 if i == 0 else 0.0, np.float32) for i in range(4)}
    assert list(columns) == gaussian_properties(sh_degree_of(sh.shape[-1]))
    return write_ply(path, columns)


def frame_file_stems(names: list[str]) -> list[str]:
    """File stems of the frames' PLY files: their names when distinct plain file names, else ``frame_<index>``."""
    if len(set(names)) == len(names) and all(re.fullmatch(r"[\w-][\w.-]*", n) for n in names):
        return list(names)
    return [f"frame_{index:06d}" for index in range(len(names))]


def find_camera(manifest: BakeManifest, name: str | None) -> BakedCamera:
    """The camera called ``name`` (held-out ones included); None: the first baked camera."""
    return manifest.baked_cameras()[0] if name is None else manifest.camera_named(name)


def view_colors(manifest: BakeManifest, frame: BakedFrame, camera: BakedCamera) -> tuple[Tensor, Tensor]:
    """The colors [N, 3] of the points seen from ``camera`` (its S nearest baked cameras
    blended, as the baked renderer does) and the camera's center [3]."""
    center = camera_center(
        torch.tensor(camera.R, dtype=torch.float32),
        torch.tensor(camera.T, dtype=torch.float32),
    )
    sources = nearest_baked_cameras(manifest, baked_camera_centers(manifest), center)
    colors = baked_colors(frame.xyz, frame.sh, frame.ibr, sources, center, manifest.sh_weight)
    return colors, center


def export_frame(
    manifest: BakeManifest,
    frame: BakedFrame,
    out_dir: Path,
    frame_name: str,
    view_camera: str | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Writes ``<out_dir>/points/<frame_name>.ply`` and/or ``<out_dir>/gaussians/<frame_name>.ply``
    with the colors seen from ``view_camera`` (default: the first baked camera). Returns the
    paths written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be among {FORMATS}, got {list(formats)}")
    if not re.fullmatch(r"[\w.-]+", frame_name) or frame_name.startswith("."):
        raise ValueError(f"frame name {frame_name!r} is not a plain file name")
    camera = find_camera(manifest, view_camera)
    colors, center = view_colors(manifest, frame, camera)
    xyz = frame.xyz.float()
    radius, density = frame.radius.float(), frame.density.float()
    written = []
    if "points" in formats:
        path = Path(out_dir) / "points" / f"{frame_name}.ply"
        written.append(export_point_cloud_ply(path, xyz, colors, radius, density))
    if "gaussians" in formats:
        path = Path(out_dir) / "gaussians" / f"{frame_name}.ply"
        written.append(
            export_gaussian_ply(
                path,
                xyz,
                colors,
                frame.sh,
                radius,
                density,
                center,
                manifest.sh_weight,
            )
        )
    return written
