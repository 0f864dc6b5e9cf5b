"""``fourk4d-carve --data DIR``: carve the visual hulls of a capture's training views and store their tight bounds.

Carving sees what ``ns-train fourk4d`` trains on: the same dataparser options (image and mask
folders, camera and frame selection, held-out cameras, downscaling) select the same views, and
training then reuses this command's cache.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import tyro

from dataparsers.easymocap import EasyMocapDataParserConfig
from fourk4d_ns.carving.visual_hull import CarveSettings
from fourk4d_ns.cli.common import CommandOptions, run_command
from fourk4d_ns.integration.carving import carve_training_views


@dataclass
class CarveCommand(CommandOptions):
    """Carve per-frame visual hulls of a capture's training views and cache them in the capture folder."""

    capture: Annotated[EasyMocapDataParserConfig, tyro.conf.OmitArgPrefixes] = field(
        default_factory=EasyMocapDataParserConfig
    )
    """The capture (--data) and which of its views to carve: the easymocap-data options, as given to ns-train."""
    settings: CarveSettings = field(default_factory=CarveSettings)
    """Carving thresholds and resolutions."""
    force: bool = False
    """Carve again even when a cached result matches the inputs."""

    def main(self) -> None:
        start = time.perf_counter()
        outputs = self.capture.setup().get_dataparser_outputs(split="train")
        carved = carve_training_views(outputs, self.settings, force=self.force)
        summary = carved.summary
        counts = [entry["surface_points"] for entry in summary["frames"].values()]
        lower, upper = carved.bounds
        print(
            f"carved {len(counts)} frames with {len(summary['cameras'])} cameras in {time.perf_counter() - start:.1f} s"
        )
        print(f"fine voxel {summary['fine_voxel_size']:.4g}, surface points per frame {min(counts)}..{max(counts)}")
        print(f"bounds min {lower.round(4).tolist()} max {upper.round(4).tolist()}")
        print(f"cache: {carved.folder}")


def entrypoint(argv: Sequence[str] | None = None) -> None:
    """Console script entry point."""
    run_command(CarveCommand, "fourk4d-carve", argv)


if __name__ == "__main__":
    entrypoint()
