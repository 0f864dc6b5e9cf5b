"""Benchmark of the baked real-time renderer: frames per second of ``render_baked_points``.

One fused pass per frame: per-point color from the S nearest of C baked cameras (softmax blend of
the baked colors plus the SH term), rasterization of L layers and compositing. Synthetic baked
frames in float16 shaped like a capture: N points on the outer surface of a 1.7 m figure (torso,
head, arms and legs as overlapping ellipsoids; points inside another part are dropped, as on a
carved surface), disc radius 1.5 x the mean point spacing, C cameras on a ring 3 m from the
subject, random plausible colors, logits, small SH coefficients and densities in (0.5, 1). The
rendering camera sits on the ring between two baked cameras; its focal length makes the figure
fill 70 % of the image height.

Timings: the first call (which builds or loads the extension) is timed on its own; then, per
case, ``--warmup`` calls and ``--repeats`` timed calls (synchronised on CUDA); the table gives the
median and mean ms per frame and FPS = 1000 / median. Only torch, numpy and fourk4d_ns's core
(playback.fused, playback.bake_format, rasterizer.build) are imported; no nerfstudio.

    python scripts/bench_playback.py                        # auto: cuda if available, else cpu
    python scripts/bench_playback.py --device cpu --repeats 5
    python scripts/bench_playback.py --points 262144 --sizes 1920x1080 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_common import cpu_name, ellipsoid_area, load_average, parse_size, time_calls

from fourk4d_ns.playback.bake_format import BakedFrame
from fourk4d_ns.playback.fused import render_baked_points
from fourk4d_ns.rasterizer import build

# A figure as overlapping ellipsoids: (center xyz, semi-axes, color rgb), metres; y is up, feet
# at y = 0, head top at 1.7 m, arms hanging beside the torso.
SKIN, SHIRT, TROUSERS = (0.80, 0.62, 0.50), (0.20, 0.35, 0.65), (0.25, 0.25, 0.30)
BODY_PARTS = [
    ((0.00, 1.14, 0.00), (0.20, 0.30, 0.12), SHIRT),  # torso
    ((0.00, 0.88, 0.00), (0.18, 0.12, 0.11), TROUSERS),  # hips
    ((0.00, 1.575, 0.00), (0.095, 0.125, 0.11), SKIN),  # head
    ((0.00, 1.43, 0.00), (0.05, 0.06, 0.05), SKIN),  # neck
    ((-0.25, 1.10, 0.00), (0.05, 0.33, 0.05), SHIRT),  # arms
    ((0.25, 1.10, 0.00), (0.05, 0.33, 0.05), SHIRT),
    ((-0.10, 0.43, 0.00), (0.075, 0.43, 0.075), TROUSERS),  # legs
    ((0.10, 0.43, 0.00), (0.075, 0.43, 0.075), TROUSERS),
]
HEIGHT_M = 1.7
CENTER = (0.0, 0.85, 0.0)
RING_RADIUS_M = 3.0
RING_HEIGHT_M = 1.2
FILL = 0.7
"""Share of the image height the figure fills."""
SH_COEFFS = 16

DEFAULT_SIZES = ["512x512", "1920x1080"]
CUDA_EXTRA_SIZES = ["3840x2160"]
# (device, points, width, height, minimum FPS)
TARGETS = [
    ("cpu", 65536, 512, 512, 15.0),
    ("cuda", 262144, 1920, 1080, 1000.0),
    ("cuda", 262144, 3840, 2160, 250.0),
]


def area_element(p: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Relative surface-area density at points p of an origin-centered ellipsoid parametrised by
    the unit sphere (p = axes * u); used to make samples uniform in area."""
    a, b, c = axes
    u = p / axes
    return np.sqrt((b * c * u[:, 0]) ** 2 + (a * c * u[:, 1]) ** 2 + (a * b * u[:, 2]) ** 2)


def inside_other(points: np.ndarray, part: int) -> np.ndarray:
    """Whether each point lies strictly inside another body part."""
    inside = np.zeros(len(points), dtype=bool)
    for j, (center, axes, _) in enumerate(BODY_PARTS):
        if j != part:
            q = (points - np.array(center)) / np.array(axes)
            inside |= (q * q).sum(1) < 1.0
    return inside


