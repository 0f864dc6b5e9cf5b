"""CPU tests of the point rasterizer: exactness of the compiled index pass against the torch
reference, compositing values and gradients, input validation and extension caching."""

from __future__ import annotations

import math

import pytest
import torch
from scenes import random_scene

from fourk4d_ns.rasterizer import (
    ExtensionBuildError,
    composite,
    front_to_back_weights,
    peel_points,
    validate_inputs,
)
from fourk4d_ns.rasterizer import build as rbuild
from fourk4d_ns.rasterizer.projection import project_discs


@pytest.fixture(scope="module", autouse=True)
def cpu_extension():
    """Builds (first run, about a minute) or loads the CPU extension once for the module."""
    try:
        return rbuild.load_cpu_extension()
    except ExtensionBuildError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"CPU extension unavailable: {exc}")


def assert_backends_equal(xyz, radius, K, R, T, height, width, layers, **kw):
    fast = peel_points(xyz, radius, K, R, T, height, width, layers, backend="cpu", **kw)
    ref = peel_points(xyz, radius, K, R, T, height, width, layers, backend="torch", **kw)
    assert fast.idx.dtype == torch.int32 and fast.depth.dtype == torch.float32
    assert fast.idx.shape == (height, width, layers)
    assert torch.equal(fast.idx, ref.idx), (fast.idx != ref.idx).sum()
    assert torch.equal(fast.depth, ref.depth)
    return fast


@pytest.mark.parametrize("seed", range(12))
def test_cpu_equals_reference_random_scenes(seed):
    sizes = [(24, 32), (37, 53), (16, 16), (41, 17), (1, 9), (33, 48)]
    height, width = sizes[seed % len(sizes)]
    layers = [1, 3, 8, 15, 24][seed % 5]
    n = [40, 300, 700][seed % 3]
    out = assert_backends_equal(*random_scene(seed, n, height, width), height, width, layers)
    # The scenes must exercise something: some coverage, and for small L some full pixels.
    assert (out.idx[..., 0] >= 0).any()


def test_cpu_equals_reference_across_many_tiles():
    # 70 x 90 pixels = 5 x 6 tiles of 16 px; discs from sub-pixel to many tiles wide.
    xyz, radius, K, R, T = random_scene(21, 1500, 70, 90)
    radius = radius * torch.linspace(0.2, 6.0, len(radius))[torch.randperm(len(radius))]
    out = assert_backends_equal(xyz, radius, K, R, T, 70, 90, 10)
    assert (out.idx[..., -1] >= 0).any()


def test_more_covering_points_than_layers_and_sorted():
    xyz, radius, K, R, T = random_scene(3, 800, 20, 30)
    radius = radius * 4 + 0.05  # big discs: many covering points per pixel
    out = assert_backends_equal(xyz, radius, K, R, T, 20, 30, 5)
    assert (out.idx[..., -1] >= 0).float().mean() > 0.5
    filled = out.idx >= 0
    # Slots fill front to back, depths increase, and listed points are distinct.
    assert torch.equal(filled, filled.cummin(dim=-1).values)
    d = out.depth
    assert ((d[..., 1:] >= d[..., :-1]) | ~filled[..., 1:]).all()
    assert (d[filled] >= 0.01).all() and (d[~filled] == -1).all()
    rows = out.idx.view(-1, 5)
    for r in rows[filled.view(-1, 5).all(dim=-1)][:50]:
        assert len(set(r.tolist())) == 5


def test_equal_depth_ties_go_to_smaller_index():
    # All points on the plane z = 2 (R = I): every covering point has the same depth.
    gen = torch.Generator().manual_seed(0)
    n, height, width = 200, 18, 22
    xy = (torch.rand(n, 2, generator=gen) - 0.5) * 1.2
    xyz = torch.cat([xy, torch.full((n, 1), 2.0)], dim=1)
    xyz[100:150] = xyz[:50]  # exact duplicates too
    radius = torch.full((n,), 0.15)
    K = torch.tensor([[20.0, 0, 11], [0, 20.0, 9], [0, 0, 1]])
    R, T = torch.eye(3), torch.zeros(3)
    out = assert_backends_equal(xyz, radius, K, R, T, height, width, 6)
    full = out.idx[out.idx[..., -1] >= 0]
    assert len(full) > 0
    assert (full[:, 1:] > full[:, :-1]).all()  # increasing indices at equal depth


