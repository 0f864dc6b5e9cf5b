"""Shared fixtures: small captures written to temporary folders, and the CUDA extension.

Only torch, numpy and the project's core are imported at module level: OpenCV, nerfstudio and the
capture readers are imported where they are used, so the GPU tests collect and run where only torch
is installed (tests/test_gpu_verify.py checks this)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from fourk4d_ns.core.camera import look_at
from fourk4d_ns.rasterizer import build as rasterizer_build

if TYPE_CHECKING:
    from dataparsers.easymocap_cameras import CameraRig


def cuda_toolchain_missing() -> str:
    """Why the CUDA extension cannot be built here ("" when it can)."""
    if torch.version.cuda is None:
        return "this torch build has no CUDA support"
    if rasterizer_build.find_cuda_home() is None:
        return "no CUDA toolkit (nvcc) found"
    return ""


@pytest.fixture(scope="session")
def cuda_extension():
    """The compiled CUDA extension (minutes on first use, then cached); skips without a toolchain."""
    reason = cuda_toolchain_missing()
    if reason:
        pytest.skip(reason)
    return rasterizer_build.load_cuda_extension()


def ring_rig(count: int, height: int, width: int, radius: float = 3.0, dist=None, seed: int = 0) -> CameraRig:
    """Cameras on a jittered ring looking at the origin, with optional distortion."""
    from dataparsers.easymocap_cameras import CameraRig

    rng = np.random.default_rng(seed)
    Rs, Ts, Ks = [], [], []
    for i in range(count):
        angle = 2 * np.pi * i / count + rng.uniform(-0.1, 0.1)
        center = np.array([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(-0.5, 0.5)])
        R, T = look_at(center, rng.normal(0, 0.05, 3))
        Rs.append(R)
        Ts.append(T)
        focal = rng.uniform(0.9, 1.1) * width
        Ks.append(
            [
                [focal, 0, width / 2 + rng.uniform(-2, 2)],
                [0, focal * rng.uniform(0.98, 1.02), height / 2 + rng.uniform(-2, 2)],
                [0, 0, 1],
            ]
        )
    dist = np.zeros((count, 5)) if dist is None else np.tile(np.asarray(dist, dtype=np.float64), (count, 1))
    return CameraRig(
        names=[f"{i:02d}" for i in range(count)],
        K=np.asarray(Ks, dtype=np.float64),
        dist=dist,
        R=np.stack(Rs),
        T=np.stack(Ts),
        height=np.full(count, height),
        width=np.full(count, width),
    )


def ray_miss_in_pixels(cameras, index: int, point: np.ndarray, u: float, v: float) -> float:
    """How far (in pixels at the point's depth) the nerfstudio ray through (u, v) passes from ``point``."""
    coords = torch.tensor([[v, u]], dtype=torch.float32)
    rays = cameras.generate_rays(camera_indices=index, coords=coords)
    origin = rays.origins.reshape(3).double().numpy()
    direction = rays.directions.reshape(3).double().numpy()
    offset = point - origin
    along = offset @ direction / (direction @ direction)
    miss = np.linalg.norm(offset - along * direction)
    return float(miss / (along * np.linalg.norm(direction)) * float(cameras.fx[index]))


def write_synthetic_capture(
    root: Path, rig: CameraRig, frames: int, spelling: str = "easymocap", masks: bool = True, image_ext: str = ".png"
) -> Path:
    """A capture of random images (and disc masks) for the given rig; returns its folder."""
    import cv2

    from dataparsers.easymocap_cameras import write_cameras

    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    write_cameras(root, rig, spelling=spelling)
    for c, name in enumerate(rig.names):
        h, w = int(rig.height[c]), int(rig.width[c])
        for f in range(frames):
            (root / "images" / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(root / "images" / name / f"{f:06d}{image_ext}"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            )
            if masks:
                (root / "masks" / name).mkdir(parents=True, exist_ok=True)
                mask = np.zeros((h, w), np.uint8)
                cv2.circle(mask, (w // 2, h // 2), min(h, w) // 3, 255, -1)
                cv2.imwrite(str(root / "masks" / name / f"{f:06d}.png"), mask)
    return root


def carve(scene: Path, settings=None, progress: bool = False, **capture_options):
    """Carves the training views of a capture, as ns-train fourk4d does (easymocap-data ``capture_options``)."""
    from dataparsers.easymocap import EasyMocapDataParserConfig
    from fourk4d_ns.integration.carving import carve_training_views

    outputs = EasyMocapDataParserConfig(data=Path(scene), **capture_options).setup().get_dataparser_outputs("train")
    return carve_training_views(outputs, settings, progress=progress)


@pytest.fixture
def synthetic_capture(tmp_path: Path) -> Path:
    """Five cameras, three frames, 24x32 random images with masks."""
    return write_synthetic_capture(tmp_path / "capture", ring_rig(5, 24, 32), frames=3)


@pytest.fixture(scope="session")
def tiny_demo_capture(tmp_path_factory) -> Path:
    """The demo generator's tiny preset, written once per test session (treat as read-only)."""
    from fourk4d_ns.demo.capture import write_demo_capture

    return write_demo_capture(tmp_path_factory.mktemp("demo") / "tiny", preset="tiny", seed=0)


@pytest.fixture(scope="session")
def demo_flavors(tmp_path_factory) -> dict[str, Path]:
    """The tiny preset (seed 0) as public captures write it (treat as read-only): the dna-rendering,
    zju-mocap and nhr flavours, and the default flavour through distorting lenses ("distorted")."""
    from fourk4d_ns.demo.capture import write_demo_capture

    root = tmp_path_factory.mktemp("flavors")
    captures = {
        flavor: write_demo_capture(root / flavor, preset="tiny", progress=False, flavor=flavor)
        for flavor in ("dna-rendering", "zju-mocap", "nhr")
    }
    captures["distorted"] = write_demo_capture(root / "distorted", preset="tiny", progress=False, distorted=True)
    return captures


@pytest.fixture
def tiny_demo_copy(tiny_demo_capture: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the tiny demo capture."""
    return Path(shutil.copytree(tiny_demo_capture, tmp_path / "tiny"))


SMALL_MODEL = {"spatial_resolutions": (16, 32), "layers": 8}
"""Feature-plane resolutions and network width small enough for CPU tests."""


def build_pipeline(data: Path, seed: int = 0, **dataparser_options):
    """The fourk4d pipeline of ``ns-train fourk4d --data DATA`` (small settings), after ``torch.manual_seed(seed)``
    as nerfstudio's trainer seeds it."""
    import copy

    from nerfstudio.configs.method_configs import all_methods

    config = copy.deepcopy(all_methods["fourk4d"]).pipeline
    config.datamanager.data = data
    config.datamanager.carve.fine_resolution = 64
    for key, value in dataparser_options.items():
        setattr(config.datamanager.dataparser, key, value)
    config.model.max_points_per_frame = 2000
    for key, value in SMALL_MODEL.items():
        setattr(config.model.core, key, value)
    torch.manual_seed(seed)
    return config.setup(device="cpu", test_mode="val", world_size=1, local_rank=0)


def train_steps(pipeline, steps: int) -> list[float]:
    """``steps`` optimizer steps of nerfstudio's training loop (the method's optimizers and learning rates,
    no schedules or callbacks) from step 0; returns the total loss of each step."""
    from nerfstudio.configs.method_configs import all_methods
    from nerfstudio.engine.optimizers import Optimizers

    optimizers = Optimizers(all_methods["fourk4d"].optimizers, pipeline.get_param_groups())
    pipeline.train()
    losses = []
    for step in range(steps):
        optimizers.zero_grad_all()
        _, loss_dict, _ = pipeline.get_train_loss_dict(step)
        loss = sum(loss_dict.values())
        loss.backward()
        optimizers.optimizer_step_all()
        losses.append(float(loss))
    return losses


def held_out_psnr(pipeline, metric: str = "psnr") -> float:
    """Mean PSNR (``psnr`` or ``psnr_foreground``) over the held-out images, as ns-eval computes it."""
    pipeline.eval()
    values = []
    with torch.no_grad():
        for camera, batch in pipeline.datamanager.fixed_indices_eval_dataloader:
            outputs = pipeline.model.get_outputs_for_camera(camera)
            metrics, _ = pipeline.model.get_image_metrics_and_images(outputs, batch)
            values.append(float(metrics[metric]))
    return float(np.mean(values))