def make_surface(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """n points uniform in area on the outer surface of the figure, their part colors and the
    area of that surface (m^2)."""
    areas = np.array([ellipsoid_area(axes) for _, axes, _ in BODY_PARTS])
    pools_xyz, pools_rgb, outer_area = [], [], 0.0
    for part, (center, axes, color) in enumerate(BODY_PARTS):
        axes_np = np.array(axes)
        want = int(n * 2.5 * areas[part] / areas.sum()) + 64
        d = rng.normal(size=(want * 2, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        p = d * axes_np
        g = area_element(p, axes_np)
        p = p[rng.random(len(p)) < g / g.max()] + np.array(center)
        outer = ~inside_other(p, part)
        outer_area += areas[part] * outer.mean()
        pools_xyz.append(p[outer])
        pools_rgb.append(np.broadcast_to(np.array(color), (int(outer.sum()), 3)))
    xyz, rgb = np.concatenate(pools_xyz), np.concatenate(pools_rgb)
    if len(xyz) < n:
        raise RuntimeError(f"sampled {len(xyz)} surface points, fewer than {n}")
    keep = rng.choice(len(xyz), size=n, replace=False)
    return xyz[keep].astype(np.float32), rgb[keep].astype(np.float32), outer_area


def look_at(eye: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera (R, T) of a camera at ``eye`` looking at ``target``, world y up."""
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -R @ eye


def ring_centers(count: int, offset: float = 0.0) -> np.ndarray:
    angles = 2 * math.pi * (np.arange(count) + offset) / count
    return np.stack(
        [
            RING_RADIUS_M * np.sin(angles),
            np.full(count, RING_HEIGHT_M),
            RING_RADIUS_M * np.cos(angles),
        ],
        axis=1,
    )


def make_frame(n: int, cameras: int, seed: int = 0) -> tuple[BakedFrame, float]:
    """A float16 baked frame of n points and ``cameras`` baked cameras, and the disc radius."""
    rng = np.random.default_rng(seed)
    xyz, base, area = make_surface(n, rng)
    spacing = math.sqrt(area / n)
    radius = np.full(n, 1.5 * spacing, dtype=np.float32)
    density = rng.uniform(0.5, 1.0, size=n).astype(np.float32)
    # Baked colors: the part's color with per-point texture and a little per-camera variation
    # (lighting); logits of a few units; small SH residual coefficients. Filled one camera at a
    # time so that generating the frame does not dominate the peak RSS.
    texture = base * rng.uniform(0.8, 1.2, size=(n, 1)) + rng.normal(0, 0.03, (n, 3))
    ibr = torch.empty(cameras, n, 4, dtype=torch.float16)
    for c in range(cameras):
        rgb = np.clip(texture + rng.normal(0, 0.04, size=(n, 3)), 0.0, 1.0)
        ibr[c, :, :3] = torch.from_numpy(rgb)
        ibr[c, :, 3] = torch.from_numpy(rng.normal(0, 1.0, size=n))
    sh = 0.05 * rng.standard_normal(size=(n, 3, SH_COEFFS), dtype=np.float32)
    half = {
        k: torch.from_numpy(v).to(torch.float16)
        for k, v in (("xyz", xyz), ("radius", radius), ("density", density), ("sh", sh))
    }
    frame = BakedFrame(ibr=ibr, **half)
    frame.check("synthetic frame")
    return frame, float(radius[0])


def make_view(height: int, width: int, cameras: int):
    """Target camera (K, R, T) on the ring halfway between baked cameras 0 and 1; its center."""
    eye = ring_centers(cameras, offset=0.5)[0]
    target = np.array(CENTER)
    distance = float(np.linalg.norm(eye - target))
    f = FILL * height * distance / HEIGHT_M
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])
    R, T = look_at(eye, target)
    return [torch.tensor(x, dtype=torch.float32) for x in (K, R, T)], eye


def nearest(eye: np.ndarray, centers: np.ndarray, count: int) -> torch.Tensor:
    order = np.argsort(np.linalg.norm(centers - eye, axis=1), kind="stable")
    return torch.tensor(order[:count], dtype=torch.int32)


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, else KiB


def bench_case(frame: BakedFrame, height: int, width: int, args, cuda: bool) -> dict[str, float]:
    (K, R, T), eye = make_view(height, width, frame.num_cameras)
    sources = nearest(eye, ring_centers(frame.num_cameras), args.sources)
    device = frame.xyz.device
    K, R, T = (x.to(device) for x in (K, R, T))

    def render():
        return render_baked_points(
            frame.xyz,
            frame.radius,
            frame.density,
            frame.sh,
            frame.ibr,
            sources,
            K,
            R,
            T,
            height,
            width,
            args.layers,
        )

    times = time_calls(render, args.repeats, args.warmup, cuda)
    out = render()
    covered = (out.accumulation > 0).float().mean().item()
    median = statistics.median(times)
    return {
        "median_ms": median,
        "mean_ms": statistics.fmean(times),
        "min_ms": min(times),
        "fps": 1000.0 / median if median > 0 else float("inf"),
        "covered_pixels": covered,
        "mean_accumulation": out.accumulation.float().mean().item(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    parser.add_argument("--points", type=int, nargs="+", default=[65536, 262144])
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        help="WIDTHxHEIGHT (default: 512x512 1920x1080, plus 3840x2160 on CUDA)",
    )
    parser.add_argument("--layers", type=int, default=11)
    parser.add_argument("--cameras", type=int, default=16, help="baked cameras (C)")
    parser.add_argument("--sources", type=int, default=4, help="cameras blended (S)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs (default 10 CPU, 200 CUDA)",
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs (default 2 CPU, 20 CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to torch")
    cuda = device == "cuda"
    if args.repeats is None:
        args.repeats = 200 if cuda else 10
    if args.warmup is None:
        args.warmup = 20 if cuda else 2
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    sizes = args.sizes or DEFAULT_SIZES + (CUDA_EXTRA_SIZES if cuda else [])
    load = load_average()

    # First call: builds the extension (or loads the cached build) and renders one small frame.
    start = time.perf_counter()
    tiny, _ = make_frame(4096, args.cameras, seed=1)
    tiny = tiny.to(device)
    render_baked_points(
        tiny.xyz,
        tiny.radius,
        tiny.density,
        tiny.sh,
        tiny.ibr,
        list(range(min(args.sources, args.cameras))),
        *make_view(64, 64, args.cameras)[0],
        64,
        64,
        args.layers,
    )
    if cuda:
        torch.cuda.synchronize()
    first_call_s = time.perf_counter() - start
    baseline_rss_mb = peak_rss_mb()
    del tiny
    header = {
        "device": device,
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_threads": None if cuda else build.load_cpu_extension().omp_threads(),
        "extension_build_or_load_s": round(build.build_seconds.get(device, 0.0), 2),
        "first_call_s": round(first_call_s, 2),
        "peak_rss_mb_after_first_call": round(baseline_rss_mb, 1),
        "load_average_at_start": load,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "layers": args.layers,
        "cameras": args.cameras,
        "sources": args.sources,
        "dtype": "float16",
    }

    results = []
    for n in args.points:
        frame, radius = make_frame(n, args.cameras)
        frame_mb = frame.nbytes / 2**20
        if cuda:
            torch.cuda.empty_cache()
        for size in sizes:
            h, w = parse_size(size)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            baked = frame.to(device)
            r = bench_case(baked, h, w, args, cuda)
            if cuda:
                torch.cuda.synchronize()
                r["peak_cuda_alloc_mb"] = torch.cuda.max_memory_allocated() / 2**20
            else:
                r["peak_rss_mb"] = peak_rss_mb()
            del baked
            r.update(points=n, width=w, height=h, frame_mb=frame_mb, radius_m=radius)
            results.append(r)
            print(f"  measured {device} {n} {size}", file=sys.stderr, flush=True)
        del frame

    targets = []
    for t_device, t_points, t_w, t_h, t_fps in TARGETS:
        if t_device != device:
            continue
        hit = [r for r in results if (r["points"], r["width"], r["height"]) == (t_points, t_w, t_h)]
        fps = hit[0]["fps"] if hit else None
        status = "not measured" if fps is None else "MET" if fps >= t_fps else "NOT MET"
        targets.append(
            {
                "device": t_device,
                "points": t_points,
                "width": t_w,
                "height": t_h,
                "target_fps": t_fps,
                "fps": fps,
                "status": status,
            }
        )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": header, "results": results, "targets": targets}, indent=2))

    print(
        f"device: {device} ({header['gpu'] or 'no GPU'}); CPU {header['cpu']} "
        f"({header['cpu_cores']} cores), torch threads {header['torch_threads']}, OpenMP "
        f"threads {header['omp_threads']}; torch {header['torch']}; 1-min load average at "
        f"start {header['load_average_at_start']}"
    )
    print(
        f"extension build/load {header['extension_build_or_load_s']:.2f} s; first call "
        f"(build/load + one 64x64 frame) {header['first_call_s']:.2f} s"
    )
    print(
        f"render_baked_points, float16 frames, L = {args.layers}, S = {args.sources} of "
        f"C = {args.cameras} cameras; median and mean of {args.repeats} runs after "
        f"{args.warmup} warm-up{' (synchronised)' if cuda else ''}; FPS = 1000 / median"
    )
    if load is not None and header["cpu_cores"] and load > header["cpu_cores"]:
        print(
            f"warning: the load average ({load}) exceeds the {header['cpu_cores']} cores: "
            "other processes compete for the CPU and the timings are inflated"
        )
    mem = "peak GPU alloc MB" if cuda else "peak RSS MB"
    print(
        f"covered: pixels with accumulation > 0; frame MB: the baked tensors; {mem}: "
        + (
            "torch.cuda.max_memory_allocated per case"
            if cuda
            else "process peak resident set so far (cumulative; "
            f"{baseline_rss_mb:.0f} MB after importing torch and the first call)"
        )
    )
    cols = (
        f"{'points':>8} {'image':>10} {'radius mm':>9} {'median ms':>10} {'mean ms':>9} "
        f"{'FPS':>8} {'covered':>8} {'frame MB':>9} {mem:>17}"
    )
    print(cols)
    print("-" * len(cols))
    for r in results:
        peak = r["peak_cuda_alloc_mb"] if cuda else r["peak_rss_mb"]
        print(
            f"{r['points']:>8} {r['width']:>5}x{r['height']:<4} {r['radius_m'] * 1e3:>9.2f} "
            f"{r['median_ms']:>10.2f} {r['mean_ms']:>9.2f} {r['fps']:>8.1f} "
            f"{r['covered_pixels']:>8.1%} {r['frame_mb']:>9.1f} {peak:>17.1f}"
        )
    for t in targets:
        got = "" if t["fps"] is None else f"{t['fps']:.1f} FPS -> "
        print(
            f"target {t['device']}: >= {t['target_fps']:g} FPS at {t['width']}x{t['height']} "
            f"with {t['points']} points: {got}{t['status']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
