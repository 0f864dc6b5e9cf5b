#!/usr/bin/env python
"""One-run verification of the CUDA backends on a GPU machine, written as a JSON report.

Needs only torch, numpy, a CUDA toolkit (nvcc) and ninja, and the project's core (no nerfstudio,
no OpenCV). Sections, run in this order (``--sections`` picks some):

  environment       versions, the device, and that every core module imports without nerfstudio or cv2
  build             compile or load the C++ and CUDA extensions (concurrently), their times and binary archs
  small-index       index pass on random scenes with awkward points: CUDA == CPU (== torch) bit for bit
  tie-index         index pass on dense scenes of exact depth ties (the sort's tie order): bit for bit
  production-index  index pass on 262,144 points at 1920x1080 and 3840x2160, L = 11 and 15 layers
  edge-cases        no points, nothing visible, non-contiguous inputs, a side CUDA stream
  fused             fused render CUDA vs CPU in float16 and float32: pixels off by > 1e-4, rounding noise
  playback-bench    scripts/bench_playback.py at 1080p and 4K with 262,144 points, with a profile
  training-bench    one training step at 512x512 (scripts/bench_training.py), with a profile
  sanitizer         compute-sanitizer memcheck and racecheck on a --quick child run of this script

L is ``layers``: the points kept (index pass) or composited (fused render) per pixel. On a CUDA
device the compiled CUDA backend is compared with the C++ backend, and the C++ backend with the
torch reference (``rasterizer/reference.py``) where that brute-force pass is affordable. With
``--device cpu`` (a dry run) every section that does not need a GPU runs at reduced sizes, the C++
backend against the torch reference, and the others are marked "skipped: no CUDA device".

The report is rewritten atomically after every section, so a run killed by a timeout keeps what
finished. Sections that would start once ``--time-budget`` seconds have passed are skipped (the
first one always runs). Exit status: 0 when every section that ran passed, 1 when a check failed.

    python scripts/gpu_verify.py --output gpu_report.json          # on the GPU machine
    python scripts/gpu_verify.py --device cpu --output cpu_report.json
    python scripts/gpu_verify.py --sections build small-index --quick
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.util
import json
import math
import os
import pkgutil
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # scenes.py (torch only, no pytest)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench_* scripts
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_playback
import bench_rasterizer
import bench_training
from bench_common import cpu_name, load_average, parse_size
from scenes import baked_inputs, random_scene, tie_scene

from fourk4d_ns.io.atomic import atomic_write_bytes
from fourk4d_ns.playback.fused import render_baked_points
from fourk4d_ns.rasterizer import EMPTY_DEPTH, EMPTY_INDEX, PeelResult, build, peel_points

Tensor = torch.Tensor

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()

FORBIDDEN_MODULES = ("nerfstudio", "cv2", "dataparsers")
"""Top-level modules the core must not import (the GPU machine has none of them)."""
CORE_PACKAGES = ("fourk4d_ns.rasterizer", "fourk4d_ns.playback", "fourk4d_ns.core")
"""Packages whose every module the environment section imports."""
RENDER_TOLERANCE = 1e-4
"""A fused-render pixel is off when an output differs by more than this (depth: relative to max(1, |depth|))."""
TORCH_REFERENCE_LIMIT = 120_000_000
"""Largest points x pixels for which the brute-force torch reference joins a comparison."""
SIDE_STREAM_SLEEP_CYCLES = 200_000_000
"""GPU cycles (about 0.1 s) the side stream waits before it writes the inputs (edge-cases)."""
SANITIZER_TOOLS = ("memcheck", "racecheck")
SANITIZER_SECTIONS = ("small-index", "fused")
SANITIZER_TIMEOUT_S = 240.0
"""Longest run of one sanitizer tool (it also stops at the time budget)."""
SMALL_SIZES = ((24, 32), (37, 53), (16, 16), (41, 17), (1, 9), (70, 45))
"""(height, width) of the small random scenes, as in tests/test_rasterizer_cuda.py."""
SMALL_LAYERS = (1, 3, 8, 15, 24)
PLAYBACK_LAYERS, PLAYBACK_CAMERAS, PLAYBACK_SOURCES = 11, 16, 4
"""As scripts/bench_playback.py measures by default (L, C baked cameras, S blended)."""
TRAINING_SOURCES = 4


# ------------------------------------------------------------------------------------ sizes
@dataclass(frozen=True)
class Plan:
    """Sizes of every section: FULL on a GPU, DRY_RUN on a CPU (where the torch reference, brute force
    over points x pixels, is the comparison), QUICK for tests and the sanitizer's child run."""

    name: str
    small_seeds: int
    """Random scenes per section (small-index, fused), sizes cycling through SMALL_SIZES."""
    small_points: tuple[int, ...]
    tie_cases: tuple[tuple[int, int, int], ...]
    """(points, height, width) of the dense tie scenes, each run with L = 1 and 15."""
    figure_points: int
    """Points of the figure scenes (bench_rasterizer's and bench_playback's) of production-index and fused."""
    figure_sizes: tuple[str, ...]
    figure_layers: tuple[int, ...]
    playback_points: int
    playback_sizes: tuple[str, ...]
    playback_repeats: int
    playback_warmup: int
    training_points: int
    training_size: int
    training_repeats: int
    training_warmup: int
    profile_calls: int


