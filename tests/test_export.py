"""PLY export of baked frames (points and 3DGS) and the fourk4d-export command."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from plyfile import PlyData

from fourk4d_ns.cli.export import ExportCommand
from fourk4d_ns.core.heads import sh_basis
from fourk4d_ns.playback.bake_format import (
    BakedCamera,
    BakedFrame,
    BakeError,
    BakeManifest,
    read_frame,
    read_manifest,
    write_bake,
)
from fourk4d_ns.playback.export import export_frame, export_gaussian_ply
from fourk4d_ns.playback.fused import baked_colors

N = 300
SH_WEIGHT = 0.25
NUM_SOURCES = 2
ROOT = Path(__file__).resolve().parents[1]


def look_at(eye: np.ndarray) -> tuple[list, list]:
    """OpenCV (R, T) of a camera at ``eye`` looking at the origin, z up in the world."""
    z = -eye / np.linalg.norm(eye)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return R.tolist(), (-R @ eye).tolist()


def camera(name: str, angle: float, baked: bool) -> BakedCamera:
    R, T = look_at(np.array([3 * math.cos(angle), 3 * math.sin(angle), 0.5]))
    K = [[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]]
    return BakedCamera(name=name, K=K, R=R, T=T, height=48, width=64, baked=baked)


def random_frame(gen: torch.Generator, cameras: int) -> BakedFrame:
    rgb = 0.3 + 0.4 * torch.rand(cameras, N, 3, generator=gen)
    logit = torch.randn(cameras, N, 1, generator=gen)
    return BakedFrame(
        xyz=torch.rand(N, 3, generator=gen) - 0.5,
        radius=0.005 + 0.03 * torch.rand(N, generator=gen),
        density=0.05 + 0.9 * torch.rand(N, generator=gen),
        sh=0.3 * torch.randn(N, 3, 16, generator=gen),
        ibr=torch.cat([rgb, logit], dim=-1),
    )


@pytest.fixture(scope="module")
def bake_of_degree(tmp_path_factory):
    """The bake of SH degree d (written once per degree): the same frames, with the first (d+1)^2
    SH coefficients."""
    bakes: dict[int, Path] = {}

    def bake(sh_degree: int) -> Path:
        if sh_degree not in bakes:
            angles = [0.0, 0.5, 1.2, 2.5, 4.0]
            # The held-out camera "cam_h" sits between baked cameras 2 and 3 (angles 1.2 and 2.5).
            cameras = [camera(f"cam_{i}", a, True) for i, a in enumerate(angles)]
            cameras.insert(3, camera("cam_h", 1.7, False))
            manifest = BakeManifest(
                frame_names=["000000", "000001"],
                cameras=cameras,
                bounds=[[-0.5] * 3, [0.5] * 3],
                sh_weight=SH_WEIGHT,
                sh_degree=sh_degree,
                layers=4,
                near=0.01,
                num_sources=NUM_SOURCES,
                fps=30.0,
            )
            gen = torch.Generator().manual_seed(0)
            frames = [random_frame(gen, len(angles)) for _ in range(2)]
            count = (sh_degree + 1) ** 2
            frames = [dataclasses.replace(f, sh=f.sh[..., :count].contiguous()) for f in frames]
            folder = tmp_path_factory.mktemp("export") / "run" / "bake"
            bakes[sh_degree] = write_bake(folder, manifest, frames)
        return bakes[sh_degree]

    return bake


@pytest.fixture(scope="module")
def bake(bake_of_degree) -> Path:
    return bake_of_degree(3)


def center_of(cam: BakedCamera) -> torch.Tensor:
    R, T = np.array(cam.R), np.array(cam.T)
    return torch.tensor(-R.T @ T, dtype=torch.float32)


def expected_colors(manifest: BakeManifest, frame: BakedFrame, name: str):
    """The model's colors from camera ``name``, sources picked by brute force."""
    cam = next(c for c in manifest.cameras if c.name == name)
    center = center_of(cam)
    centers = torch.stack([center_of(c) for c in manifest.baked_cameras()])
    distance = (centers - center).norm(dim=-1).numpy()
    sources = np.argsort(distance, kind="stable")[:NUM_SOURCES].tolist()
    colors = baked_colors(frame.xyz, frame.sh, frame.ibr, sources, center, SH_WEIGHT)
    return colors, center