def test_coverage_is_strict_at_the_disc_edge():
    # Disc center (12.5, 3.5), radius 2 px, all exact in float32: the centers of pixels 10 and 14
    # of row 3 lie exactly on the edge and are not covered; 11 to 13 are.
    K = torch.tensor([[8.0, 0, 0], [0, 8.0, 0], [0, 0, 1]])
    xyz = torch.tensor([[1.5625, 0.4375, 1.0]])
    radius = torch.tensor([0.25])
    out = assert_backends_equal(xyz, radius, K, torch.eye(3), torch.zeros(3), 8, 20, 2)
    assert out.idx[3, :, 0].tolist() == [-1] * 11 + [0] * 3 + [-1] * 6
    assert out.idx[:, 12, 0].tolist() == [-1, -1, 0, 0, 0, -1, -1, -1]


def test_empty_images_and_empty_clouds():
    xyz, radius, K, R, T = random_scene(1, 100, 12, 14)
    cam = xyz @ R.T + T
    cam[:, 2] = -cam[:, 2].abs() - 0.1  # everything behind the camera
    behind = (cam - T) @ R
    out = assert_backends_equal(behind, radius, K, R, T, 12, 14, 4)
    assert (out.idx == -1).all() and (out.depth == -1).all()
    far_off = xyz + torch.tensor([100.0, 0.0, 0.0])  # off-screen
    assert_backends_equal(far_off, radius, K, R, T, 12, 14, 4)
    empty = assert_backends_equal(xyz[:0], radius[:0], K, R, T, 12, 14, 4)
    assert (empty.idx == -1).all()


def test_near_plane():
    K = torch.tensor([[10.0, 0, 5], [0, 10.0, 5], [0, 0, 1]])
    xyz = torch.tensor([[0.0, 0.0, 0.5], [0.0, 0.0, 1.0]])
    radius = torch.tensor([0.5, 0.5])
    out = assert_backends_equal(xyz, radius, K, torch.eye(3), torch.zeros(3), 10, 10, 2, near=0.7)
    assert out.idx[5, 5].tolist() == [1, -1]
    out = assert_backends_equal(xyz, radius, K, torch.eye(3), torch.zeros(3), 10, 10, 2, near=0.5)
    assert out.idx[5, 5].tolist() == [0, 1]  # z == near is kept
    with pytest.raises(ValueError, match="near"):
        peel_points(xyz, radius, K, torch.eye(3), torch.zeros(3), 10, 10, 2, near=0.0)


def test_batched_cameras_and_auto_backend():
    xyz, radius, K, R, T = random_scene(5, 300, 20, 24)
    K2, R2, T2 = torch.stack([K, K]), torch.stack([R, torch.eye(3)]), torch.stack([T, T])
    batched = peel_points(xyz, radius, K2, R2, T2, 20, 24, 4)
    for b in range(2):
        single = peel_points(xyz, radius, K2[b], R2[b], T2[b], 20, 24, 4, backend="torch")
        assert torch.equal(batched.idx[b], single.idx)
        assert torch.equal(batched.depth[b], single.depth)


# ---------------------------------------------------------------------------------------------
# Compositing


