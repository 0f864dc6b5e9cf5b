"""``fourk4d-bake``: bakes a trained fourk4d run for real-time playback (also run after training).

The bake goes to ``<run folder>/bake`` (the folder holding config.yml) unless ``--output`` says
otherwise. See ``fourk4d_ns/playback/bake_format.py`` for what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import tyro
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from fourk4d_ns.core.ibr import SourceViews
from fourk4d_ns.playback.bake import bake_frames
from fourk4d_ns.playback.bake_format import BakedCamera, BakeManifest, write_bake

BAKE_FOLDER = "bake"
"""Name of the bake folder inside a run folder."""


def bake_folder_of(config_path: Path) -> Path:
    """The default bake folder of a run, next to its config.yml."""
    return Path(config_path).parent / BAKE_FOLDER


def _camera_sizes(datamanager) -> dict[int, tuple[int, int]]:
    sizes = {}
    for outputs in (datamanager.train_dataparser_outputs, datamanager.eval_dataparser_outputs):
        cams = outputs.cameras
        for i, index in enumerate(cams.metadata["camera_index"].reshape(-1).tolist()):
            sizes[int(index)] = (int(cams.height[i]), int(cams.width[i]))
    return sizes


def bake_manifest(pipeline) -> BakeManifest:
    """The manifest of a pipeline's bake (frames, every camera, render settings), without frame records."""
    model, bank = pipeline.model, pipeline.model.sources
    metadata = pipeline.datamanager.train_dataparser_outputs.metadata
    sizes = _camera_sizes(pipeline.datamanager)
    train = set(bank.train_cameras)
    cameras = [
        BakedCamera(name=name, K=bank.K[i].tolist(), R=bank.R[i].tolist(), T=bank.T[i].tolist(),
                    height=sizes[i][0], width=sizes[i][1], baked=i in train)
        for i, name in enumerate(metadata["camera_names"])
        if i in sizes
    ]
    core = model.core
    return BakeManifest(frame_names=list(model.frame_names), cameras=cameras, bounds=core.bounds.tolist(),
                        sh_weight=float(core.config.sh_weight), layers=int(core.config.layers),
                        near=float(core.config.near), num_sources=int(core.config.num_sources),
                        fps=float(model.config.playback_fps))


def bake_pipeline(pipeline, folder: Path, camera_chunk: int = 8, quiet: bool = False) -> Path:
    """Bakes every frame of a fourk4d pipeline into ``folder`` (atomically) and returns it."""
    model, bank = pipeline.model, pipeline.model.sources
    if bank is None:
        raise RuntimeError("the model has no IBR sources attached; load it through FourK4DPipeline")
    baked = list(bank.train_cameras)
    device = model.device

    def sources_of(frame: int) -> SourceViews:
        return SourceViews(images=bank.images_of(frame, baked, device), K=bank.K[baked].to(device),
                           R=bank.R[baked].to(device), T=bank.T[baked].to(device))

    manifest = bake_manifest(pipeline)
    frames = bake_frames(model.core, sources_of, camera_chunk=camera_chunk)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), Progress(TextColumn("baking frames"), BarColumn(), MofNCompleteColumn(),
                                       TimeRemainingColumn(), disable=quiet) as progress:
            task = progress.add_task("bake", total=manifest.num_frames)
            write_bake(folder, manifest, frames, progress=lambda _: progress.advance(task))
    finally:
        model.train(was_training)
    return Path(folder)


@dataclass
class BakeCommand:
    """Bake a trained fourk4d run for real-time playback (fourk4d-render, the viewer, fourk4d-export)."""

    load_config: Path
    """config.yml of the training run."""
    output: Optional[Path] = None
    """Bake folder to write (default: bake/ next to config.yml); replaced atomically when done."""
    camera_chunk: int = 8
    """Source cameras whose CNN features are computed at once (lower it to save memory)."""

    def main(self) -> None:
        from nerfstudio.utils.eval_utils import eval_setup

        _, pipeline, _, _ = eval_setup(self.load_config, test_mode="inference")
        folder = self.output or bake_folder_of(self.load_config)
        bake_pipeline(pipeline, folder, self.camera_chunk)
        total = sum(p.stat().st_size for p in folder.iterdir())
        print(f"baked {pipeline.model.core.num_frames} frames into {folder} ({total / 2**20:.1f} MiB)")


def entrypoint() -> None:
    """Console script entry point."""
    tyro.cli(BakeCommand).main()


if __name__ == "__main__":
    entrypoint()
