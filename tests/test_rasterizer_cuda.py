"""CUDA backend of the point rasterizer: it compiles wherever nvcc exists (slow), and on a GPU it
equals the CPU backend bit for bit and gives the same compositing gradients (gpu). The loader's
logic without a compiler is tested in test_extension_build.py."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import cuda_toolchain_missing
from scenes import random_scene
from test_rasterizer import kink_free_indices, tiny_scene

from fourk4d_ns.rasterizer import ExtensionBuildError, composite, peel_points
from fourk4d_ns.rasterizer import build as rbuild

needs_toolchain = pytest.mark.skipif(
    bool(cuda_toolchain_missing()), reason=cuda_toolchain_missing() or "toolchain present"
)
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.slow
@needs_toolchain
def test_cuda_extension_builds(cuda_extension):
    """Compiles the extension and imports it, which needs no GPU (nor a driver); the host compiler
    flags reach nvcc."""
    assert hasattr(cuda_extension, "peel_points")
    assert hasattr(cuda_extension, "render_baked")
    ninja = (rbuild.build_directory(cuda_extension.__name__) / "build.ninja").read_text()
    assert "--fmad=false" in ninja and "-Xcompiler=-ffp-contract=off" in ninja


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("seed", range(8))
def test_cuda_equals_cpu_exactly(cuda_extension, seed):
    sizes = [(24, 32), (37, 53), (16, 16), (41, 17), (1, 9), (70, 45)]
    height, width = sizes[seed % len(sizes)]
    layers = [1, 3, 8, 15, 24][seed % 5]
    n = [40, 300, 3000][seed % 3]
    scene = random_scene(seed, n, height, width)
    cpu = peel_points(*scene, height, width, layers, backend="cpu")
    gpu = peel_points(*(t.cuda() for t in scene), height, width, layers, backend="cuda")
    assert gpu.idx.is_cuda
    assert torch.equal(gpu.idx.cpu(), cpu.idx)
    assert torch.equal(gpu.depth.cpu(), cpu.depth)


@pytest.mark.gpu
@needs_gpu
def test_cuda_equals_cpu_on_a_dense_cloud(cuda_extension):
    gen = torch.Generator().manual_seed(0)
    n, height, width = 50_000, 180, 320
    d = torch.randn(n, 3, generator=gen)
    xyz = d / d.norm(dim=1, keepdim=True) * torch.tensor([0.5, 0.8, 0.4])  # ellipsoid surface
    radius = 0.004 + 0.01 * torch.rand(n, generator=gen)
    K = torch.tensor([[300.0, 0, 160], [0, 300.0, 90], [0, 0, 1]])
    R, T = torch.eye(3), torch.tensor([0.0, 0.0, 3.0])
    for layers in (1, 15):
        cpu = peel_points(xyz, radius, K, R, T, height, width, layers, backend="cpu")
        gpu = peel_points(
            xyz.cuda(), radius.cuda(), K.cuda(), R.cuda(), T.cuda(), height, width, layers
        )  # auto picks cuda for CUDA tensors
        assert torch.equal(gpu.idx.cpu(), cpu.idx)
        assert torch.equal(gpu.depth.cpu(), cpu.depth)
        assert (cpu.idx[..., -1] >= 0).any()


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_compositing_gradients_match_cpu(cuda_extension, dtype):
    xyz, radius, density, colors, K, R, T, h, w = tiny_scene(torch.float64, seed=3)
    idx = kink_free_indices(xyz, radius, density, K, R, T, h, w, 4)
    background = torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        inputs = [t.to(device, dtype).requires_grad_(True) for t in (xyz, radius, density, colors)]
        cams = [t.to(device, dtype) for t in (K, R, T)]
        out = composite(idx.to(device), *inputs, *cams, background=background.to(device))
        (out.rgb.square().sum() + out.depth.sum() + out.accumulation.sum()).backward()
        results.append([out.rgb, out.depth] + [t.grad for t in inputs])
    tol = {"atol": 1e-5, "rtol": 1e-4}
    if dtype == torch.float64:
        tol = {"atol": 1e-10, "rtol": 1e-9}
    for a, b in zip(*results):
        torch.testing.assert_close(b.cpu(), a, **tol)


def count_host_syncs(fn) -> int:
    """How many synchronizing CUDA operations torch reports while ``fn()`` runs."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(w.message) for w in caught)


@pytest.mark.gpu
@needs_gpu
def test_one_host_sync_per_frame(cuda_extension):
    """With the camera on the host, the index pass and the fused renderer each wait for the GPU once:
    for the number of (tile, point) pairs that sizes the sort."""
    from fourk4d_ns.playback.fused import render_baked_points

    height, width, n = 37, 53, 3000
    xyz, radius, K, R, T = random_scene(0, n, height, width)
    xyz, radius = xyz.cuda(), radius.cuda()
    gen = torch.Generator().manual_seed(0)
    density, sh, ibr = (torch.rand(*shape, generator=gen).cuda() for shape in ([n], [n, 3, 16], [4, n, 4]))

    def peel():
        return peel_points(xyz, radius, K, R, T, height, width, 4)

    def render():
        return render_baked_points(xyz, radius, density, sh, ibr, [0, 2], K, R, T, height, width, 4)

    for fn in (peel, render):
        fn()  # warm-up: lazy module loading, the caching allocator
        assert count_host_syncs(fn) == 1


def test_cuda_backend_rejects_cpu_tensors():
    xyz, radius, K, R, T = random_scene(0, 50, 8, 8)
    with pytest.raises(ValueError, match="CUDA tensors"):
        peel_points(xyz, radius, K, R, T, 8, 8, 2, backend="cuda")


def test_cuda_build_failure_is_explained(monkeypatch):
    failure = ExtensionBuildError("could not build the cuda rasterizer extension: no nvcc")
    monkeypatch.setitem(rbuild._loaded, "cuda", failure)
    with pytest.raises(ExtensionBuildError, match="no nvcc"):
        rbuild.load_cuda_extension()
