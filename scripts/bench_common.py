"""Helpers shared by the benchmark scripts: machine description, size parsing, test-figure geometry."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """1-minute load average (None where the platform has none): timings inflate when it exceeds the cores."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def parse_size(text: str) -> tuple[int, int]:
    """(height, width) of "WIDTHxHEIGHT"."""
    w, h = text.lower().split("x")
    return int(h), int(w)


def ellipsoid_area(axes) -> float:
    """Surface area of an ellipsoid with semi-axes (a, b, c) (Knud Thomsen's approximation)."""
    a, b, c = axes
    p = 1.6075
    return 4 * math.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


def time_calls(fn: Callable[[], object], repeats: int, warmup: int, cuda: bool) -> list[float]:
    """Wall times in milliseconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (CUDA synchronized)."""
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return times