FULL = Plan(
    name="full",
    small_seeds=16,
    small_points=(40, 300, 3000),
    tie_cases=((4096, 64, 64), (200_000, 256, 256)),
    figure_points=262_144,
    figure_sizes=("1920x1080", "3840x2160"),
    figure_layers=(11, 15),
    playback_points=262_144,
    playback_sizes=("1920x1080", "3840x2160"),
    playback_repeats=100,
    playback_warmup=10,
    training_points=262_144,
    training_size=512,
    training_repeats=5,
    training_warmup=2,
    profile_calls=3,
)
DRY_RUN = Plan(
    name="dry-run",
    small_seeds=16,
    small_points=(40, 300, 3000),
    tie_cases=((4096, 64, 64), (12_000, 96, 96)),
    figure_points=2048,
    figure_sizes=("160x90", "256x144"),
    figure_layers=(11, 15),
    playback_points=65_536,
    playback_sizes=("512x512",),
    playback_repeats=5,
    playback_warmup=1,
    training_points=20_000,
    training_size=128,
    training_repeats=2,
    training_warmup=1,
    profile_calls=1,
)
QUICK = Plan(
    name="quick",
    small_seeds=3,
    small_points=(40, 300),
    tie_cases=((2048, 48, 48),),
    figure_points=512,
    figure_sizes=("64x36", "96x54"),
    figure_layers=(11, 15),
    playback_points=4096,
    playback_sizes=("128x128",),
    playback_repeats=2,
    playback_warmup=1,
    training_points=3000,
    training_size=64,
    training_repeats=1,
    training_warmup=1,
    profile_calls=1,
)
DENSE_DISC_PX = (6.0, 16.0)
"""Disc diameters of the extra production-index case whose deepest layers fill up."""
FIGURE_DISC_PX = (1.0, 4.0)
"""Disc diameters of the figure scenes (bench_rasterizer's default)."""


# ---------------------------------------------------------------------------- report plumbing
@dataclass
class Context:
    """What every section needs: the device, the sizes, the clock."""

    device: str
    plan: Plan
    compile_cuda: bool
    budget_s: float
    started: float = field(default_factory=time.monotonic)

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def time_left(self) -> float:
        return self.budget_s - self.elapsed()


@dataclass
class Section:
    """Checks and measurements of one section; its status follows from the checks."""

    name: str
    checks: list[dict] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    error: str | None = None

    def check(self, name: str, passed: bool, **details) -> bool:
        self.checks.append({"name": name, "status": "passed" if passed else "failed", **details})
        return passed

    def skip(self, name: str, reason: str, **details) -> None:
        self.checks.append({"name": name, "status": "skipped", "reason": reason, **details})

    def status(self) -> str:
        states = {c["status"] for c in self.checks}
        if self.error is not None or "failed" in states:
            return "failed"
        if "passed" in states:
            return "passed"
        return "skipped" if states else "failed"  # a section that checked nothing did not pass

    def entry(self, seconds: float) -> dict:
        entry = {"status": self.status(), "seconds": round(seconds, 2), "checks": self.checks, "data": self.data}
        if self.error is not None:
            entry["error"] = self.error
        elif not self.checks:
            entry["error"] = "the section recorded no check"
        return entry


def jsonable(value):
    """``value`` with tuples as lists, non-finite floats as strings and other objects as their str."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


class Report:
    """The JSON report, rewritten atomically whenever a section starts or ends."""

    def __init__(self, path: Path, ctx: Context, names: Sequence[str], argv: Sequence[str]) -> None:
        self.path, self.ctx = path, ctx
        self.data = {
            "command": " ".join(["python", "scripts/gpu_verify.py", *argv]),
            "started_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "device": ctx.device,
            "plan": ctx.plan.name,
            "time_budget_s": ctx.budget_s,
            "status": "running",
            "complete": False,
            "sections": {name: {"status": "pending"} for name in names},
        }
        self.write()

    def set(self, name: str, entry: dict) -> None:
        self.data["sections"][name] = entry
        self.write()

    def finish(self) -> str:
        states = [s["status"] for s in self.data["sections"].values()]
        self.data["status"] = "failed" if "failed" in states else "passed"
        self.data["complete"] = True
        self.write()
        return self.data["status"]

    def write(self) -> None:
        self.data["elapsed_s"] = round(self.ctx.elapsed(), 2)
        atomic_write_bytes(self.path, (json.dumps(jsonable(self.data), indent=2) + "\n").encode())


def log(ctx: Context, message: str) -> None:
    print(f"[{ctx.elapsed():6.1f} s] {message}", flush=True)


# ------------------------------------------------------------------------------ small helpers
def command_output(cmd: Sequence[str], timeout: float = 60) -> str | None:
    """stdout of a command (stripped), or None when it cannot run or fails."""
    try:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_tool(name: str) -> str | None:
    """A CUDA tool from the toolkit, PATH, or the few Triton ships (cuobjdump among them)."""
    candidates = []
    home = build.find_cuda_home()
    if home:
        candidates += [Path(home, "bin", name), Path(home, "compute-sanitizer", name)]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    triton = importlib.util.find_spec("triton")
    if triton is not None and triton.origin:
        candidates.append(Path(triton.origin).parent / "backends" / "nvidia" / "bin" / name)
    return next((str(c) for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def tail(text: str | None, chars: int = 3000) -> str:
    return (text or "")[-chars:]


def synchronize(ctx: Context) -> None:
    if ctx.cuda:
        torch.cuda.synchronize()


def timed(ctx: Context, fn: Callable[[], object]) -> tuple[object, float]:
    """(fn(), seconds), synchronized on CUDA."""
    synchronize(ctx)
    start = time.perf_counter()
    out = fn()
    synchronize(ctx)
    return out, time.perf_counter() - start


def backend_device(backend: str) -> str:
    return "cuda" if backend == "cuda" else "cpu"


def comparison_pairs(ctx: Context, points: int, height: int, width: int) -> list[tuple[str, str]]:
    """(candidate, reference) backends to compare: CUDA against C++ on a GPU, and C++ against the torch
    reference wherever that brute-force pass is affordable."""
    pairs = [("cuda", "cpu")] if ctx.cuda else []
    if points * height * width <= TORCH_REFERENCE_LIMIT:
        pairs.append(("cpu", "torch"))
    return pairs


# --------------------------------------------------------------------------- index-pass checks
def peel(backend: str, scene: Sequence[Tensor], height: int, width: int, layers: int, **kw) -> PeelResult:
    """Index pass of ``scene`` (xyz, radius, K, R, T) with one backend, inputs moved to its device."""
    inputs = [t.to(backend_device(backend)) for t in scene]
    return peel_points(*inputs, height, width, layers, backend=backend, **kw)


def float_bits(t: Tensor) -> Tensor:
    return t.contiguous().view(torch.int32)


def compare_peel(candidate: PeelResult, reference: PeelResult) -> dict:
    """Bitwise comparison (indices and the bits of the depths) and how full the reference's slots are."""
    a_idx, a_depth = candidate.idx.cpu(), candidate.depth.cpu()
    b_idx, b_depth = reference.idx.cpu(), reference.depth.cpu()
    if a_idx.shape != b_idx.shape or a_depth.shape != b_depth.shape:
        return {"equal": False, "shapes": [list(a_idx.shape), list(b_idx.shape)]}
    differs = ((a_idx != b_idx) | (float_bits(a_depth) != float_bits(b_depth))).any(-1)
    result = {
        "equal": not bool(differs.any()),
        "pixels_differing": int(differs.sum()),
        "covered_pixels": float((b_idx[..., 0] >= 0).float().mean()),
        "last_layer_filled": float((b_idx[..., -1] >= 0).float().mean()),
    }
    if differs.any():
        y, x = differs.nonzero()[0].tolist()
        result["first_difference"] = {
            "pixel_yx": [y, x],
            "candidate": {"idx": a_idx[y, x].tolist(), "depth": a_depth[y, x].tolist()},
            "reference": {"idx": b_idx[y, x].tolist(), "depth": b_depth[y, x].tolist()},
        }
    return result