def tiny_scene(dtype=torch.float64, seed=0, channels=3):
    gen = torch.Generator().manual_seed(seed)
    n, height, width = 10, 5, 6
    xyz = torch.rand(n, 3, generator=gen, dtype=dtype) * torch.tensor([1.2, 1.0, 0.6], dtype=dtype)
    xyz = xyz + torch.tensor([-0.6, -0.5, 2.0], dtype=dtype)
    radius = 0.25 + 0.2 * torch.rand(n, generator=gen, dtype=dtype)
    density = 0.2 + 0.6 * torch.rand(n, generator=gen, dtype=dtype)
    colors = torch.rand(n, channels, generator=gen, dtype=dtype)
    K = torch.tensor([[6.0, 0, 3.1], [0, 5.5, 2.4], [0, 0, 1]], dtype=dtype)
    R, T = torch.eye(3, dtype=dtype), torch.zeros(3, dtype=dtype)
    return xyz, radius, density, colors, K, R, T, height, width


def slot_raw_alpha(idx, xyz, radius, density, K, R, T):
    """sigma * (1 - d^2 / rho^2) per slot (unclipped), NaN for empty slots."""
    u, v, _, rho = project_discs(xyz, radius, K, R, T)
    h, w, _ = idx.shape
    px = torch.arange(w, dtype=xyz.dtype)[None, :, None] + 0.5
    py = torch.arange(h, dtype=xyz.dtype)[:, None, None] + 0.5
    i = idx.clamp(min=0).long()
    d2 = (px - u[i]) ** 2 + (py - v[i]) ** 2
    raw = density[i] * (1 - d2 / rho[i] ** 2)
    return torch.where(idx >= 0, raw, torch.nan)


def kink_free_indices(xyz, radius, density, K, R, T, height, width, layers):
    """Index pass, then drop slots whose alpha is near a clip kink (0 or 1), so that the indices
    and the clip branch stay fixed under gradcheck's perturbations."""
    idx = peel_points(xyz.float(), radius.float(), K.float(), R.float(), T.float(), height, width, layers).idx
    raw = slot_raw_alpha(idx, xyz, radius, density, K, R, T)
    keep = (raw > 0.03) & (raw < 0.97)
    idx = torch.where(keep, idx, -1)
    assert (idx >= 0).sum() >= 10
    return idx


def reference_composite(idx, xyz, radius, density, colors, K, R, T, background=None):
    """Straightforward per-pixel loop in float64 Python arithmetic."""
    h, w, layers = idx.shape
    fx, fy, cx, cy = K[0, 0].item(), K[1, 1].item(), K[0, 2].item(), K[1, 2].item()
    cam = xyz.double() @ R.double().T + T.double()
    c = colors.shape[1]
    rgb = torch.zeros(h, w, c, dtype=torch.float64)
    acc = torch.zeros(h, w, 1, dtype=torch.float64)
    depth = torch.zeros(h, w, 1, dtype=torch.float64)
    for y in range(h):
        for x in range(w):
            trans = 1.0
            for k in range(layers):
                i = int(idx[y, x, k])
                if i < 0:
                    continue
                xc, yc, zc = cam[i].tolist()
                u, v = fx * xc / zc + cx, fy * yc / zc + cy
                rho = fy * float(radius[i]) / zc
                d2 = (x + 0.5 - u) ** 2 + (y + 0.5 - v) ** 2
                alpha = min(max(float(density[i]) * (1 - d2 / rho**2), 0.0), 1.0)
                weight = trans * alpha
                rgb[y, x] += weight * colors[i].double()
                acc[y, x] += weight
                depth[y, x] += weight * zc
                trans *= 1 - alpha
            if background is not None:
                rgb[y, x] += (1 - acc[y, x]) * background.double()
    return rgb, acc, depth


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_composite_matches_python_loop(dtype):
    xyz, radius, density, colors, K, R, T, h, w = tiny_scene(dtype, seed=1, channels=4)
    density = density * 2.5  # some alphas clip at 1
    idx = peel_points(xyz.float(), radius.float(), K.float(), R.float(), T.float(), h, w, 5).idx
    assert (idx[..., 1] >= 0).any()
    out = composite(idx, xyz, radius, density, colors, K, R, T)
    rgb, acc, depth = reference_composite(idx, xyz, radius, density, colors, K, R, T)
    tol = {"atol": 1e-5, "rtol": 1e-5}
    if dtype == torch.float64:
        tol = {"atol": 1e-12, "rtol": 1e-12}
    assert out.rgb.dtype == dtype and out.rgb.shape == (h, w, 4)
    torch.testing.assert_close(out.rgb.double(), rgb, **tol)
    torch.testing.assert_close(out.accumulation.double(), acc, **tol)
    torch.testing.assert_close(out.depth.double(), depth, **tol)