def gs_degree(vertex) -> int:
    """The SH degree of a 3DGS PLY as its readers infer it: from the number of f_rest properties."""
    rest = sum(name.startswith("f_rest_") for name in vertex.dtype.names)
    assert rest % 3 == 0
    degree = math.isqrt(rest // 3 + 1) - 1
    assert (degree + 1) ** 2 == rest // 3 + 1
    return degree


def gs_color(vertex, at: torch.Tensor) -> torch.Tensor:
    """3DGS color SH(d) . f + 0.5 of the vertices seen from center ``at``."""
    xyz = torch.tensor(np.stack([vertex[a] for a in "xyz"], -1), dtype=torch.float64)
    f = gs_coefficients(vertex)
    dirs = torch.nn.functional.normalize(xyz - at.double(), dim=-1)
    return (f * sh_basis(dirs, gs_degree(vertex))[:, None, :]).sum(-1) + 0.5


def gs_coefficients(vertex) -> torch.Tensor:
    """[N, 3, (d+1)^2] coefficients: f_dc, then f_rest channel-major."""
    rest = (gs_degree(vertex) + 1) ** 2 - 1
    dc = np.stack([vertex[f"f_dc_{c}"] for c in range(3)], -1)
    columns = [vertex[f"f_rest_{j}"] for j in range(3 * rest)]
    f_rest = (np.stack(columns, -1) if columns else np.zeros((len(vertex), 0))).reshape(len(vertex), 3, rest)
    return torch.tensor(np.concatenate([dc[:, :, None], f_rest], -1), dtype=torch.float64)


def load(bake: Path, f: int = 0):
    manifest = read_manifest(bake)
    return manifest, read_frame(bake, manifest, f)


def test_point_cloud_ply(bake, tmp_path):
    manifest, frame = load(bake)
    paths = export_frame(manifest, frame, tmp_path, "000000", formats=("points",))
    assert paths == [tmp_path / "points" / "000000.ply"]
    ply = PlyData.read(str(paths[0]))
    assert not ply.text and ply.byte_order == "<"
    vertex = ply["vertex"].data
    names = ["x", "y", "z", "red", "green", "blue", "radius", "density"]
    assert list(vertex.dtype.names) == names and len(vertex) == N
    types = ["<f4"] * 3 + ["|u1"] * 3 + ["<f4"] * 2
    assert [vertex.dtype[n].str for n in names] == types
    xyz = np.stack([vertex[a] for a in "xyz"], -1)
    np.testing.assert_array_equal(xyz, frame.xyz.float().numpy())
    np.testing.assert_array_equal(vertex["radius"], frame.radius.float().numpy())
    np.testing.assert_array_equal(vertex["density"], frame.density.float().numpy())
    colors, _ = expected_colors(manifest, frame, "cam_0")
    rgb = np.stack([vertex[c] for c in ("red", "green", "blue")], -1) / 255.0
    # Rounded: within half a level (the brief's bound is 1/255).
    assert np.abs(rgb - colors.numpy()).max() <= 0.5 / 255 + 1e-5


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_gaussian_ply(bake_of_degree, tmp_path, sh_degree):
    manifest, frame = load(bake_of_degree(sh_degree), 1)
    assert manifest.sh_degree == sh_degree and frame.sh.shape == (N, 3, (sh_degree + 1) ** 2)
    export_frame(manifest, frame, tmp_path, "000001", view_camera="cam_h", formats=("gaussians",))
    assert not (tmp_path / "points").exists()
    ply = PlyData.read(str(tmp_path / "gaussians" / "000001.ply"))
    assert not ply.text and ply.byte_order == "<"
    vertex = ply["vertex"].data
    # 3 * ((d+1)^2 - 1) f_rest properties: 45, 24, 9 and none.
    rest = [f"f_rest_{j}" for j in range(3 * ((sh_degree + 1) ** 2 - 1))]
    expected = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + rest
    expected += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    assert list(vertex.dtype.names) == expected
    assert len(expected) == {0: 17, 1: 26, 2: 41, 3: 62}[sh_degree] and gs_degree(vertex) == sh_degree
    assert all(vertex.dtype[n].str == "<f4" for n in expected) and len(vertex) == N
    radius, density = frame.radius.double().numpy(), frame.density.double().numpy()
    for i in range(3):
        np.testing.assert_allclose(vertex[f"scale_{i}"], np.log(radius / np.sqrt(6)), rtol=1e-6)
        assert not vertex[f"n{'xyz'[i]}"].any()
    np.testing.assert_allclose(1 / (1 + np.exp(-vertex["opacity"])), density, atol=1e-6)
    rot = np.stack([vertex[f"rot_{i}"] for i in range(4)], -1)
    np.testing.assert_array_equal(rot, np.tile([1.0, 0, 0, 0], (N, 1)))
    f = gs_coefficients(vertex)
    torch.testing.assert_close(f[:, :, 1:], SH_WEIGHT * frame.sh[:, :, 1:].double(), rtol=1e-6, atol=1e-7)
    colors, center = expected_colors(manifest, frame, "cam_h")
    assert (gs_color(vertex, center) - colors.double()).abs().max() < 1e-4
    # The held-out view blends other cameras than cam_0's view.
    other, _ = expected_colors(manifest, frame, "cam_0")
    assert (other - colors).abs().max() > 0.05


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_gaussian_view_dependence_first_order(bake_of_degree, tmp_path, sh_degree):
    """Away from the export view, the 3DGS color follows the model's SH term to first order."""
    manifest, frame = load(bake_of_degree(sh_degree))
    sh = frame.sh.float() * 0.2
    cams = {c.name: c for c in manifest.cameras}
    view, away = center_of(cams["cam_1"]), center_of(cams["cam_3"])
    sources = [1, 0]
    colors = baked_colors(frame.xyz, sh, frame.ibr, sources, view, SH_WEIGHT)
    path = export_gaussian_ply(
        tmp_path / "g.ply",
        frame.xyz.float(),
        colors,
        sh,
        frame.radius.float(),
        frame.density.float(),
        view,
        SH_WEIGHT,
    )
    vertex = PlyData.read(str(path))["vertex"].data
    assert (gs_color(vertex, view) - colors.double()).abs().max() < 1e-4
    model_away = baked_colors(frame.xyz, sh, frame.ibr, sources, away, SH_WEIGHT).double()
    error = (gs_color(vertex, away) - model_away).abs()
    change = (colors.double() - model_away).abs()
    if sh_degree == 0:  # no view dependence: the file's color is the model's everywhere
        assert error.max() < 1e-4 and change.max() < 1e-6
        return
    assert error.max() < 0.05
    # The view dependence is kept, not frozen at the export view.
    assert error.mean() < 0.25 * change.mean()


def test_unknown_view_and_format(bake, tmp_path):
    manifest, frame = load(bake)
    with pytest.raises(ValueError, match="cam_h"):
        export_frame(manifest, frame, tmp_path, "000000", view_camera="nope")
    with pytest.raises(ValueError, match="formats"):
        export_frame(manifest, frame, tmp_path, "000000", formats=("mesh",))
    with pytest.raises(ValueError, match="nope"):
        ExportCommand(bake=bake, output=tmp_path, view="nope").main()
    assert not any(tmp_path.iterdir())


def test_cli_end_to_end(bake, tmp_path):
    written = ExportCommand(bake=bake, frames=(1,), view="cam_2", verify="size").main()
    out = bake.parent / "export"
    assert sorted(written) == [
        out / "gaussians" / "000001.ply",
        out / "points" / "000001.ply",
    ]
    assert sorted(p.name for p in out.rglob("*.ply")) == ["000001.ply", "000001.ply"]
    written = ExportCommand(load_config=bake.parent / "config.yml", output=tmp_path, format="points").main()
    assert sorted(written) == [tmp_path / "points" / f"00000{i}.ply" for i in range(2)]
    with pytest.raises(ValueError, match="out of range"):
        ExportCommand(bake=bake, output=tmp_path, frames=(2,)).main()


def test_cli_missing_bake(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("")
    with pytest.raises(BakeError, match=f"run fourk4d-bake --load-config {config} first"):
        ExportCommand(load_config=config).main()
    result = subprocess.run(
        [sys.executable, "-m", "fourk4d_ns.cli.export", "--load-config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert "run fourk4d-bake --load-config" in result.stderr and "Traceback" not in result.stderr
