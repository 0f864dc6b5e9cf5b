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

SCHEDULES = {
    "cpu": {"method": "fourk4d-small", "iterations": None, "options": []},
    "cuda": {"method": "fourk4d", "iterations": 30000, "options": ["--pipeline.model.core.feature-cache-size", 512]},
}
"""Method and run length per device: on a CPU, ``fourk4d-small`` as registered (about 10 minutes of
training on 2 cores); on a GPU, the full method for 30,000 steps (None: the method's own length)."""
STRIP_VIEWS = 4
"""Held-out views stacked into the quality picture."""


def quality_strip(eval_images: Path, output: Path, views: int = STRIP_VIEWS) -> Path | None:
    """Stacks ``views`` of ns-eval's ground truth | render | error images (spread over the held-out set)
    into one picture; None when ns-eval wrote none."""
    import numpy as np
    from PIL import Image

    pictures = sorted(eval_images.glob("*_img_*.png"))
    if not pictures:
        return None
    picks = [pictures[i] for i in np.linspace(0, len(pictures) - 1, min(views, len(pictures))).round().astype(int)]
    rows = [np.asarray(Image.open(path).convert("RGB")) for path in picks]
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0))) for row in rows]
    Image.fromarray(np.concatenate(rows, axis=0)).save(output)
    return output


def ns_train_command(
    method: str,
    data: Path,
    output_dir: Path,
    experiment: str,
    stamp: str,
    device: str,
    iterations: int | None,
    eval_every: int,
    save_every: int,
) -> list:
    """``ns-train`` of one run at ``output_dir/experiment/method/stamp``, logging to tensorboard and
    quitting when done (None iterations: the method's own run length)."""
    return [
        BIN / "ns-train",
        method,
        "--data",
        data,
        "--output-dir",
        output_dir,
        "--experiment-name",
        experiment,
        "--timestamp",
        stamp,
        "--machine.device-type",
        device,
        *(["--max-num-iterations", iterations] if iterations else []),
        "--steps-per-eval-image",
        eval_every,
        "--steps-per-save",
        save_every,
        "--vis",
        "tensorboard",
        "--viewer.quit-on-train-completion",
        "True",
    ]


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

    schedule = SCHEDULES[args.device]
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
    train = ns_train_command(
        schedule["method"], args.data, args.output_dir, "demo", stamp, args.device, iterations, 500, 1000
    )
    train += schedule["options"]
    start = time.perf_counter()
    run(train)
    timings["training"] = time.perf_counter() - start

    run_dir = args.output_dir / "demo" / schedule["method"] / stamp
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
    strip = quality_strip(run_dir / "eval_images", run_dir / "quality.png")

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
    length = f"{iterations} iterations" if iterations else "its default length"
    print(f"held-out cameras, {args.device}, ns-train {schedule['method']}, {length}:")
    for key in ("psnr", "psnr_foreground", "coverage", "ssim", "lpips"):
        if key in results:
            print(f"  {key:16s} {results[key]:.4f} (std {results.get(key + '_std', float('nan')):.4f})")
    if "lpips" not in results:
        print("  lpips            unavailable (no VGG-16 weights on this machine)")
    for step, seconds in timings.items():
        print(f"  {step:16s} {seconds / 60:.1f} min")
    print(f"outputs: {run_dir} (config.yml, eval.json, eval_images/, bake/, tensorboard events)")
    print(f"videos:  {videos}/orbit.mp4, bullet-time.mp4, fixed-view.mp4")
    if strip is not None:
        print(f"picture: {strip} (held-out views: ground truth | render | error)")
    print(f"viewer:  ns-viewer --load-config {config}")


if __name__ == "__main__":
    main()