def check_index_pass(
    ctx: Context, section: Section, label: str, scene: Sequence[Tensor], height: int, width: int, layers: int
) -> dict[str, PeelResult]:
    """Compares the backends of ``comparison_pairs`` on one scene; returns the results by backend."""
    results: dict[str, PeelResult] = {}
    seconds: dict[str, float] = {}
    pairs = comparison_pairs(ctx, len(scene[0]), height, width)
    if not pairs:
        section.skip(label, f"the torch reference is too large here (over {TORCH_REFERENCE_LIMIT:,} points x pixels)")
    for candidate, reference in pairs:
        for backend in (candidate, reference):
            if backend not in results:
                results[backend], seconds[backend] = timed(ctx, lambda b=backend: peel(b, scene, height, width, layers))
        comparison = compare_peel(results[candidate], results[reference])
        timing = {f"{b}_s": round(seconds[b], 4) for b in (candidate, reference)}
        section.check(f"{label}: {candidate} == {reference}", comparison.pop("equal"), **comparison, **timing)
    return results


def small_index_case(seed: int, points: Sequence[int]) -> tuple[int, int, int, int]:
    """(points, height, width, layers) of the small random scene of ``seed``."""
    height, width = SMALL_SIZES[seed % len(SMALL_SIZES)]
    return points[seed % len(points)], height, width, SMALL_LAYERS[seed % len(SMALL_LAYERS)]


def section_small_index(ctx: Context, section: Section) -> None:
    covering, filling = 0, 0
    for seed in range(ctx.plan.small_seeds):
        n, height, width, layers = small_index_case(seed, ctx.plan.small_points)
        scene = random_scene(seed, n, height, width)
        label = f"random scene {seed}: {n} points, {width}x{height}, L={layers}"
        idx = next(iter(check_index_pass(ctx, section, label, scene, height, width, layers).values())).idx
        covering += bool((idx[..., 0] >= 0).any())
        filling += bool((idx[..., -1] >= 0).any())
    passed = covering == ctx.plan.small_seeds and filling > 0
    section.check("every random scene covers pixels, some fill every layer", passed, covering=covering, filling=filling)


def tie_statistics(result: PeelResult) -> dict:
    """Share of covered pixels with equal depths in neighboring kept slots, and of full pixels."""
    idx, depth = result.idx.cpu(), result.depth.cpu()
    filled = idx >= 0
    covered = filled[..., 0]
    ties = ((depth[..., 1:] == depth[..., :-1]) & filled[..., 1:]).any(-1)
    return {
        "covered_pixels": float(covered.float().mean()),
        "tied_share_of_covered": float(ties[covered].float().mean()) if covered.any() else 0.0,
        "full_share_of_covered": float(filled[..., -1][covered].float().mean()) if covered.any() else 0.0,
    }


def section_tie_index(ctx: Context, section: Section) -> None:
    for n, height, width in ctx.plan.tie_cases:
        scene = tie_scene(n, height, width)
        for layers in (1, 15):
            label = f"tie scene: {n} points, {width}x{height}, L={layers}"
            results = check_index_pass(ctx, section, label, scene, height, width, layers)
            if layers > 1 and results:
                stats = tie_statistics(next(iter(results.values())))
                exercised = stats["tied_share_of_covered"] > 0.5 and stats["full_share_of_covered"] > 0.5
                section.check(f"{label}: most pixels are full and keep tied depths", exercised, **stats)


def figure_scene(points: int, height: int, width: int, disc_px: tuple[float, float]) -> list[Tensor]:
    """bench_rasterizer's figure (xyz, radius, K, R, T) on the CPU."""
    xyz, radius, _, _, K, R, T = bench_rasterizer.make_scene(points, height, width, disc_px, "cpu")
    return [xyz, radius, K, R, T]


def production_cases(plan: Plan) -> list[tuple[str, int, tuple[float, float]]]:
    """(size, layers, disc diameters): every size and L, plus the first size with large discs."""
    cases = [(size, layers, FIGURE_DISC_PX) for size in plan.figure_sizes for layers in plan.figure_layers]
    return cases + [(plan.figure_sizes[0], max(plan.figure_layers), DENSE_DISC_PX)]


def section_production_index(ctx: Context, section: Section) -> None:
    n = ctx.plan.figure_points
    for size, layers, disc_px in production_cases(ctx.plan):
        height, width = parse_size(size)
        scene = figure_scene(n, height, width, disc_px)
        label = f"figure: {n} points, {size}, L={layers}, discs {disc_px[0]:g}-{disc_px[1]:g} px"
        results = check_index_pass(ctx, section, label, scene, height, width, layers)
        if results:
            covered = float((next(iter(results.values())).idx[..., 0] >= 0).float().mean())
            section.check(f"{label}: the figure covers pixels", covered > 0.02, covered_pixels=covered)
        del results
        if ctx.cuda:
            torch.cuda.empty_cache()


