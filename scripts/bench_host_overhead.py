"""Host overhead per call of the index pass and the fused renderer, on inputs so small that the
kernels do almost nothing (CPU backend): what Python and the argument handling cost per frame.

For each entry point, the median wall time of a call (``--calls`` timed calls after ``--warmup``
untimed ones) next to the median of the bare extension call it makes; the difference is the
Python-side overhead. The extension is built or loaded before timing, so the figures are those of
a cached extension. Scene: ``--points`` random points in front of the camera, a
``--size`` image, ``--layers`` slots; the fused renderer blends 2 of 4 baked cameras with SH degree 3.

    python scripts/bench_host_overhead.py
    python scripts/bench_host_overhead.py --calls 20000 --points 16 --size 16x16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_common import cpu_name, load_average, parse_size

from fourk4d_ns.playback.fused import render_baked_points
from fourk4d_ns.rasterizer import build, peel_points


def median_us(fn: Callable[[], object], calls: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in microseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e3


def tiny_scene(points: int, height: int, width: int, seed: int = 0):
    """Points 2-4 units in front of a pinhole camera at the origin, with radii of a few pixels."""
    gen = torch.Generator().manual_seed(seed)
    xyz = (torch.rand(points, 3, generator=gen) - 0.5) * torch.tensor([1.0, 1.0, 2.0]) + torch.tensor([0.0, 0.0, 3.0])
    radius = 0.05 + 0.1 * torch.rand(points, generator=gen)
    focal = float(max(height, width))
    K = torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    return xyz, radius, K, torch.eye(3), torch.zeros(3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=16)
    parser.add_argument("--size", default="16x16", help="WIDTHxHEIGHT")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args(argv)
    height, width = parse_size(args.size)
    layers, near = args.layers, 0.01

    xyz, radius, K, R, T = tiny_scene(args.points, height, width)
    gen = torch.Generator().manual_seed(1)
    density = 0.5 + 0.5 * torch.rand(args.points, generator=gen)
    sh = 0.1 * torch.randn(args.points, 3, 16, generator=gen)
    ibr = torch.rand(4, args.points, 4, generator=gen)
    sources = [0, 2]
    background = torch.tensor([0.1, 0.2, 0.3])

    cpu = build.load_cpu_extension()
    lookup = median_us(build.load_cpu_extension, args.calls, args.warmup)

    def peel_bare():
        return cpu.peel_points(xyz, radius, K, R, T, height, width, layers, near)

    def peel_call():
        return peel_points(xyz, radius, K, R, T, height, width, layers, backend="cpu", near=near)

    source_ids = torch.tensor(sources, dtype=torch.int32)

    def render_bare():
        return cpu.render_baked(
            xyz, radius, density, sh, ibr, source_ids, K, R, T, background, height, width, layers, near, 0.25
        )

    def render_call():
        return render_baked_points(
            xyz, radius, density, sh, ibr, sources, K, R, T, height, width, layers, background, near, backend="cpu"
        )

    rows = [("load_cpu_extension (cached)", lookup, 0.0)]
    for name, call, bare in (("peel_points", peel_call, peel_bare), ("render_baked_points", render_call, render_bare)):
        rows.append((name, median_us(call, args.calls, args.warmup), median_us(bare, args.calls, args.warmup)))

    print(
        f"CPU {cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"1-min load average {load_average()}"
    )
    print(
        f"{args.points} points, {width}x{height}, L = {layers}; median of {args.calls} calls after "
        f"{args.warmup} warm-up, microseconds"
    )
    print(f"{'call':30} {'per call':>9} {'extension':>10} {'overhead':>9}")
    for name, total, bare in rows:
        print(f"{name:30} {total:9.1f} {bare:10.1f} {total - bare:9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
