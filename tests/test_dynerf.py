"""The dyn3d-data dataparser: LLFF poses_bounds.npy, camera videos, splits, scaling, bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from conftest import look_at, ray_miss_in_pixels

from dataparsers.dynerf import DyNeRFDataParserConfig
from dataparsers.llff_poses import read_poses_bounds
from fourk4d_ns.demo.capture import PRESETS, write_demo_capture
from fourk4d_ns.demo.video_layouts import CRF
from fourk4d_ns.io.errors import CaptureError
from fourk4d_ns.io.images import read_image
from fourk4d_ns.io.video import available_encoder, write_video

TINY = PRESETS["tiny"]
NUM_CAMERAS = TINY.layout.train_cameras + TINY.layout.test_cameras


def parse(data: Path, split: str = "train", **options):
    return DyNeRFDataParserConfig(data=data, **options).setup().get_dataparser_outputs(split)


@pytest.fixture(scope="module")
def demo_dynerf(tmp_path_factory) -> Path:
    """The tiny demo capture (seed 0) as a DyNeRF scene (treat as read-only apart from its cache)."""
    return write_demo_capture(
        tmp_path_factory.mktemp("dynerf") / "scene", preset="tiny", videos="dynerf", progress=False
    )


@pytest.fixture
def dynerf_copy(demo_dynerf: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(demo_dynerf, tmp_path / "scene", ignore=shutil.ignore_patterns("fourk4d")))


def test_registered_with_nerfstudio():
    from nerfstudio.configs.dataparser_configs import all_dataparsers

    assert isinstance(all_dataparsers["dyn3d-data"], DyNeRFDataParserConfig)


def opencv_to_llff_row(R: np.ndarray, T: np.ndarray, height: int, width: int, focal: float, near: float, far: float):
    """A poses_bounds.npy row built by hand from an OpenCV world-to-camera (R, T): the camera's axes in
    world coordinates are the rows of R (x right, y down, z forward); LLFF wants [down, right, back]."""
    right, down, forward = R[0], R[1], R[2]
    center = -R.T @ T
    pose = np.stack([down, right, -forward, center, [height, width, focal]], axis=1)  # 3x5, columns as above
    return np.concatenate([pose.reshape(-1), [near, far]])


@pytest.mark.parametrize("downscale_factor", [1.0, 2.0])
def test_llff_poses_round_trip_through_nerfstudio_cameras(tmp_path: Path, downscale_factor: float):
    """A known point projects, through the parsed camera, to the pixel the OpenCV camera puts it at."""
    rng = np.random.default_rng(0)
    height, width, count = 24, 32, 4
    focals = rng.uniform(0.8, 1.2, count) * width
    rotations, translations, rows = [], [], []
    for i, focal in enumerate(focals):
        center = np.array([rng.uniform(-1, 1), -4.0 + rng.uniform(-0.3, 0.3), rng.uniform(-0.5, 0.5)])
        R, T = look_at(center, rng.normal(0, 0.1, 3))
        rotations.append(R)
        translations.append(T)
        # The poses refer to twice the video's resolution (as DyNeRF's hwf refers to the full 2704x2028).
        rows.append(opencv_to_llff_row(R, T, 2 * height, 2 * width, 2 * focal, near=2.0 + i, far=8.0))
    np.save(tmp_path / "poses_bounds.npy", np.stack(rows))
    frames = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8)] * 2
    for i in range(count):
        write_video(
            tmp_path / f"cam{i:02d}.mp4", frames, 30.0, available_encoder(("libx264",)), crf=CRF, full_chroma=True
        )

    outputs = parse(tmp_path, eval_cameras=(), downscale_factor=downscale_factor)
    cameras = outputs.cameras
    assert int(cameras.width[0]) == width / downscale_factor and int(cameras.height[0]) == height / downscale_factor
    scale, transform = outputs.dataparser_scale, outputs.dataparser_transform.double().numpy()
    assert scale == pytest.approx((4 / 3) / 2.0)  # the nearest bound (2.0) moves to depth 4/3
    assert outputs.metadata["near"] == pytest.approx(4 / 3)
    for index in range(count):
        for point in rng.uniform(-0.5, 0.5, (10, 3)):
            camera_point = rotations[index] @ point + translations[index]
            u = focals[index] * camera_point[0] / camera_point[2] + width / 2  # principal point: image center
            v = focals[index] * camera_point[1] / camera_point[2] + height / 2
            world_point = scale * (transform[:, :3] @ point + transform[:, 3])
            miss = ray_miss_in_pixels(cameras, index, world_point, u / downscale_factor, v / downscale_factor)
            assert miss < 0.02, (index, miss)


def test_splits_times_frames_and_bounds(demo_dynerf: Path):
    train = parse(demo_dynerf, "train", downscale_factor=1)
    test = parse(demo_dynerf, "test", downscale_factor=1)
    names = [f"cam{i:02d}" for i in range(NUM_CAMERAS)]
    assert train.metadata["camera_names"] == names
    assert train.metadata["eval_cameras"] == [0] and train.metadata["train_cameras"] == list(range(1, NUM_CAMERAS))
    assert len(train.image_filenames) == (NUM_CAMERAS - 1) * TINY.num_frames
    assert len(test.image_filenames) == TINY.num_frames and all("cam00" in p.parts for p in test.image_filenames)
    assert train.mask_filenames is None
    assert torch.allclose(test.cameras.times.flatten(), torch.linspace(0, 1, TINY.num_frames))
    assert DyNeRFDataParserConfig(data=demo_dynerf).setup().includes_time

    near_far = train.metadata["near_far"]
    assert near_far.shape == (NUM_CAMERAS, 2) and train.metadata["near"] == pytest.approx(4 / 3)
    centers = torch.cat(
        [test.cameras.camera_to_worlds[:1, :, 3], train.cameras.camera_to_worlds[: NUM_CAMERAS - 1, :, 3]]
    )
    assert torch.allclose(centers.mean(0), torch.zeros(3), atol=1e-5)  # centered on the mean camera center
    # The scene box spans every camera's view between its bounds, e.g. the optical axes at mid-depth.
    axes = -torch.cat(
        [test.cameras.camera_to_worlds[:1, :, 2], train.cameras.camera_to_worlds[: NUM_CAMERAS - 1, :, 2]]
    )
    middle = centers + axes * torch.as_tensor(near_far.mean(1), dtype=torch.float32)[:, None]
    box = train.scene_box.aabb
    assert torch.all(middle >= box[0]) and torch.all(middle <= box[1])

    stepped = parse(demo_dynerf, "train", downscale_factor=1, frame_start=1, frame_step=2)
    assert stepped.metadata["frame_names"] == ["000001", "000003"]
    assert stepped.cameras.times.flatten().unique().tolist() == [0.0, 1.0]
    assert stepped.image_filenames[0].parts[-2:] == ("cam01", "000001.jpg")


def test_original_world_kept_on_request(demo_dynerf: Path):
    poses = read_poses_bounds(demo_dynerf / "poses_bounds.npy")
    outputs = parse(demo_dynerf, "train", downscale_factor=1, center_cameras=False, scene_scale=1.0)
    expected = torch.as_tensor(poses.camera_to_world[1:], dtype=torch.float32)  # cam00 is held out
    assert torch.allclose(outputs.cameras.camera_to_worlds[: NUM_CAMERAS - 1], expected, atol=1e-6)
    np.testing.assert_allclose(outputs.metadata["near_far"], poses.near_far)


def test_decoded_frames_match_the_rendered_images(demo_dynerf: Path, tiny_demo_capture: Path):
    outputs = parse(demo_dynerf, "train", downscale_factor=1)
    for path, camera, frame in zip(
        outputs.image_filenames,
        outputs.cameras.metadata["camera_index"].flatten(),
        outputs.cameras.metadata["frame_index"].flatten(),
    ):
        rendered = read_image(tiny_demo_capture / "images" / f"{int(camera):02d}" / f"{int(frame):06d}.png")
        assert np.abs(read_image(path).astype(float) - rendered).mean() < 2.5, path


# --- bad input ---------------------------------------------------------------------------------


def test_pose_and_video_counts_must_agree(dynerf_copy: Path):
    (dynerf_copy / "cam03.mp4").unlink()
    with pytest.raises(CaptureError, match=f"{NUM_CAMERAS} cameras but the scene has {NUM_CAMERAS - 1} videos") as info:
        parse(dynerf_copy)
    assert "poses_bounds.npy" in str(info.value)


def test_malformed_poses_bounds(dynerf_copy: Path):
    np.save(dynerf_copy / "poses_bounds.npy", np.zeros((NUM_CAMERAS, 15)))
    with pytest.raises(CaptureError, match=r"expected an \[N,17\] array") as info:
        parse(dynerf_copy)
    assert "poses_bounds.npy" in str(info.value)


def test_unknown_eval_camera(dynerf_copy: Path):
    with pytest.raises(CaptureError, match="evaluation cameras"):
        parse(dynerf_copy, eval_cameras=("cam99",))


def test_corrupt_camera_video(dynerf_copy: Path):
    (dynerf_copy / "cam02.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(CaptureError) as info:
        parse(dynerf_copy)
    assert str(dynerf_copy / "cam02.mp4") in str(info.value)


# --- end to end --------------------------------------------------------------------------------


def test_ns_train_nerfacto_starts_on_a_dynerf_scene(dynerf_copy: Path, tmp_path: Path):
    """nerfacto trains for two iterations on CPU with dyn3d-data as its dataparser."""
    # nerfacto builds LPIPS (AlexNet) and would download its weights; offline, a randomly initialized
    # state dict under the expected cache name stands in (the LPIPS values are then meaningless).
    checkpoints = tmp_path / "torch_home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(torchvision.models.alexnet().state_dict(), checkpoints / "alexnet-owt-7be5be79.pth")
    command = [
        str(Path(sys.executable).parent / "ns-train"),
        "nerfacto",
        "--data",
        str(dynerf_copy),
        "--output-dir",
        str(tmp_path / "outputs"),
        "--machine.device-type",
        "cpu",
        "--max-num-iterations",
        "2",
        "--vis",
        "tensorboard",
        "--viewer.quit-on-train-completion",
        "True",
        "--pipeline.datamanager.train-num-rays-per-batch",
        "256",
        "--pipeline.model.eval-num-rays-per-chunk",
        "256",
        "dyn3d-data",
        "--downscale-factor",
        "1",
    ]
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = next((tmp_path / "outputs").rglob("config.yml")).parent
    assert list((run / "nerfstudio_models").glob("step-*.ckpt"))
    assert (run / "dataparser_transforms.json").is_file()
