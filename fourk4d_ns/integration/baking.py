"""Baking a trained fourk4d pipeline (nerfstudio's model, datamanager and IBR source bank) with
``playback.bake``: the manifest's cameras and settings, and every frame's sources."""

from __future__ import annotations

from pathlib import Path

import torch

from fourk4d_ns.core.ibr import SourceViews
from fourk4d_ns.io.progress import progress_bar
from fourk4d_ns.playback.bake import bake_frames
from fourk4d_ns.playback.bake_format import BakedCamera, BakeManifest, write_bake


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
        BakedCamera(
            name=name,
            K=bank.K[i].tolist(),
            R=bank.R[i].tolist(),
            T=bank.T[i].tolist(),
            height=sizes[i][0],
            width=sizes[i][1],
            baked=i in train,
        )
        for i, name in enumerate(metadata["camera_names"])
        if i in sizes
    ]
    core = model.core
    return BakeManifest(
        frame_names=list(model.frame_names),
        cameras=cameras,
        bounds=core.bounds.tolist(),
        sh_weight=float(core.config.sh_weight),
        sh_degree=int(core.config.sh_degree),
        layers=int(core.config.layers),
        near=float(core.config.near),
        num_sources=int(core.config.num_sources),
        fps=float(model.config.playback_fps),
    )


def bake_pipeline(pipeline, folder: Path, camera_chunk: int = 8, quiet: bool = False) -> Path:
    """Bakes every frame of a fourk4d pipeline into ``folder`` (atomically) and returns it."""
    model, bank = pipeline.model, pipeline.model.sources
    if bank is None:
        raise RuntimeError("the model has no IBR sources attached; load it through FourK4DPipeline")
    baked = list(bank.train_cameras)
    device = model.device

    def sources_of(frame: int) -> SourceViews:
        return bank.views(frame, baked, device)

    manifest = bake_manifest(pipeline)
    frames = bake_frames(model.core, sources_of, camera_chunk=camera_chunk)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), progress_bar("baking frames", manifest.num_frames, enabled=not quiet) as advance:
            write_bake(folder, manifest, frames, progress=lambda _: advance())
    finally:
        model.train(was_training)
    return Path(folder)
