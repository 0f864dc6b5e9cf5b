"""``fourk4d-check --data DIR``: check a capture before training (a capture doctor).

Reads the capture with the easymocap-data options ``ns-train`` takes, decodes every image and mask,
reports mask coverage, compares each camera's masks with the hull of the other cameras, and draws
the rig. Exit status: 0 when the capture is fine, 1 when the check found errors (warnings alone do
not fail it), 2 for errors of the command itself (a missing capture folder, a bad option).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dataparsers.easymocap import EasyMocapDataParserConfig
from fourk4d_ns.carving.consistency import ConsistencySettings
from fourk4d_ns.cli.common import CommandOptions, run_command
from fourk4d_ns.integration.capture_check import CaptureCheck, check_capture


@dataclass
class CheckCommand(CommandOptions):
    """Check a capture before training: files, masks, and whether calibration and masks agree."""

    capture: Annotated[EasyMocapDataParserConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=EasyMocapDataParserConfig
    )
    """The capture (--data) and the cameras and frames to check: the easymocap-data options, as ns-train takes them."""
    consistency: ConsistencySettings = field(default_factory=ConsistencySettings)
    """The leave-one-out silhouette check."""
    output: Path | None = None
    """The rig's picture (PNG); default: <data>/fourk4d/check/rig.png."""
    json: Path | None = None
    """Also write the report as JSON to this file."""
    workers: int | None = None
    """Threads decoding files and carving hulls; default: one per CPU core."""

    def main(self) -> int:
        report = check_capture(self.capture, self.consistency, self.output, self.workers)
        console = Console()
        print_report(report, console if console.is_terminal else Console(width=120))  # logs: no wrapped table
        if self.json is not None:
            report.write_json(self.json)
            print(f"report: {self.json}")
        return 0 if report.passed else 1


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_report(report: CaptureCheck, console: Console) -> None:
    """The report, readable: a summary, one row per camera, every file problem, warnings and errors."""
    cameras = report.cameras
    held_out = [c.name for c in cameras if c.held_out]
    sizes = Counter(f"{c.width}x{c.height}" for c in cameras)
    distorted = [c.name for c in cameras if any(c.distortion)]
    console.print(f"[bold]capture[/] {escape(report.scene)}")
    console.print(f"  camera files {', '.join(report.camera_files)}")
    console.print(f"  images {report.images}")
    console.print(f"  masks {report.masks or 'none'} ({report.mask_convention})")
    console.print(
        f"  {len(cameras)} cameras ({len(cameras) - len(held_out)} training, {len(held_out)} held out: "
        f"{', '.join(held_out) or 'none'}), sizes (WxH) "
        + ", ".join(f"{count} at {size}" for size, count in sizes.items())
    )
    console.print(f"  distortion: {'on cameras ' + ', '.join(distorted) if distorted else 'none'}")
    frames = report.frames
    console.print(f"  {len(frames)} frames ({frames[0]} .. {frames[-1]}), {report.files_decoded} files decoded")

    table = Table(title="cameras (mask coverage in % of the image)", title_justify="left", box=box.SIMPLE_HEAD)
    table.pad_edge = False
    for column in ("camera", "role", "WxH", "min %", "median %", "max %", "empty", "full", "IoU", "covered", "status"):
        table.add_column(column, justify="left" if column in ("camera", "role", "status") else "right", no_wrap=True)
    for camera in cameras:
        known = [100 * x for x in camera.coverage if x is not None]
        coverage = ["-"] * 3 if not known else [f"{x:.1f}" for x in (min(known), np.median(known), max(known))]
        table.add_row(
            camera.name,
            "held-out" if camera.held_out else "train",
            f"{camera.width}x{camera.height}",
            *coverage,
            str(len(camera.empty_frames)),
            str(len(camera.full_frames)),
            _ratio(camera.iou),
            _ratio(camera.covered),
            "[red]FLAGGED[/]" if camera.flagged else "ok",
        )
    console.print(table)
    if report.consistency_frames:
        console.print(
            f"silhouettes compared on frames {', '.join(report.consistency_frames)}: a camera is flagged when the "
            f"other cameras' hull covers less of its masks than {report.flag_ratio:.2f} x the median "
            f"({_ratio(report.median_covered)})"
        )
    for title, problems in (
        ("files that do not decode", report.unreadable),
        ("files of the wrong size", report.wrong_size),
    ):
        if problems:
            console.print(f"[bold red]{title} ({len(problems)})[/]")
            for problem in problems:
                console.print(f"  {problem.path}: {problem.problem}", markup=False, highlight=False)
    for warning in report.warnings:
        console.print(f"[yellow]warning[/]: {escape(warning)}")
    for error in report.errors:
        console.print(f"[bold red]error[/]: {escape(error)}")
    console.print(f"picture: {report.picture}")
    verdict = "[green]check passed[/]" if report.passed else f"[bold red]check failed: {len(report.errors)} errors[/]"
    console.print(f"{verdict} ({len(report.warnings)} warnings, {report.seconds:.1f} s)")


def entrypoint(argv: Sequence[str] | None = None) -> int:
    """Console script entry point; returns the exit status."""
    return run_command(CheckCommand, "fourk4d-check", argv)


if __name__ == "__main__":
    raise SystemExit(entrypoint())
