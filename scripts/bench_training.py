#!/usr/bin/env python
"""Training-speed benchmark of the 4K4D core model (iterations per second).

One iteration is one training step of the method (METHOD.md section 4): ``FourK4DCore.render`` of
a target view (index pass, per-point model, IBR from S source views, compositing), image loss +
1e-3 mask loss, backward, and an Adam step with the published learning rates and decay (LPIPS is
left out: it needs VGG weights). Steps that train the source CNN and steps that only run it are
timed separately (median of ``--repeats`` after ``--warmup``, CUDA synchronised); the blended rate
weights them as the published schedule does over ``--steps`` steps (CNN trained in the first 1000
steps, then every 100th). The sources carry no cache keys, so the CNN runs in every step.

Scene: 2 frames of points on the closed surface of a 1.7 m figure (a union of ellipsoids), a target
camera 3 m away (the figure fills 90 % of the image height) and its S nearest cameras on a ring of
24 as sources, all at one resolution. Radius limits make discs 1 to 4 pixels across at 3 m; the
published geometry head starts every point near the smallest radius. Only torch, numpy and
fourk4d_ns.core / fourk4d_ns.rasterizer are used (no nerfstudio). The IBR visibility test is off
unless ``--visibility`` (then its S depth maps are made in every step: training reuses them).

    python scripts/bench_training.py                          # 262,144 points, 512x512, S=4, K=15
    python scripts/bench_training.py --device cpu --small     # 45,000 points, 256x256
    python scripts/bench_training.py --points 100000 --resolution 1024 --json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fourk4d_ns.core import CoreConfig, FourK4DCore, SourceViews, camera_center, nearest_sources  # noqa: E402
from fourk4d_ns.core.training import build_optimizer, image_loss, mask_loss, set_learning_rates  # noqa: E402

# (center, semi-axes) in metres, y up, feet at y = 0: body, head, two arms; 1.7 m tall, 1.4 m wide.
BODY_PARTS = [
    ((0.0, 0.75, 0.0), (0.50, 0.75, 0.35)),
    ((0.0, 1.50, 0.0), (0.20, 0.20, 0.20)),
    ((-0.55, 0.90, 0.0), (0.15, 0.50, 0.15)),
    ((0.55, 0.90, 0.0), (0.15, 0.50, 0.15)),
]
HEIGHT_M, DISTANCE_M, RING_CAMERAS, FRAMES = 1.7, 3.0, 24, 2
DISC_PX = (1.0, 4.0)  # disc diameter range in pixels at DISTANCE_M


def surface_points(n: int, seed: int) -> np.ndarray:
    """[n, 3] points uniformly on the outer surface of the union of the ellipsoids."""
    rng = np.random.default_rng(seed)
    centers, axes = (np.array(v, dtype=np.float64) for v in zip(*BODY_PARTS, strict=True))
    p = 1.6075  # Knud Thomsen's approximation of an ellipsoid's area
    ab, ac, bc = axes[:, 0] * axes[:, 1], axes[:, 0] * axes[:, 2], axes[:, 1] * axes[:, 2]
    areas = 4 * math.pi * ((ab**p + ac**p + bc**p) / 3) ** (1 / p)
    kept = []
    while sum(len(k) for k in kept) < n:
        part = rng.choice(len(areas), size=2 * n, p=areas / areas.sum())
        d = rng.normal(size=(2 * n, 3))
        x = d / np.linalg.norm(d, axis=1, keepdims=True) * axes[part] + centers[part]
        inside = (((x[:, None] - centers) / axes) ** 2).sum(-1) < 1 - 1e-6  # strictly inside a part
        kept.append(x[~inside.any(1)])
    return np.concatenate(kept)[:n].astype(np.float32)


def ring_camera(angle: float) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-camera (R, T), OpenCV axes, DISTANCE_M from the figure's axis, looking at its middle."""
    center = torch.tensor([DISTANCE_M * math.sin(angle), HEIGHT_M / 2, DISTANCE_M * math.cos(angle)])
    forward = torch.nn.functional.normalize(torch.tensor([0.0, HEIGHT_M / 2, 0.0]) - center, dim=0)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, torch.tensor([0.0, 1.0, 0.0])), dim=0)
    R = torch.stack([right, torch.linalg.cross(forward, right), forward])
    return R, -R @ center


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    names = (
        [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        if cpuinfo.exists()
        else []
    )
    return names[0] if names else platform.processor() or platform.machine()


class TrainingBench:
    """Model, optimizer, cameras and images of one case; ``step`` is one training iteration."""

    def __init__(
        self,
        points: int,
        size: int,
        num_sources: int,
        total_steps: int,
        device: torch.device,
        visibility: bool = False,
    ) -> None:
        torch.manual_seed(0)
        frames = [surface_points(points, seed) for seed in range(FRAMES)]
        bounds = np.stack([np.min([f.min(0) for f in frames], 0), np.max([f.max(0) for f in frames], 0)])
        self.scene_size = float((bounds[1] - bounds[0]).max())
        self.size, self.total_steps, self.device = size, total_steps, device
        self.fy = 0.9 * size * DISTANCE_M / HEIGHT_M  # the figure fills 90 % of the image height
        # disc diameter in pixels at DISTANCE_M -> world radius -> fraction of the scene size
        self.radius_fractions = [d / 2 * DISTANCE_M / self.fy / self.scene_size for d in DISC_PX]
        self.config = CoreConfig(
            radius_min_fraction=self.radius_fractions[0],
            radius_max_fraction=self.radius_fractions[1],
            num_sources=num_sources,
            ibr_visibility=visibility,
        )
        self.model = FourK4DCore(self.config, frames, bounds).to(device)
        self.optimizer = build_optimizer(self.model.param_groups())

        self.K = torch.tensor([[self.fy, 0, size / 2], [0, self.fy, size / 2], [0, 0, 1]], device=device)
        cameras = [ring_camera(2 * math.pi * i / RING_CAMERAS) for i in range(RING_CAMERAS)]
        self.R, self.T = (t.to(device) for t in cameras[0])
        centers = torch.stack([camera_center(*camera) for camera in cameras])
        chosen = nearest_sources(centers[0], centers, num_sources, exclude=0).tolist()
        self.sources = SourceViews(
            torch.rand(num_sources, 3, size, size, device=device),
            self.K.expand(num_sources, 3, 3),
            torch.stack([cameras[i][0] for i in chosen]).to(device),
            torch.stack([cameras[i][1] for i in chosen]).to(device),
        )
        self.target = torch.rand(size, size, 3, device=device)
        self.mask = torch.ones(size, size, device=device)

    def step(self, step: int, train_cnn: bool) -> dict:
        set_learning_rates(self.optimizer, step, self.total_steps)
        out = self.model.render(
            step % FRAMES, self.K, self.R, self.T, self.size, self.size, self.sources, train_cnn=train_cnn
        )
        loss = image_loss(out["rgb"], self.target) + 1e-3 * mask_loss(out["accumulation"], self.mask)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return out

    @torch.no_grad()
    def disc_diameters(self) -> np.ndarray:
        """Current disc diameters in pixels of frame 0's points in the target view."""
        xyz = self.model.points[0]
        radius, _ = self.model.geometry_head(self.model.field(xyz, 0.0))
        return (2 * self.fy * radius / (xyz @ self.R.T + self.T)[:, 2]).cpu().numpy()


def time_steps(bench: TrainingBench, train_cnn: bool, first_step: int, warmup: int, repeats: int) -> dict:
    """Median and minimum milliseconds per step (after warm-up), peak CUDA memory, last step's coverage."""
    cuda = bench.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(bench.device)
    times = []
    for i in range(warmup + repeats):
        if cuda:
            torch.cuda.synchronize(bench.device)
        start = time.perf_counter()
        out = bench.step(first_step + i, train_cnn)
        if cuda:
            torch.cuda.synchronize(bench.device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    ms = statistics.median(times)
    return {
        "train_cnn": train_cnn,
        "median_ms": ms,
        "min_ms": min(times),
        "it_per_s": 1e3 / ms,
        "peak_mib": torch.cuda.max_memory_allocated(bench.device) / 2**20 if cuda else None,
        "visible_points": out["num_visible"],
        "covered_pixels": float((out["accumulation"] > 0).float().mean()),
    }


def print_report(r: dict) -> None:
    size, (f_lo, f_hi), (r_lo, r_hi) = r["resolution"], r["radius_fractions"], r["radius_limits_m"]
    print(f"device: {r['device']} ({r['device_type']}); torch {r['torch']}; {r['threads']} threads")
    print(
        f"points {r['points_per_frame']:,} per frame x {r['frames']} frames; target {size}x{size}; "
        f"S={r['sources']} sources {size}x{size}; K={r['layers']}; median of {r['repeats']} after "
        f"{r['warmup']} warm-up"
    )
    print(
        f"radius fractions {f_lo:.5f}-{f_hi:.5f} of {r['scene_size_m']:.2f} m = {r_lo * 1e3:.2f}-"
        f"{r_hi * 1e3:.2f} mm (discs {DISC_PX[0]:g}-{DISC_PX[1]:g} px at {DISTANCE_M:g} m); initial discs "
        + "/".join(f"{d:.2f}" for d in r["initial_disc_px"])
        + " px (5/50/95 %)"
    )
    print(f"{'step':16} {'ms/step':>9} {'min ms':>8} {'it/s':>7} {'peak MiB':>9} {'visible':>9} {'covered':>8}")
    for c in r["results"]:
        peak = "-" if c["peak_mib"] is None else f"{c['peak_mib']:.0f}"
        print(
            f"{'train_cnn=' + str(c['train_cnn']):16} {c['median_ms']:>9.1f} {c['min_ms']:>8.1f} "
            f"{c['it_per_s']:>7.2f} {peak:>9} {c['visible_points']:>9,} {c['covered_pixels']:>8.1%}"
        )
    b = r["blended"]
    print(
        f"blended over {b['steps']:,} steps ({b['cnn_steps']:,} with CNN training): {b['it_per_s']:.2f} it/s, "
        f"{b['hours']:.1f} h; published 800k steps: {b['hours_800k']:.1f} h"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--points", type=int, help="points per frame (default 262144; --small 45000)")
    parser.add_argument("--resolution", type=int, help="side of the square target and source images (default 512)")
    parser.add_argument("--small", action="store_true", help="45,000 points and 256x256 images (CPU sanity run)")
    parser.add_argument("--sources", type=int, default=4, help="S, source views per step")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100_000, help="run length for the blended rate")
    parser.add_argument(
        "--visibility",
        action="store_true",
        help="IBR visibility test on, its source depth maps made in every step (training reuses them)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    points = args.points or (45_000 if args.small else 262_144)
    size = args.resolution or (256 if args.small else 512)

    bench = TrainingBench(points, size, args.sources, args.steps, torch.device(args.device), args.visibility)
    discs = bench.disc_diameters()
    plain = time_steps(bench, False, 0, args.warmup, args.repeats)
    with_cnn = time_steps(bench, True, args.warmup + args.repeats, args.warmup, args.repeats)
    cnn_steps = sum(bench.config.cnn_trains_at(s) for s in range(args.steps))
    total_ms = cnn_steps * with_cnn["median_ms"] + (args.steps - cnn_steps) * plain["median_ms"]
    report = {
        "device": device_name(bench.device),
        "device_type": bench.device.type,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "points_per_frame": points,
        "frames": FRAMES,
        "resolution": size,
        "sources": args.sources,
        "layers": bench.config.layers,
        "ibr_visibility": bench.config.ibr_visibility,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "scene_size_m": bench.scene_size,
        "radius_fractions": bench.radius_fractions,
        "radius_limits_m": list(bench.model.radius_limits),
        "initial_disc_px": [float(np.percentile(discs, q)) for q in (5, 50, 95)],
        "results": [plain, with_cnn],
        "blended": {
            "steps": args.steps,
            "cnn_steps": cnn_steps,
            "it_per_s": args.steps / (total_ms / 1e3),
            "hours": total_ms / 3.6e6,
            "hours_800k": total_ms / 3.6e6 * 800_000 / args.steps,
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
