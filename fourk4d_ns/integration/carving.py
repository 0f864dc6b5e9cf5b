"""Carving exactly the views training uses: the training cameras at the selected frames of a
nerfstudio dataparser's "train" split (its images/masks folders, camera and frame selection and
downscaling included; held-out cameras never vote)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs

from dataparsers.easymocap_layout import no_masks_error
from fourk4d_ns.carving.capture import CarvedCapture, CarveViews, carve_capture
from fourk4d_ns.carving.visual_hull import CarveSettings
from fourk4d_ns.integration.cameras import opencv_distortion, opencv_from_cameras


def training_views(outputs: DataparserOutputs) -> CarveViews:
    """The cameras and mask files of a "train" split, one row per camera, one column per frame."""
    metadata = outputs.metadata
    scene = Path(metadata["scene_dir"])
    if outputs.mask_filenames is None:
        raise no_masks_error(scene)
    cameras = outputs.cameras
    camera_index = cameras.metadata["camera_index"].reshape(-1).tolist()
    frame_index = cameras.metadata["frame_index"].reshape(-1).tolist()
    chosen = sorted(set(camera_index))
    first = [camera_index.index(camera) for camera in chosen]  # one image of each camera for its parameters
    K, R, T = (x[first].double().numpy() for x in opencv_from_cameras(cameras))
    mask_of = {pair: Path(path) for pair, path in zip(zip(camera_index, frame_index), outputs.mask_filenames)}
    masks = [[mask_of[camera, frame] for frame in range(int(metadata["num_frames"]))] for camera in chosen]
    return CarveViews(
        scene=scene,
        camera_names=[metadata["camera_names"][c] for c in chosen],
        frame_names=list(metadata["frame_names"]),
        K=K,
        R=R,
        T=T,
        dist=opencv_distortion(cameras)[first].double().numpy(),
        height=cameras.height.reshape(-1)[first].numpy().astype(np.int64),
        width=cameras.width.reshape(-1)[first].numpy().astype(np.int64),
        mask_paths=masks,
    )


def carve_training_views(
    outputs: DataparserOutputs, settings: CarveSettings | None = None, force: bool = False, progress: bool = True
) -> CarvedCapture:
    """Carves (or loads from the capture's cache) the visual hulls of a "train" split's views."""
    return carve_capture(training_views(outputs), settings, force=force, progress=progress)