def test_background_mixing():
    xyz, radius, density, colors, K, R, T, h, w = tiny_scene()
    idx = peel_points(xyz.float(), radius.float(), K.float(), R.float(), T.float(), h, w, 4).idx
    background = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    plain = composite(idx, xyz, radius, density, colors, K, R, T)
    mixed = composite(idx, xyz, radius, density, colors, K, R, T, background=background)
    torch.testing.assert_close(mixed.rgb, plain.rgb + (1 - plain.accumulation) * background)
    torch.testing.assert_close(mixed.accumulation, plain.accumulation)
    ref_rgb, _, _ = reference_composite(idx, xyz, radius, density, colors, K, R, T, background)
    torch.testing.assert_close(mixed.rgb, ref_rgb)
    # Pixels no point covers show the background.
    empty = (idx == -1).all(dim=-1)
    assert empty.any()
    torch.testing.assert_close(mixed.rgb[empty], background.expand(int(empty.sum()), 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_composite_gradcheck(seed):
    xyz, radius, density, colors, K, R, T, h, w = tiny_scene(torch.float64, seed)
    if seed == 2:  # a rotated, translated camera
        angle = 0.3
        R = torch.tensor(
            [[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]],
            dtype=torch.float64,
        )
        T = torch.tensor([0.1, -0.05, 0.2], dtype=torch.float64)
        xyz = (xyz - T) @ R  # same camera-space cloud, now through a non-trivial pose
    idx = kink_free_indices(xyz, radius, density, K, R, T, h, w, 4)
    background = torch.tensor([0.3, 0.1, 0.7], dtype=torch.float64)

    def fn(xyz_, radius_, density_, colors_):
        out = composite(idx, xyz_, radius_, density_, colors_, K, R, T, background=background)
        return out.rgb, out.accumulation, out.depth

    inputs = [t.clone().requires_grad_(True) for t in (xyz, radius, density, colors)]
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_composite_gradients_reach_every_input_batched():
    xyz, radius, density, colors, K, R, T, h, w = tiny_scene(torch.float64)
    idx = kink_free_indices(xyz, radius, density, K, R, T, h, w, 4)
    K2, R2, T2 = torch.stack([K, K]), torch.stack([R, R]), torch.stack([T, T + 0.01])
    idx2 = torch.stack([idx, idx])
    colors2 = torch.stack([colors, colors.flip(0)])  # per-camera colors [B, N, C]
    inputs = [t.clone().requires_grad_(True) for t in (xyz, radius, density, colors2)]
    out = composite(idx2, *inputs, K2, R2, T2)
    assert out.rgb.shape == (2, h, w, 3)
    single = composite(idx, xyz, radius, density, colors, K, R, T)
    torch.testing.assert_close(out.rgb[0], single.rgb)
    (out.rgb.sum() + out.depth.sum() + out.accumulation.sum()).backward()
    for t in inputs:
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    assert torch.autograd.gradcheck(
        lambda *a: composite(idx2, *a, K2, R2, T2).rgb, inputs, eps=1e-6, atol=1e-6, rtol=1e-5
    )


def test_front_to_back_weights_with_alpha_one():
    gen = torch.Generator().manual_seed(0)
    alpha = torch.rand(64, 7, generator=gen, dtype=torch.float64)
    alpha[::3, 2] = 1.0
    alpha[::5, 0] = 1.0
    alpha[::4, 4] = 0.0
    a1 = alpha.clone().requires_grad_(True)
    a2 = alpha.clone().requires_grad_(True)
    weights = front_to_back_weights(a1)
    # Naive loop: obviously right, and autograd of plain products is exact at alpha = 1.
    trans, naive = torch.ones(64, dtype=torch.float64), []
    for k in range(7):
        naive.append(trans * a2[:, k])
        trans = trans * (1 - a2[:, k])
    naive = torch.stack(naive, dim=-1)
    torch.testing.assert_close(weights, naive)
    g = torch.randn(64, 7, generator=gen, dtype=torch.float64)
    (weights * g).sum().backward()
    (naive * g).sum().backward()
    torch.testing.assert_close(a1.grad, a2.grad)
    assert torch.autograd.gradcheck(front_to_back_weights, (alpha.clone().requires_grad_(True),))


def test_no_nan_gradients_from_undrawable_points():
    xyz, radius, density, colors, K, R, T, h, w = tiny_scene(torch.float32)
    xyz = torch.cat([xyz, torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.2, -1.0]])])  # z = 0 and behind
    radius = torch.cat([radius, torch.tensor([0.1, 0.1])])
    radius[0] = 0.0  # zero radius
    density = torch.cat([density, torch.ones(2)])
    colors = torch.cat([colors, torch.ones(2, 3)])
    idx = peel_points(xyz, radius, K, R, T, h, w, 4).idx
    inputs = [t.clone().requires_grad_(True) for t in (xyz, radius, density, colors)]
    out = composite(idx, *inputs, K, R, T)
    (out.rgb.sum() + out.depth.sum()).backward()
    for t in inputs:
        assert torch.isfinite(t.grad).all()