# ------------------------------------------------------------------------------- edge cases
def strided(t: Tensor, device: str) -> Tensor:
    """A non-contiguous view on ``device`` holding ``t``'s values (every other element of a wider tensor)."""
    return torch.stack([t, torch.zeros_like(t)], dim=-1).to(device)[..., 0]


def behind_camera(xyz: Tensor, R: Tensor, T: Tensor) -> Tensor:
    """The points mirrored behind the camera (negative camera z)."""
    cam = xyz @ R.T + T
    cam[:, 2] = -cam[:, 2].abs() - 0.1
    return (cam - T) @ R


def edge_scenes(seed: int = 1, n: int = 400, height: int = 24, width: int = 32) -> dict[str, list[Tensor]]:
    xyz, radius, K, R, T = random_scene(seed, n, height, width)
    return {
        "no points": [xyz[:0], radius[:0], K, R, T],
        "all behind the camera": [behind_camera(xyz, R, T), radius, K, R, T],
        "all outside the image": [xyz + torch.tensor([100.0, 0.0, 0.0]) @ R, radius, K, R, T],
    }


def check_empty_scenes(ctx: Context, section: Section, height: int = 24, width: int = 32, layers: int = 4) -> None:
    candidate, reference = comparison_pairs(ctx, 0, height, width)[0]
    for label, scene in edge_scenes(height=height, width=width).items():
        a = peel(candidate, scene, height, width, layers)
        b = peel(reference, scene, height, width, layers)
        comparison = compare_peel(a, b)
        empty = bool((a.idx.cpu() == EMPTY_INDEX).all() and (a.depth.cpu() == EMPTY_DEPTH).all())
        passed = comparison.pop("equal") and empty
        section.check(f"index pass, {label}: empty and {candidate} == {reference}", passed, all_empty=empty)


def check_non_contiguous(ctx: Context, section: Section, height: int = 37, width: int = 53, layers: int = 8) -> None:
    candidate, reference = comparison_pairs(ctx, 3000, height, width)[0]
    scene = random_scene(3, 3000, height, width)
    device = backend_device(candidate)
    views = [strided(t, device) for t in scene]
    contiguous = [v.is_contiguous() for v in views]
    a = peel_points(*views, height, width, layers, backend=candidate)
    same = compare_peel(a, peel(candidate, scene, height, width, layers))
    ref = compare_peel(a, peel(reference, scene, height, width, layers))
    passed = not any(contiguous) and same["equal"] and ref["equal"]
    section.check(
        f"index pass, non-contiguous inputs: {candidate} equals its contiguous run and {reference}",
        passed,
        inputs_contiguous=contiguous,
        covered_pixels=ref["covered_pixels"],
    )


def run_on_side_stream(render: Callable[..., Sequence[Tensor]], inputs: Sequence[Tensor], stand_ins: Sequence[Tensor]):
    """``render(*inputs)`` on a new side stream: the inputs are written there late (after a busy wait) over
    stand-ins that render differently, and the outputs are copied there without a device sync. The copies
    equal a default-stream render only if every kernel runs on the current stream."""
    stream = torch.cuda.Stream()
    buffers = [s.clone() for s in stand_ins]
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        torch.cuda._sleep(SIDE_STREAM_SLEEP_CYCLES)
        for buffer, value in zip(buffers, inputs):
            buffer.copy_(value)
        copies = [t.clone() for t in render(*buffers)]
    stream.synchronize()
    return copies


def check_side_stream_peel(section: Section, height: int = 64, width: int = 64, layers: int = 8) -> None:
    """The camera stays on the host (the kernels take it by value), so peel_points makes no sync before its
    kernels: late inputs and outputs read on the side stream both need the kernels on that stream."""
    xyz, radius, K, R, T = random_scene(5, 3000, height, width)
    xyz, radius = xyz.cuda(), radius.cuda()
    expected = peel_points(xyz, radius, K, R, T, height, width, layers, backend="cuda")
    stand_in = behind_camera(xyz, R.cuda(), T.cuda())

    def index_pass(xyz_late):
        return peel_points(xyz_late, radius, K, R, T, height, width, layers, backend="cuda", validate=False)

    idx, depth = run_on_side_stream(index_pass, [xyz], [stand_in])
    comparison = compare_peel(PeelResult(idx, depth), expected)
    passed = comparison.pop("equal") and comparison["covered_pixels"] > 0
    section.check("index pass on a side CUDA stream equals the default stream", passed, **comparison)


def section_edge_cases(ctx: Context, section: Section) -> None:
    check_empty_scenes(ctx, section)
    check_non_contiguous(ctx, section)
    check_fused_empty(ctx, section)
    check_fused_non_contiguous(ctx, section)
    if ctx.cuda:
        check_side_stream_peel(section)
        check_side_stream_fused(section)
    else:
        for name in ("index pass on a side CUDA stream", "fused render on a side CUDA stream"):
            section.skip(name, "no CUDA device")


# ------------------------------------------------------------------------------ fused render
def render(backend: str, tensors: Sequence[Tensor], sources, camera: Sequence[Tensor], height, width, layers, **kw):
    """Fused render of a baked frame (xyz, radius, density, sh, ibr) with one backend."""
    inputs = [t.to(backend_device(backend)) for t in tensors]
    return render_baked_points(*inputs, sources, *camera, height, width, layers, backend=backend, **kw)


def compare_renders(candidate, reference) -> dict:
    """Per pixel, the largest difference over rgb, accumulation and depth (depth relative to max(1, |depth|)):
    pixels off by more than RENDER_TOLERANCE, pixels with smaller (rounding) differences, the largest ones."""
    diffs, max_abs = [], {}
    for name in ("rgb", "accumulation", "depth"):
        a, b = getattr(candidate, name).cpu().float(), getattr(reference, name).cpu().float()
        diff = (a - b).abs()
        max_abs[name] = float(diff.max()) if diff.numel() else 0.0
        if name == "depth":
            diff = diff / b.abs().clamp(min=1.0)
        diffs.append(diff.amax(-1))
    pixel = torch.stack(diffs).amax(0)
    off = (pixel > RENDER_TOLERANCE) | ~torch.isfinite(pixel)
    return {
        "pixels": pixel.numel(),
        "pixels_off": int(off.sum()),
        "pixels_rounding_noise": int(((pixel > 0) & ~off).sum()),
        "max_abs_diff": max_abs,
        "covered_pixels": float((reference.accumulation.cpu() > 0).float().mean()),
    }


