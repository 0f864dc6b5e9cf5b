"""A/B of the quality settings of fourk4d-small: each change alone and all together, on the demo capture.

Every variant is one ``ns-train fourk4d-small`` run on the same capture with the same seed and
iteration count, then ``ns-eval`` on the held-out cameras. "published" sets every switch to the
published method's behaviour; each other variant changes one switch from there; "all" is the
method's defaults. Prints held-out PSNR (full frame), foreground PSNR, coverage (fraction of
silhouette pixels with accumulation >= 0.9), SSIM, training minutes and points per frame.
Runs already evaluated under ``--work-dir`` are reused, so the table can be extended run by run.

    .venv/bin/python scripts/ab_quality.py                          # every variant, 2,500 iterations
    .venv/bin/python scripts/ab_quality.py --variants published all --iterations 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from run_demo import BIN, ns_train_command, run

PUBLISHED = [
    "--pipeline.model.point-subset",
    "random",
    "--pipeline.model.core.ibr-visibility",
    "False",
    "--pipeline.model.mask-loss-weight",
    "1e-3",
    "--pipeline.model.core.radius-max-fraction",
    "0.0075",
    "--pipeline.model.start-radius-spacings",
    "1.0",
    "--optimizers.points.optimizer.lr",
    "1e-5",
]
"""The published behaviour of every switch the variants change."""


def changed(**switches: str) -> list[str]:
    """PUBLISHED with some switches replaced (keys: model option names, "__" for a dot; points_lr)."""
    options = list(PUBLISHED)
    for name, value in switches.items():
        flag = "--pipeline.model." + name.replace("__", ".").replace("_", "-")
        if name == "points_lr":
            flag = "--optimizers.points.optimizer.lr"
        if flag in options:
            options[options.index(flag) + 1] = value
        else:
            options += [flag, value]
    return options


VARIANTS = {
    "published": PUBLISHED,
    "even-points": changed(point_subset="even"),
    "visibility": changed(core__ibr_visibility="True"),
    "mask-loss-1e-2": changed(mask_loss_weight="1e-2"),
    "radius-0.015": changed(core__radius_max_fraction="0.015"),
    "start-radius-1.5": changed(start_radius_spacings="1.5"),
    "points-lr-5e-4": changed(points_lr="5e-4"),
    "points-lr-2e-3": changed(points_lr="2e-3"),
    "all": [],
}
"""Variant name -> extra ``ns-train fourk4d-small`` options."""

METRICS = ("psnr", "psnr_foreground", "coverage", "ssim")


def train_and_evaluate(data: Path, runs: Path, name: str, options: list[str], iterations: int) -> dict:
    """One variant: train, evaluate; returns ns-eval's results plus the training minutes."""
    stamp = "ab"
    start = time.perf_counter()
    command = ns_train_command("fourk4d-small", data, runs, name, stamp, "cpu", iterations, iterations, iterations)
    run([*command, "--pipeline.model.bake-after-training", "False", *options])
    minutes = (time.perf_counter() - start) / 60
    run_dir = runs / name / "fourk4d-small" / stamp
    run([BIN / "ns-eval", "--load-config", run_dir / "config.yml", "--output-path", run_dir / "eval.json"])
    results = json.loads((run_dir / "eval.json").read_text())["results"]
    return {**results, "train_minutes": minutes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/demo"), help="carved capture (the demo's)")
    parser.add_argument("--iterations", type=int, default=2500)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--work-dir", type=Path, default=Path("outputs/ab_quality"), help="runs and results")
    args = parser.parse_args()

    if not (args.data / "intri.yml").is_file():
        run([BIN / "fourk4d-demo-scene", "--output", args.data, "--preset", "demo", "--no-progress"])
    run([BIN / "fourk4d-carve", "--data", args.data])
    table = {}
    for name in args.variants:
        record = args.work_dir / f"{name}-{args.iterations}.json"
        if not record.is_file():
            results = train_and_evaluate(args.data, args.work_dir / "runs", name, VARIANTS[name], args.iterations)
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps(results, indent=2))
        table[name] = json.loads(record.read_text())

    print(f"\n=== quality A/B: fourk4d-small on {args.data}, CPU, {args.iterations} iterations ===")
    print(f"  {'variant':16s} " + " ".join(f"{k:>16s}" for k in (*METRICS, "train min")))
    for name, results in table.items():
        cells = [f"{results[k]:16.4f}" for k in METRICS] + [f"{results['train_minutes']:16.1f}"]
        print(f"  {name:16s} " + " ".join(cells))


if __name__ == "__main__":
    sys.exit(main())