# ---------------------------------------------------------------------------------------------
# Validation, backend selection and caching


@pytest.mark.parametrize("name", ["xyz", "radius", "K", "R", "T", "density", "colors"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs_are_rejected(name, bad):
    xyz, radius, density, colors, K, R, T, h, w = tiny_scene(torch.float32)
    args = {"xyz": xyz, "radius": radius, "density": density, "colors": colors, "K": K, "R": R, "T": T}
    args[name] = args[name].clone()
    args[name].view(-1)[1] = bad
    with pytest.raises(ValueError, match=rf"^{name} contains 1 non-finite"):
        validate_inputs(**args)
    idx = torch.zeros(h, w, 2, dtype=torch.int32)
    cameras = args["K"], args["R"], args["T"]
    with pytest.raises(ValueError, match=name):
        composite(idx, args["xyz"], args["radius"], args["density"], args["colors"], *cameras, validate=True)
    if name not in ("density", "colors"):
        for backend in ("cpu", "torch"):
            with pytest.raises(ValueError, match=name):
                peel_points(args["xyz"], args["radius"], *cameras, h, w, 2, backend=backend, validate=True)


def test_value_checks_are_off_the_hot_path_unless_asked_for(monkeypatch):
    """By default only shapes are checked (no device sync); FOURK4D_DEBUG=1 turns the value checks on."""
    xyz, radius, density, colors, K, R, T, h, w = tiny_scene(torch.float32)
    xyz = xyz.clone()
    xyz[3] = float("nan")
    idx = torch.zeros(h, w, 2, dtype=torch.int32)
    monkeypatch.delenv("FOURK4D_DEBUG", raising=False)
    peel = peel_points(xyz, radius, K, R, T, h, w, 2, backend="cpu")
    assert not (peel.idx == 3).any()  # a NaN point is never drawn
    composite(idx, xyz, radius, density, colors, K, R, T)
    with pytest.raises(ValueError, match="xyz must be"):
        peel_points(xyz[:, :2], radius, K, R, T, h, w, 2)  # shapes are checked all the same
    monkeypatch.setenv("FOURK4D_DEBUG", "1")
    with pytest.raises(ValueError, match="xyz contains 3 non-finite"):
        peel_points(xyz, radius, K, R, T, h, w, 2, backend="cpu")
    with pytest.raises(ValueError, match="idx refers to point 10"):
        composite(idx + 10, xyz.nan_to_num(), radius, density, colors, K, R, T)
    peel_points(xyz, radius, K, R, T, h, w, 2, backend="cpu", validate=False)  # an explicit False wins


def test_wrong_shapes_are_rejected():
    xyz, radius, density, colors, K, R, T, h, w = tiny_scene(torch.float32)
    with pytest.raises(ValueError, match="xyz"):
        peel_points(xyz[:, :2], radius, K, R, T, h, w, 2)
    with pytest.raises(ValueError, match="radius"):
        peel_points(xyz, radius[:-1], K, R, T, h, w, 2)
    with pytest.raises(ValueError, match="cameras"):
        peel_points(xyz, radius, K[:2], R, T, h, w, 2)
    with pytest.raises(ValueError, match="layers"):
        peel_points(xyz, radius, K, R, T, h, w, 0)
    with pytest.raises(ValueError, match="backend"):
        peel_points(xyz, radius, K, R, T, h, w, 2, backend="opengl")
    idx = torch.zeros(h, w, 2, dtype=torch.int32)
    with pytest.raises(ValueError, match="colors"):
        composite(idx, xyz, radius, density, colors[:-1], K, R, T)
    with pytest.raises(ValueError, match="density"):
        composite(idx, xyz, radius, density[:-1], colors, K, R, T)
    with pytest.raises(ValueError, match="idx"):
        composite(idx.float(), xyz, radius, density, colors, K, R, T)
    with pytest.raises(ValueError, match="idx refers to point 10 but xyz has only 10 points"):
        composite(idx + 10, xyz, radius, density, colors, K, R, T, validate=True)
    # A [N, 1] radius and density are accepted.
    peel_points(xyz, radius[:, None], K, R, T, h, w, 2)
    composite(idx, xyz, radius[:, None], density[:, None], colors, K, R, T)


def test_failed_cpu_build_is_reported_not_hidden(monkeypatch):
    xyz, radius, _, _, K, R, T, h, w = tiny_scene(torch.float32)
    failure = ExtensionBuildError("could not build the cpu rasterizer extension: no compiler")
    monkeypatch.setitem(rbuild._loaded, "cpu", failure)
    with pytest.raises(ExtensionBuildError, match="backend='torch'"):
        peel_points(xyz, radius, K, R, T, h, w, 2)  # auto on CPU: no silent fallback
    with pytest.raises(ExtensionBuildError, match="no compiler"):
        peel_points(xyz, radius, K, R, T, h, w, 2, backend="cpu")
    peel_points(xyz, radius, K, R, T, h, w, 2, backend="torch")  # the explicit way still works


def test_extension_name_tracks_every_source(tmp_path, monkeypatch):
    for path in rbuild.CSRC.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(rbuild, "CSRC", tmp_path)
    cpu, cuda = rbuild._source_hash(["peel_cpu.cpp"], []), rbuild._source_hash(["peel_cuda.cu"], [])
    header = tmp_path / "peel_common.h"
    header.write_text(header.read_text() + "\n// edited\n")
    # A header edit renames (hence rebuilds) both modules; a .cpp edit only the CPU one.
    assert rbuild._source_hash(["peel_cpu.cpp"], []) != cpu
    assert rbuild._source_hash(["peel_cuda.cu"], []) != cuda
    cuda = rbuild._source_hash(["peel_cuda.cu"], [])
    source = tmp_path / "peel_cpu.cpp"
    source.write_text(source.read_text() + "\n// edited\n")
    assert rbuild._source_hash(["peel_cuda.cu"], []) == cuda
    assert rbuild._source_hash([], ["-O2"]) != rbuild._source_hash([], ["-O3"])


def test_cpu_backend_uses_openmp_threads(cpu_extension):
    assert cpu_extension.omp_threads() == max(1, torch.get_num_threads())