def check_render(
    ctx: Context, section: Section, label: str, tensors, sources, camera, height: int, width: int, layers: int, **kw
) -> None:
    """Compares the first backend pair of ``comparison_pairs`` (CUDA vs C++, or C++ vs torch) on one frame."""
    pairs = comparison_pairs(ctx, len(tensors[0]), height, width)
    if not pairs:
        section.skip(label, f"the torch reference is too large here (over {TORCH_REFERENCE_LIMIT:,} points x pixels)")
        return
    candidate, reference = pairs[0]
    a, a_s = timed(ctx, lambda: render(candidate, tensors, sources, camera, height, width, layers, **kw))
    b, b_s = timed(ctx, lambda: render(reference, tensors, sources, camera, height, width, layers, **kw))
    comparison = compare_renders(a, b)
    timing = {f"{candidate}_s": round(a_s, 4), f"{reference}_s": round(b_s, 4)}
    section.check(f"{label}: {candidate} vs {reference}", comparison["pixels_off"] == 0, **comparison, **timing)


def fused_small_case(seed: int) -> tuple[int, int, int, int, int, list[int], int]:
    """(points, cameras, height, width, layers, sources, SH degree) of the small random frame of ``seed``."""
    height, width = SMALL_SIZES[seed % len(SMALL_SIZES)]
    cameras = 2 + seed % 15
    gen = torch.Generator().manual_seed(seed)
    sources = torch.randint(0, cameras, (1 + seed % cameras,), generator=gen).tolist()
    points = (300, 3000, 2000, 1500, 800, 2500)[seed % 6]
    return points, cameras, height, width, SMALL_LAYERS[seed % len(SMALL_LAYERS)], sources, seed % 4


def figure_frame(points: int, dtype: torch.dtype) -> list[Tensor]:
    """bench_playback's baked figure (xyz, radius, density, sh, ibr) in ``dtype``, on the CPU."""
    frame, _ = bench_playback.make_frame(points, PLAYBACK_CAMERAS)
    return [t.to(dtype) for t in (frame.xyz, frame.radius, frame.density, frame.sh, frame.ibr)]


def figure_view(size: str) -> tuple[Tensor, list[Tensor], int, int]:
    """bench_playback's view of the figure at ``size``: its S nearest baked cameras, (K, R, T), height, width."""
    height, width = parse_size(size)
    camera, eye = bench_playback.make_view(height, width, PLAYBACK_CAMERAS)
    sources = bench_playback.nearest(eye, bench_playback.ring_centers(PLAYBACK_CAMERAS), PLAYBACK_SOURCES)
    return sources, camera, height, width


def section_fused(ctx: Context, section: Section) -> None:
    figure = figure_frame(ctx.plan.figure_points, torch.float16)
    for dtype in (torch.float16, torch.float32):
        name = str(dtype).removeprefix("torch.")
        for seed in range(ctx.plan.small_seeds):
            n, cameras, height, width, layers, sources, sh_degree = fused_small_case(seed)
            tensors, K, R, T = baked_inputs(seed, n, cameras, height, width, dtype, sh_degree)
            background = torch.tensor([0.3, 0.6, 0.1]) if seed % 2 else None
            label = f"{name} random frame {seed}: {n} points, {width}x{height}, L={layers}, SH degree {sh_degree}"
            check_render(ctx, section, label, tensors, sources, [K, R, T], height, width, layers, background=background)
        for size in ctx.plan.figure_sizes:
            sources, camera, height, width = figure_view(size)
            tensors = [t.to(dtype) for t in figure]
            label = f"{name} figure: {ctx.plan.figure_points} points, {size}, L={PLAYBACK_LAYERS}"
            check_render(ctx, section, label, tensors, sources, camera, height, width, PLAYBACK_LAYERS)


def check_fused_empty(ctx: Context, section: Section) -> None:
    candidate = comparison_pairs(ctx, 0, 12, 20)[0][0]
    background = torch.tensor([0.25, 0.5, 0.75])
    for dtype in (torch.float16, torch.float32):
        tensors, K, R, T = baked_inputs(0, 0, 2, 12, 20, dtype)
        out = render(candidate, tensors, [1, 0], [K, R, T], 12, 20, 5, background=background)
        passed = torch.equal(out.rgb.cpu(), background.expand(12, 20, 3)) and not out.accumulation.cpu().any()
        name = str(dtype).removeprefix("torch.")
        section.check(f"fused render, no points, {name}: {candidate} gives the background", passed)


def check_fused_non_contiguous(ctx: Context, section: Section) -> None:
    candidate, reference = comparison_pairs(ctx, 1500, 16, 16)[0]
    tensors, K, R, T = baked_inputs(3, 1500, 3, 16, 16, torch.float32)
    views = [strided(t, backend_device(candidate)) for t in tensors]
    a = render_baked_points(*views, [1, 1, 2], strided(K, "cpu"), R.T.contiguous().T, T, 16, 16, 8, backend=candidate)
    same = compare_renders(a, render(candidate, tensors, [1, 1, 2], [K, R, T], 16, 16, 8))
    ref = compare_renders(a, render(reference, tensors, [1, 1, 2], [K, R, T], 16, 16, 8))
    passed = same["pixels_rounding_noise"] == same["pixels_off"] == 0 and ref["pixels_off"] == 0
    details = {"same_backend": same, "reference": ref, "inputs_contiguous": [v.is_contiguous() for v in views]}
    section.check(f"fused render, non-contiguous inputs: {candidate} equals its contiguous run", passed, **details)


