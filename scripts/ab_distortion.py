"""A/B of lens distortion end to end: the same scene recorded with and without distortion trains to
the same held-out quality.

Writes the demo capture twice (``--preset``, the same seed): as pinhole images, and through every
camera's own barrel lens (``fourk4d-demo-scene --distorted``: distorted images and masks on disk,
``dist_`` in intri.yml). Each is carved (``fourk4d-carve``: distortion in the projection onto the
distorted masks), trained with the demo job's method (``ns-train fourk4d-small``; images are
undistorted at load into the capture's own K) and evaluated with ``ns-eval`` against the
undistorted held-out images. Prints psnr, psnr_foreground and ssim of both and their difference.

    .venv/bin/python scripts/ab_distortion.py                       # demo preset, 2,500 iterations
    .venv/bin/python scripts/ab_distortion.py --iterations 1000 --work-dir /tmp/ab
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from run_demo import BIN, ns_train_command, run

METRICS = ("psnr", "psnr_foreground", "ssim")
VARIANTS = {"pinhole": [], "distorted": ["--distorted"]}
"""Capture name -> extra ``fourk4d-demo-scene`` options."""


def train_and_evaluate(data: Path, output_dir: Path, name: str, iterations: int) -> dict:
    """Carve, train with the CPU schedule and evaluate one capture; returns ns-eval's results."""
    run([BIN / "fourk4d-carve", "--data", data])
    stamp = "ab"
    run(ns_train_command("fourk4d-small", data, output_dir, name, stamp, "cpu", iterations, iterations, iterations))
    run_dir = output_dir / name / "fourk4d-small" / stamp
    run([BIN / "ns-eval", "--load-config", run_dir / "config.yml", "--output-path", run_dir / "eval.json"])
    return json.loads((run_dir / "eval.json").read_text())["results"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo", choices=["demo", "tiny"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--work-dir", type=Path, default=Path("outputs/ab_distortion"), help="captures and runs")
    args = parser.parse_args()

    results, minutes = {}, {}
    for name, options in VARIANTS.items():
        start = time.perf_counter()
        data = args.work_dir / "data" / name
        if not (data / "intri.yml").is_file():
            command = [BIN / "fourk4d-demo-scene", "--output", data, "--preset", args.preset, "--seed", args.seed]
            run([*command, "--no-progress", *options])
        results[name] = train_and_evaluate(data, args.work_dir / "runs", name, args.iterations)
        minutes[name] = (time.perf_counter() - start) / 60

    print(f"\n=== distortion A/B: '{args.preset}' preset, seed {args.seed}, CPU, {args.iterations} iterations ===")
    print(f"  {'':16s} {'pinhole':>10s} {'distorted':>10s} {'difference':>10s}")
    for key in METRICS:
        a, b = results["pinhole"][key], results["distorted"][key]
        spread = f"(std {results['pinhole'].get(key + '_std', float('nan')):.3f} over held-out images)"
        print(f"  {key:16s} {a:10.4f} {b:10.4f} {b - a:+10.4f}  {spread}")
    print("  " + ", ".join(f"{name}: {value:.1f} min" for name, value in minutes.items()))


if __name__ == "__main__":
    sys.exit(main())
