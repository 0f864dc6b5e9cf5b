"""The main job on the built-in demo capture: generate it (if missing), carve it, train fourk4d,
evaluate on the held-out cameras, and render the three free-viewpoint videos of the sequence from
its bake (orbit through time, bullet time, fixed view).

Run through ``bash scripts/demo.sh`` (which sets up the environment first). Every step is a
regular command (``fourk4d-demo-scene``, ``fourk4d-carve``, ``ns-train``, ``ns-eval``,
``fourk4d-render``), so each can be repeated by hand with the printed lines. ``ns-train`` bakes the
sequence into ``<run>/bake`` when it finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

BIN = Path(sys.executable).parent

CPU_SCHEDULE = {
    "iterations": 2500,
    "options": [
        "--pipeline.model.max-points-per-frame",
        20000,  # of the ~45k carved surface points per frame
        "--pipeline.model.core.cnn-full-training-steps",
        200,  # published 1000: the CNN is the costliest part on CPU
        "--pipeline.model.core.feature-cache-size",
        512,  # keep every source view's CNN features between CNN updates
    ],
}
"""Sized so that the whole job finishes within 20 minutes on a 2-core CPU (about 0.3 s per step)."""
GPU_SCHEDULE = {"iterations": 30000, "options": ["--pipeline.model.core.feature-cache-size", 512]}


def run(command: list[str]) -> None:
    print("\n$ " + " ".join(shlex.quote(str(c)) for c in command), flush=True)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    subprocess.run([str(c) for c in command], check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/demo"), help="capture folder (written if missing)")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs"), help="where runs are written")
    parser.add_argument(
        "--iterations", type=int, default=None, help="training iterations (default: sized for the device)"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    schedule = GPU_SCHEDULE if args.device == "cuda" else CPU_SCHEDULE
    iterations = args.iterations or schedule["iterations"]
    timings = {}
    start = time.perf_counter()
    if not (args.data / "intri.yml").is_file():
        run([BIN / "fourk4d-demo-scene", "--output", args.data, "--preset", "demo"])
    timings["demo capture"] = time.perf_counter() - start

    start = time.perf_counter()
    run([BIN / "fourk4d-carve", "--data", args.data])
    timings["carving"] = time.perf_counter() - start

    stamp = time.strftime("%Y-%m-%d_%H%M%S")
    train = [
        BIN / "ns-train",
        "fourk4d",
        "--data",
        args.data,
        "--output-dir",
        args.output_dir,
        "--experiment-name",
        "demo",
        "--timestamp",
        stamp,
        "--machine.device-type",
        args.device,
        "--max-num-iterations",
        iterations,
        "--steps-per-eval-image",
        500,
        "--steps-per-save",
        1000,
        "--vis",
        "tensorboard",
        "--viewer.quit-on-train-completion",
        "True",
    ]
    train += schedule["options"]
    start = time.perf_counter()
    run(train)
    timings["training"] = time.perf_counter() - start

    run_dir = args.output_dir / "demo" / "fourk4d" / stamp
    config = run_dir / "config.yml"
    start = time.perf_counter()
    run(
        [
            BIN / "ns-eval",
            "--load-config",
            config,
            "--output-path",
            run_dir / "eval.json",
            "--render-output-path",
            run_dir / "eval_images",
        ]
    )
    timings["evaluation"] = time.perf_counter() - start

    start = time.perf_counter()
    videos = run_dir / "renders"
    run(
        [
            BIN / "fourk4d-render",
            "--mode",
            "orbit",
            "--load-config",
            config,
            "--frames",
            96,
            "--height",
            256,
            "--output",
            videos / "orbit.mp4",
        ]
    )
    run(
        [
            BIN / "fourk4d-render",
            "--mode",
            "bullet-time",
            "--load-config",
            config,
            "--frame",
            12,
            "--frames",
            72,
            "--height",
            256,
            "--output",
            videos / "bullet-time.mp4",
        ]
    )
    run(
        [BIN / "fourk4d-render", "--mode", "fixed-view", "--load-config", config, "--output", videos / "fixed-view.mp4"]
    )
    timings["videos"] = time.perf_counter() - start

    results = json.loads((run_dir / "eval.json").read_text())["results"]
    print("\n=== fourk4d demo ===")
    print(f"held-out cameras, {args.device}, {iterations} iterations:")
    for key in ("psnr", "psnr_foreground", "ssim", "lpips"):
        if key in results:
            print(f"  {key:16s} {results[key]:.4f} (std {results.get(key + '_std', float('nan')):.4f})")
    if "lpips" not in results:
        print("  lpips            unavailable (no VGG-16 weights on this machine)")
    for step, seconds in timings.items():
        print(f"  {step:16s} {seconds / 60:.1f} min")
    print(f"outputs: {run_dir} (config.yml, eval.json, eval_images/, bake/, tensorboard events)")
    print(f"videos:  {videos}/orbit.mp4, bullet-time.mp4, fixed-view.mp4")
    print(f"viewer:  ns-viewer --load-config {config}")


if __name__ == "__main__":
    main()