def check_side_stream_fused(section: Section) -> None:
    sources, camera, height, width = figure_view("128x96")
    xyz, *rest = (t.cuda() for t in figure_frame(4096, torch.float32))
    expected = render("cuda", [xyz, *rest], sources, camera, height, width, PLAYBACK_LAYERS)
    K, R, T = camera
    stand_in = behind_camera(xyz, R.cuda(), T.cuda())

    def draw(xyz_late):
        return render_baked_points(xyz_late, *rest, sources, K, R, T, height, width, PLAYBACK_LAYERS, backend="cuda")

    rgb, accumulation, depth = run_on_side_stream(draw, [xyz], [stand_in])
    comparison = compare_renders(type(expected)(rgb, accumulation, depth), expected)
    passed = comparison["pixels_off"] == comparison["pixels_rounding_noise"] == 0 and comparison["covered_pixels"] > 0
    section.check("fused render on a side CUDA stream equals the default stream", passed, **comparison)


# ---------------------------------------------------------------------------------- build
def load_extensions(with_cuda: bool) -> dict[str, object]:
    """Builds or loads the C++ and (``with_cuda``) CUDA extensions concurrently (ninja runs the compilers;
    Python only waits); the module, or the ExtensionBuildError, of each."""
    loaders = {"cpu": build.load_cpu_extension}
    if with_cuda:
        loaders["cuda"] = build.load_cuda_extension
    with ThreadPoolExecutor(len(loaders)) as pool:
        futures = {kind: pool.submit(load) for kind, load in loaders.items()}
    results = {}
    for kind, future in futures.items():
        try:
            results[kind] = future.result()
        except build.ExtensionBuildError as exc:
            results[kind] = exc
    return results


def binary_archs(library: str) -> dict:
    """The SASS (ELF) and PTX architectures in a built extension, from ``cuobjdump``."""
    tool = find_tool("cuobjdump")
    if tool is None:
        return {"error": "cuobjdump not found (CUDA toolkit bin/, PATH, Triton's copy)"}
    listing = {}
    for kind, flag in (("elf", "--list-elf"), ("ptx", "--list-ptx")):
        text = command_output([tool, flag, library]) or ""
        listing[kind] = sorted(set(re.findall(r"\.(sm_\d+[a-z]?)\.(?:cubin|ptx)", text)))
    return {"cuobjdump": tool, **listing}


def runs_on_device(archs: dict, capability: tuple[int, int]) -> tuple[bool, str]:
    """Whether the binary has SASS for the device, or PTX it can compile (an arch not above its own)."""
    own = capability[0] * 10 + capability[1]
    if f"sm_{own}" in archs.get("elf", []) or f"sm_{own}a" in archs.get("elf", []):
        return True, f"native code for sm_{own}"
    ptx = [int(re.sub(r"\D", "", a)) for a in archs.get("ptx", [])]
    if any(p <= own for p in ptx):
        return True, f"PTX compiled for sm_{own} at load time (slower first call)"
    return False, f"no code for sm_{own}: ELF {archs.get('elf')}, PTX {archs.get('ptx')}"


def section_build(ctx: Context, section: Section) -> None:
    with_cuda = ctx.cuda or ctx.compile_cuda
    if with_cuda:
        section.data["cuda_arch_list"] = build.cuda_arch_list()
        log(ctx, f"build: compiling or loading the C++ and CUDA extensions for {build.cuda_arch_list()} (minutes)")
    start = time.perf_counter()
    modules = load_extensions(with_cuda)
    section.data["wall_s"] = round(time.perf_counter() - start, 2)
    for kind, module in modules.items():
        seconds = round(build.build_seconds.get(kind, 0.0), 2)
        ok = not isinstance(module, Exception)
        details = {"seconds": seconds, "module": getattr(module, "__file__", None)}
        section.check(f"{kind} extension builds and loads", ok, **details, **({} if ok else {"error": str(module)}))
        log(ctx, f"build: {kind} extension {'built or loaded' if ok else 'FAILED'} in {seconds:.1f} s")
    if not with_cuda:
        section.skip("cuda extension builds and loads", "no CUDA device (--compile-cuda compiles it anyway)")
        return
    cuda_module = modules["cuda"]
    if isinstance(cuda_module, Exception):
        return
    archs = binary_archs(cuda_module.__file__)
    section.data["binary_archs"] = archs
    if "error" in archs:
        section.skip("the CUDA binary has code for this GPU", archs["error"])
    elif not ctx.cuda:
        section.skip("the CUDA binary has code for this GPU", "no CUDA device")
    else:
        ok, how = runs_on_device(archs, torch.cuda.get_device_capability())
        section.check("the CUDA binary has code for this GPU", ok, how=how)


# ---------------------------------------------------------------------------- environment
def nvcc_version() -> str | None:
    home = build.find_cuda_home()
    text = command_output([str(Path(home, "bin", "nvcc")), "--version"]) if home else None
    return text.splitlines()[-1] if text else None


def gpu_description() -> dict:
    if not torch.cuda.is_available():
        return {"available": False}
    props = torch.cuda.get_device_properties(0)
    smi = shutil.which("nvidia-smi")
    query = "--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit"
    return {
        "available": True,
        "count": torch.cuda.device_count(),
        "name": props.name,
        "capability": list(torch.cuda.get_device_capability(0)),
        "memory_gib": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "nvidia_smi": command_output([smi, query, "--format=csv,noheader"]) if smi else None,
    }


def import_core_modules() -> dict[str, str]:
    """Imports every module of CORE_PACKAGES; the error of each that fails (e.g. a missing optional package)."""
    failures = {}
    for package_name in CORE_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            try:
                importlib.import_module(info.name)
            except ImportError as exc:
                failures[info.name] = f"{type(exc).__name__}: {exc}"
    return failures


