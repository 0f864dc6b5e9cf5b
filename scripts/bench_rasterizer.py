"""Benchmark of the point rasterizer: index pass and index + compositing (forward and backward).

Scene: points on the surface of a union of ellipsoids shaped like a stocky figure (1.7 m tall,
1.4 m wide), seen from 3 m with a focal length that makes it fill 90 % of the image height.
World radii are chosen per resolution so that discs span 1 to 4 pixels in diameter at the
subject's distance (``--disc-px``). Timings are medians over ``--repeats`` runs after
``--warmup`` runs; CUDA runs are synchronised. Only torch, numpy and fourk4d_ns.rasterizer are
imported.

    python scripts/bench_rasterizer.py                 # table
    python scripts/bench_rasterizer.py --json          # JSON only
    python scripts/bench_rasterizer.py --points 262144 --sizes 512x512 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_common import cpu_name, ellipsoid_area, load_average, parse_size, time_calls

from fourk4d_ns.rasterizer import build, composite, peel_points

# A stocky figure: body, head and arms as overlapping ellipsoids, (center xyz, semi-axes) in
# metres; y is up, feet at y = 0, 1.7 m tall, 1.4 m wide. It covers about half of a square image
# and a quarter of a 16:9 one.
BODY_PARTS = [
    ((0.00, 0.75, 0.0), (0.50, 0.75, 0.35)),  # body
    ((0.00, 1.50, 0.0), (0.20, 0.20, 0.20)),  # head
    ((-0.55, 0.90, 0.0), (0.15, 0.50, 0.15)),  # arms
    ((0.55, 0.90, 0.0), (0.15, 0.50, 0.15)),
]
HEIGHT_M = 1.7
DISTANCE_M = 3.0


def make_cloud(n: int, seed: int = 0) -> np.ndarray:
    """[n, 3] points on the ellipsoid surfaces, allotted by surface area."""
    rng = np.random.default_rng(seed)
    areas = np.array([ellipsoid_area(axes) for _, axes in BODY_PARTS])
    counts = rng.multinomial(n, areas / areas.sum())
    chunks = []
    for (center, axes), count in zip(BODY_PARTS, counts):
        d = rng.normal(size=(count, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        chunks.append(d * np.array(axes) + np.array(center))
    return np.concatenate(chunks).astype(np.float32)


def make_camera(height: int, width: int):
    """Camera 3 m in front of the figure, looking at its middle; OpenCV convention."""
    fy = 0.9 * height * DISTANCE_M / HEIGHT_M
    K = torch.tensor([[fy, 0, width / 2], [0, fy, height / 2], [0, 0, 1]], dtype=torch.float32)
    # World y is up, camera y is down; the camera looks along world -z from z = +3.
    R = torch.tensor([[1, 0, 0], [0, -1, 0], [0, 0, -1]], dtype=torch.float32)
    T = -R @ torch.tensor([0.0, HEIGHT_M / 2, DISTANCE_M])
    return K, R, T


def make_scene(n: int, height: int, width: int, disc_px: tuple[float, float], device: str):
    xyz = torch.from_numpy(make_cloud(n))
    K, R, T = make_camera(height, width)
    gen = torch.Generator().manual_seed(1)
    rho = disc_px[0] / 2 + torch.rand(n, generator=gen) * (disc_px[1] - disc_px[0]) / 2
    radius = rho * DISTANCE_M / K[1, 1]  # pixel radius at the subject's distance
    density = 0.3 + 0.6 * torch.rand(n, generator=gen)
    colors = torch.rand(n, 3, generator=gen)
    return [t.to(device) for t in (xyz, radius, density, colors, K, R, T)]


def timed(fn: Callable[[], None], repeats: int, warmup: int, cuda: bool) -> float:
    """Median wall time in milliseconds."""
    return statistics.median(time_calls(fn, repeats, warmup, cuda))


def bench_case(backend: str, n: int, height: int, width: int, layers: int, args) -> dict:
    device = "cuda" if backend == "cuda" else "cpu"
    xyz, radius, density, colors, K, R, T = make_scene(n, height, width, args.disc_px, device)
    cuda = device == "cuda"

    def index_pass():
        return peel_points(xyz, radius, K, R, T, height, width, layers, backend=backend)

    params = [t.clone().requires_grad_(True) for t in (xyz, radius, density, colors)]

    @torch.no_grad()
    def index_and_composite_forward():
        idx = peel_points(xyz, radius, K, R, T, height, width, layers, backend=backend).idx
        return composite(idx, xyz, radius, density, colors, K, R, T)

    def index_and_composite():
        p_xyz, p_radius, p_density, p_colors = params
        idx = peel_points(p_xyz, p_radius, K, R, T, height, width, layers, backend=backend).idx
        out = composite(idx, p_xyz, p_radius, p_density, p_colors, K, R, T)
        loss = out.rgb.sum() + out.accumulation.sum() + out.depth.sum()
        loss.backward()
        for p in params:
            p.grad = None

    idx = index_pass().idx
    filled = (idx >= 0).float().mean().item()
    covered = (idx[..., 0] >= 0).float().mean().item()
    return {
        "backend": backend,
        "points": n,
        "height": height,
        "width": width,
        "layers": layers,
        "index_ms": timed(index_pass, args.repeats, args.warmup, cuda),
        "index_composite_fwd_ms": timed(index_and_composite_forward, args.repeats, args.warmup, cuda),
        "index_composite_fwd_bwd_ms": timed(index_and_composite, args.repeats, args.warmup, cuda),
        "covered_pixels": covered,
        "filled_slots": filled,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[65536, 262144])
    parser.add_argument("--sizes", nargs="+", default=["256x256", "512x512", "1920x1080"], help="WIDTHxHEIGHT")
    parser.add_argument("--layers", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--disc-px",
        type=float,
        nargs=2,
        default=[1.0, 4.0],
        metavar=("MIN", "MAX"),
        help="disc diameter range in pixels",
    )
    parser.add_argument("--backends", nargs="+", default=None, help="default: cpu, plus cuda when a GPU is present")
    parser.add_argument("--threads", type=int, default=None, help="torch/OpenMP CPU threads")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    backends = args.backends or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "torch" in backends:
        backends.remove("torch")
        print(
            "note: the torch reference backend is brute force (points x pixels) and is not benchmarked at these sizes",
            file=sys.stderr,
        )
    build_s = {}
    for backend in backends:
        (build.load_cuda_extension if backend == "cuda" else build.load_cpu_extension)()
        build_s[backend] = round(build.build_seconds.get(backend, 0.0), 1)
    load = load_average()
    header = {
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_threads": build.load_cpu_extension().omp_threads() if "cpu" in backends else None,
        "extension_load_s": build_s,
        "load_average_at_start": load,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "disc_px": args.disc_px,
    }
    results = []
    for backend in backends:
        for n in args.points:
            for size in args.sizes:
                h, w = parse_size(size)
                results.append(bench_case(backend, n, h, w, args.layers, args))
                if not args.json:
                    print(f"  measured {backend} {n} {size}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"machine": header, "results": results}, indent=2))
        return 0
    print(
        f"device: {header['gpu'] or 'no GPU'}; CPU {header['cpu']}, torch threads "
        f"{header['torch_threads']}, OpenMP threads {header['omp_threads']}; torch "
        f"{header['torch']}; extension load (s) {header['extension_load_s']}; 1-min load "
        f"average at start {header['load_average_at_start']}"
    )
    print(
        f"median of {args.repeats} runs after {args.warmup} warm-up; L = {args.layers}; disc "
        f"diameter {args.disc_px[0]:g}-{args.disc_px[1]:g} px; columns: index pass alone, index "
        "pass + compositing forward (no grad), and forward + backward"
    )
    print(
        "covered: pixels with at least one point; filled: share of the H*W*L slots in use; "
        "torch reference backend not benchmarked (brute force, small sizes only)"
    )
    cols = (
        f"{'backend':8} {'points':>8} {'image':>10} {'index ms':>9} {'+comp fwd ms':>13} "
        f"{'+comp fwd+bwd ms':>17} {'covered':>8} {'filled':>7}"
    )
    print(cols)
    print("-" * len(cols))
    for r in results:
        print(
            f"{r['backend']:8} {r['points']:>8} {r['width']:>5}x{r['height']:<4} "
            f"{r['index_ms']:>9.1f} {r['index_composite_fwd_ms']:>13.1f} "
            f"{r['index_composite_fwd_bwd_ms']:>17.1f} {r['covered_pixels']:>8.1%} "
            f"{r['filled_slots']:>7.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
