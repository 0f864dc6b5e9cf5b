"""``fourk4d-bake``: bakes a trained fourk4d run for real-time playback (also run after training).

The bake goes to ``<run folder>/bake`` (the folder holding config.yml) unless ``--output`` says
otherwise. See ``fourk4d_ns/playback/bake_format.py`` for what it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fourk4d_ns.cli.common import CommandOptions, run_command
from fourk4d_ns.integration.baking import bake_pipeline
from fourk4d_ns.io.errors import InputError
from fourk4d_ns.playback.bake_format import bake_folder_of


@dataclass
class BakeCommand(CommandOptions):
    """Bake a trained fourk4d run for real-time playback (fourk4d-render, the viewer, fourk4d-export)."""

    load_config: Path
    """config.yml of the training run."""
    output: Path | None = None
    """Bake folder to write (default: bake/ next to config.yml); replaced atomically when done."""
    camera_chunk: int = 8
    """Source cameras whose CNN features are computed at once (lower it to save memory)."""

    def main(self) -> None:
        from nerfstudio.utils.eval_utils import eval_setup

        if not self.load_config.is_file():
            raise InputError(f"{self.load_config}: no such config.yml (give the one of a fourk4d training run)")
        _, pipeline, _, _ = eval_setup(self.load_config, test_mode="inference")
        folder = self.output or bake_folder_of(self.load_config.parent)
        bake_pipeline(pipeline, folder, self.camera_chunk)
        total = sum(p.stat().st_size for p in folder.iterdir())
        print(f"baked {pipeline.model.core.num_frames} frames into {folder} ({total / 2**20:.1f} MiB)")


def entrypoint(argv: Sequence[str] | None = None) -> None:
    """Console script entry point."""
    run_command(BakeCommand, "fourk4d-bake", argv)


if __name__ == "__main__":
    entrypoint()