def section_environment(ctx: Context, section: Section) -> None:
    section.data.update(
        python=platform.python_version(),
        platform=platform.platform(),
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        numpy=np.__version__,
        cpu=cpu_name(),
        cpu_cores=os.cpu_count(),
        load_average=load_average(),
        gpu=gpu_description(),
        cuda_home=build.find_cuda_home(),
        nvcc=nvcc_version(),
        torch_cuda_arch_list=os.environ.get("TORCH_CUDA_ARCH_LIST"),
        torch_extensions_dir=os.environ.get("TORCH_EXTENSIONS_DIR"),
        git_commit=command_output(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
        installed={name: importlib.util.find_spec(name) is not None for name in ("triton", "cupy", "ninja")},
    )
    failures = import_core_modules()
    section.data["core_modules_not_importable"] = failures
    loaded = sorted(name for name in FORBIDDEN_MODULES if name in sys.modules)
    blamed = {module: error for module, error in failures.items() if any(f"'{m}" in error for m in FORBIDDEN_MODULES)}
    passed = not loaded and not blamed
    section.check("the core imports without nerfstudio, cv2 or dataparsers", passed, loaded=loaded, failed=blamed)
    if ctx.cuda or ctx.compile_cuda:
        section.check("a CUDA toolkit (nvcc) is found", section.data["cuda_home"] is not None)


# ----------------------------------------------------------------------------- benchmarks
def profile_split(ctx: Context, fn: Callable[[], object], calls: int, top: int = 12) -> dict:
    """Where the time of ``calls`` calls goes (torch.profiler): the top kernels by CUDA time (on a GPU) and
    the top operators by their own CPU time."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if ctx.cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(calls):
            fn()
        synchronize(ctx)
    events = prof.key_averages()
    split = {"calls": calls, "top_cpu_ops": top_events(events, "self_cpu_time_total", top)}
    if ctx.cuda:
        kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
        split["top_cuda_kernels"] = top_events(kernels, "self_device_time_total", top)
    return split


def top_events(events, key: str, top: int) -> dict:
    """The ``top`` events by ``key`` (microseconds) with their share of the total."""
    total = sum(getattr(e, key) for e in events)
    rows = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:top]
    return {
        "total_ms": total / 1e3,
        "events": [
            {
                "name": e.key[:160],
                "count": e.count,
                "ms": getattr(e, key) / 1e3,
                "share": getattr(e, key) / total if total else 0.0,
            }
            for e in rows
        ],
    }


def playback_targets(results: list[dict], device: str) -> list[dict]:
    """bench_playback's FPS targets for this device, measured or not (information, not checks)."""
    targets = []
    for t_device, points, width, height, fps in bench_playback.TARGETS:
        hit = [r for r in results if (r["points"], r["width"], r["height"]) == (points, width, height)]
        if t_device == device:
            measured = hit[0]["fps"] if hit else None
            met = None if measured is None else measured >= fps
            targets.append(
                {"points": points, "size": f"{width}x{height}", "target_fps": fps, "fps": measured, "met": met}
            )
    return targets


def section_playback_bench(ctx: Context, section: Section) -> None:
    plan = ctx.plan
    args = SimpleNamespace(
        sources=PLAYBACK_SOURCES, layers=PLAYBACK_LAYERS, repeats=plan.playback_repeats, warmup=plan.playback_warmup
    )
    frame, radius = bench_playback.make_frame(plan.playback_points, PLAYBACK_CAMERAS)
    frame = frame.to(ctx.device)
    results = []
    for size in plan.playback_sizes:
        height, width = parse_size(size)
        result = bench_playback.bench_case(frame, height, width, args, ctx.cuda)
        result.update(points=plan.playback_points, width=width, height=height, radius_m=radius)
        results.append(result)
        log(ctx, f"playback-bench: {size}, {plan.playback_points} points: {result['fps']:.1f} FPS")
        ok = result["covered_pixels"] > 0.05 and math.isfinite(result["mean_accumulation"])
        section.check(f"{size}: renders the figure", ok, covered_pixels=result["covered_pixels"])
    height, width = parse_size(plan.playback_sizes[-1])
    profiled = SimpleNamespace(**{**vars(args), "repeats": 1, "warmup": 0})
    section.data.update(
        dtype="float16",
        layers=PLAYBACK_LAYERS,
        cameras=PLAYBACK_CAMERAS,
        sources=PLAYBACK_SOURCES,
        repeats=plan.playback_repeats,
        warmup=plan.playback_warmup,
        results=results,
        targets=playback_targets(results, ctx.device),
        profile_size=plan.playback_sizes[-1],
        profile=profile_split(
            ctx, lambda: bench_playback.bench_case(frame, height, width, profiled, ctx.cuda), plan.profile_calls
        ),
    )


def section_training_bench(ctx: Context, section: Section) -> None:
    plan = ctx.plan
    bench = bench_training.TrainingBench(
        plan.training_points, plan.training_size, TRAINING_SOURCES, 100_000, torch.device(ctx.device)
    )
    first = plan.training_warmup + plan.training_repeats
    steps = [
        bench_training.time_steps(bench, False, 0, plan.training_warmup, plan.training_repeats),
        bench_training.time_steps(bench, True, first, plan.training_warmup, plan.training_repeats),
    ]
    for result in steps:
        label = f"train_cnn={result['train_cnn']}"
        log(ctx, f"training-bench: {label}: {result['median_ms']:.1f} ms per step")
        ok = result["covered_pixels"] > 0.05 and math.isfinite(result["median_ms"])
        section.check(f"{label}: a step renders the figure", ok, covered_pixels=result["covered_pixels"])
    step = iter(range(2 * first, 2 * first + plan.profile_calls))
    section.data.update(
        points=plan.training_points,
        resolution=plan.training_size,
        sources=TRAINING_SOURCES,
        layers=bench.config.layers,
        repeats=plan.training_repeats,
        warmup=plan.training_warmup,
        results=steps,
        profile=profile_split(ctx, lambda: bench.step(next(step), train_cnn=False), plan.profile_calls),
    )


# ------------------------------------------------------------------------------ sanitizer
def run_killable(cmd: Sequence[str], timeout: float, env: dict) -> tuple[int | None, str]:
    """(exit status or None on timeout, stdout + stderr); on timeout the whole process group is killed."""
    proc = subprocess.Popen(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return None, output


def sanitizer_clean(output: str) -> tuple[bool, list[str]]:
    """Whether the sanitizer's summary lines report no error or hazard (and that there is one)."""
    summaries = re.findall(r"(?:ERROR|RACECHECK) SUMMARY: [^\n]*", output)
    counts = [int(n) for line in summaries for n in re.findall(r"(\d+) (?:errors?|hazards?)", line)]
    return bool(summaries) and not any(counts), summaries


def run_sanitizer(ctx: Context, section: Section, sanitizer: str, tool: str) -> None:
    timeout = min(SANITIZER_TIMEOUT_S, ctx.time_left())
    if timeout < 30:
        section.skip(f"{tool}: no errors", f"time budget of {ctx.budget_s:g} s exhausted")
        return
    with tempfile.TemporaryDirectory() as tmp:
        child_report = Path(tmp) / "report.json"
        child = [sys.executable, str(SCRIPT), "--device", "cuda", "--quick", "--output", str(child_report)]
        child += ["--time-budget", str(int(timeout)), "--sections", *SANITIZER_SECTIONS]
        env = dict(os.environ)
        if tool == "memcheck":
            env["PYTORCH_NO_CUDA_MEMORY_CACHING"] = "1"  # every allocation its own, so overruns are seen
        start = time.perf_counter()
        returncode, output = run_killable([sanitizer, "--tool", tool, "--error-exitcode", "99", *child], timeout, env)
        seconds = round(time.perf_counter() - start, 1)
        child_status = json.loads(child_report.read_text())["status"] if child_report.exists() else None
    details = {"seconds": seconds, "returncode": returncode, "child_status": child_status, "output_tail": tail(output)}
    if returncode is None:
        section.skip(f"{tool}: no errors", f"timed out after {timeout:.0f} s", **details)
        return
    clean, summaries = sanitizer_clean(output)
    passed = clean and returncode == 0 and child_status == "passed"
    section.check(f"{tool}: no errors", passed, summaries=summaries, **details)
    log(ctx, f"sanitizer: {tool} {'clean' if passed else 'FAILED'} ({seconds} s)")


def section_sanitizer(ctx: Context, section: Section) -> None:
    sanitizer = find_tool("compute-sanitizer")
    section.data["compute_sanitizer"] = sanitizer
    for tool in SANITIZER_TOOLS:
        if sanitizer is None:
            section.skip(f"{tool}: no errors", "compute-sanitizer not found")
        else:
            run_sanitizer(ctx, section, sanitizer, tool)


# ---------------------------------------------------------------------------------- runner
@dataclass(frozen=True)
class SectionSpec:
    run: Callable[[Context, Section], None]
    needs_cuda: bool = False


SECTIONS = {
    "environment": SectionSpec(section_environment),
    "build": SectionSpec(section_build),
    "small-index": SectionSpec(section_small_index),
    "tie-index": SectionSpec(section_tie_index),
    "production-index": SectionSpec(section_production_index),
    "edge-cases": SectionSpec(section_edge_cases),
    "fused": SectionSpec(section_fused),
    "playback-bench": SectionSpec(section_playback_bench),
    "training-bench": SectionSpec(section_training_bench),
    "sanitizer": SectionSpec(section_sanitizer, needs_cuda=True),
}


def run_section(ctx: Context, name: str, first: bool, report: Report) -> dict:
    """Runs one section (or says why not); its report entry."""
    if SECTIONS[name].needs_cuda and not ctx.cuda:
        return {"status": "skipped", "reason": "no CUDA device"}
    if not first and ctx.time_left() <= 0:
        return {"status": "skipped", "reason": f"time budget of {ctx.budget_s:g} s exhausted"}
    report.set(name, {"status": "running"})
    section = Section(name)
    start = time.perf_counter()
    try:
        SECTIONS[name].run(ctx, section)
    except Exception:  # recorded in the report; the next sections still run
        section.error = traceback.format_exc(limit=8)
    if ctx.cuda:
        torch.cuda.empty_cache()
    return section.entry(time.perf_counter() - start)


def print_failures(entry: dict) -> None:
    for check in entry.get("checks", []):
        if check["status"] == "failed":
            print(f"    failed: {check['name']}", flush=True)
    if "error" in entry:
        print("    " + entry["error"].strip().replace("\n", "\n    "), flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__.split("\n\n")
    parser = argparse.ArgumentParser(
        description="\n\n".join(doc[:3]),
        epilog="\n\n".join(doc[3:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--output", type=Path, default=Path("gpu_report.json"), metavar="PATH", help="JSON report (gpu_report.json)"
    )
    parser.add_argument(
        "--device", choices=["auto", "cuda", "cpu"], default="auto", help="auto: cuda when torch sees a GPU"
    )
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), metavar="NAME", help="default: all, in order")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (tests, the sanitizer's child run)")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=420.0,
        metavar="SECONDS",
        help="skip the sections that would start after this many seconds (default 420)",
    )
    parser.add_argument(
        "--compile-cuda",
        action="store_true",
        help="build: compile the CUDA extension even without a CUDA device (needs nvcc; minutes)",
    )
    args = parser.parse_args(argv)
    if args.time_budget <= 0:
        parser.error("--time-budget must be positive")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL if args.device == "cuda" else DRY_RUN
    ctx = Context(args.device, plan, args.compile_cuda, args.time_budget)
    names = [n for n in SECTIONS if n in args.sections] if args.sections else list(SECTIONS)
    report = Report(args.output, ctx, names, argv)
    log(ctx, f"device {ctx.device}, sizes {plan.name}, time budget {ctx.budget_s:g} s, report {args.output}")
    for i, name in enumerate(names):
        entry = run_section(ctx, name, first=i == 0, report=report)
        report.set(name, entry)
        detail = entry.get("reason") or f"{len(entry['checks'])} checks, {entry['seconds']:.1f} s"
        log(ctx, f"{name}: {entry['status']} ({detail})")
        print_failures(entry)
    status = report.finish()
    log(ctx, f"{status}; report written to {args.output}")
    return 0 if status == "passed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
