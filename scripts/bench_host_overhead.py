"""Host overhead per call of the index pass and the fused renderer, on inputs so small that the
kernels do almost nothing (CPU backend): what Python and the argument handling cost per frame.

For each entry point, the wall time of a call next to that of the bare extension call it makes;
the difference is the Python-side overhead. Timings: ``--rounds`` rounds, each timing every call
``--calls`` times after ``--warmup`` untimed calls, in turn, so that all see the same machine load;
the table gives the median over rounds of each round's median. The extension is built or loaded
before timing, so the figures are those of a cached extension. The kernels run on ``--threads``
threads, 1 by default: on a busy machine an OpenMP barrier waiting for a descheduled thread costs
milliseconds and drowns what is measured. Scene: ``--points`` random points in front of the
camera, a ``--size`` image, ``--layers`` slots; the fused renderer blends 2 of 4 baked cameras with
SH degree 3.

    python scripts/bench_host_overhead.py
    python scripts/bench_host_overhead.py --rounds 15 --calls 2000 --points 16 --size 16x16
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
from fourk4d_ns.rasterizer.projection import kernel_camera


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
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of the kernels")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
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
    camera = kernel_camera(K, R, T)
    source_ids = torch.tensor(sources, dtype=torch.int32)
    calls = {
        "load_cpu_extension (cached)": (build.load_cpu_extension, None),
        "peel_points": (
            lambda: peel_points(xyz, radius, K, R, T, height, width, layers, backend="cpu", near=near),
            lambda: cpu.peel_points(xyz, radius, camera, height, width, layers, near),
        ),
        "render_baked_points": (
            lambda: render_baked_points(
                xyz, radius, density, sh, ibr, sources, K, R, T, height, width, layers, background, near, backend="cpu"
            ),
            lambda: cpu.render_baked(
                xyz, radius, density, sh, ibr, source_ids, camera, background, height, width, layers, near, 0.25
            ),
        ),
    }
    rounds: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, pair in calls.items():
            for kind, fn in zip(("call", "bare"), pair):
                if fn is not None:
                    rounds.setdefault(f"{name} {kind}", []).append(median_us(fn, args.calls, args.warmup))
    result = {key: statistics.median(values) for key, values in rounds.items()}

    print(
        f"CPU {cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"1-min load average {load_average()}"
    )
    print(
        f"{args.points} points, {width}x{height}, L = {layers}; median over {args.rounds} rounds of the median of "
        f"{args.calls} calls (after {args.warmup} warm-up), microseconds"
    )
    print(f"{'call':30} {'per call':>9} {'extension':>10} {'overhead':>9}")
    for name in calls:
        total, bare = result[f"{name} call"], result.get(f"{name} bare", 0.0)
        print(f"{name:30} {total:9.1f} {bare:10.1f} {total - bare:9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
