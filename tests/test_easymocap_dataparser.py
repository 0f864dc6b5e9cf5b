"""The easymocap-data dataparser: cameras, selection, downscale, splits and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import ray_miss_in_pixels, ring_rig, write_synthetic_capture

from dataparsers.easymocap import EasyMocapDataParserConfig
from dataparsers.easymocap_cameras import read_cameras
from fourk4d_ns.io.errors import CaptureError, InputError


def parse(data: Path, split: str = "train", **options):
    return EasyMocapDataParserConfig(data=data, **options).setup().get_dataparser_outputs(split)


def test_registered_with_nerfstudio():
    from nerfstudio.configs.dataparser_configs import all_dataparsers

    assert "easymocap-data" in all_dataparsers
    assert isinstance(all_dataparsers["easymocap-data"], EasyMocapDataParserConfig)


def test_reads_capture_splits_times_and_metadata(synthetic_capture: Path):
    (synthetic_capture / "split.json").write_text(json.dumps({"test_cameras": ["01", "03"]}))
    train = parse(synthetic_capture, "train")
    test = parse(synthetic_capture, "test")
    val = parse(synthetic_capture, "val")
    assert len(train.image_filenames) == 3 * 3 and len(test.image_filenames) == 2 * 3
    assert val.image_filenames == test.image_filenames
    assert train.metadata["camera_names"] == ["00", "01", "02", "03", "04"]
    assert train.metadata["train_cameras"] == [0, 2, 4] and train.metadata["eval_cameras"] == [1, 3]
    assert train.metadata["num_frames"] == 3 and train.metadata["frame_names"] == ["000000", "000001", "000002"]
    cams = train.cameras
    assert cams.times.shape == (9, 1)
    assert torch.allclose(cams.times.flatten(), torch.tensor([0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1.0]))
    assert cams.metadata["frame_index"].flatten().tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert cams.metadata["camera_index"].flatten().tolist() == [0, 2, 4] * 3
    assert train.image_filenames[4].parts[-2:] == ("02", "000001.png")
    assert train.mask_filenames[4].parts[-3:] == ("masks", "02", "000001.png")
    assert int(cams.width[0]) == 32 and int(cams.height[0]) == 24
    assert EasyMocapDataParserConfig(data=synthetic_capture).setup().includes_time


def test_default_eval_cameras_without_split_file(synthetic_capture: Path):
    outputs = parse(synthetic_capture, "test", eval_camera_interval=2)
    assert outputs.metadata["eval_cameras"] == [0, 2, 4]
    outputs = parse(synthetic_capture, "test", eval_cameras=("04",))
    assert outputs.metadata["eval_cameras"] == [4]


@pytest.mark.parametrize("dist", [None, [0.08, -0.05, 0.002, -0.003, 0.01]])
def test_camera_round_trip_sub_pixel(tmp_path: Path, dist):
    rig = ring_rig(4, 48, 64, dist=dist, seed=3)
    data = write_synthetic_capture(tmp_path / "cap", rig, frames=1)
    cameras = parse(data, "train", eval_camera_interval=0).cameras
    rng = np.random.default_rng(0)
    for index in range(len(rig)):
        for point in rng.uniform(-0.5, 0.5, (20, 3)):
            pixel, _ = cv2.projectPoints(
                point[None], cv2.Rodrigues(rig.R[index])[0], rig.T[index], rig.K[index], rig.dist[index]
            )
            u, v = pixel.reshape(2)
            assert ray_miss_in_pixels(cameras, index, point, u, v) < 0.05


def test_both_yaml_spellings_read_the_same(tmp_path: Path):
    rig = ring_rig(3, 16, 16, dist=[0.1, 0.01, 0.001, 0.002, 0.0])
    a = write_synthetic_capture(tmp_path / "a", rig, frames=1, spelling="easymocap")
    b = write_synthetic_capture(tmp_path / "b", rig, frames=1, spelling="easyvolcap")
    assert "R_00" in (a / "extri.yml").read_text() and "dist_00" in (a / "intri.yml").read_text()
    assert "Rot_00" in (b / "extri.yml").read_text() and "D_00" in (b / "intri.yml").read_text()
    rig_a, rig_b = read_cameras(a / "intri.yml", a / "extri.yml"), read_cameras(b / "intri.yml", b / "extri.yml")
    for field in ("K", "dist", "R", "T"):
        np.testing.assert_allclose(getattr(rig_a, field), getattr(rig, field), atol=1e-9)
        np.testing.assert_allclose(getattr(rig_b, field), getattr(rig, field), atol=1e-9)
    ca, cb = parse(a, eval_camera_interval=0).cameras, parse(b, eval_camera_interval=0).cameras
    assert torch.allclose(ca.camera_to_worlds, cb.camera_to_worlds, atol=1e-6)
    assert torch.allclose(ca.distortion_params, cb.distortion_params)


def test_optimized_cameras_preferred(synthetic_capture: Path):
    rig = read_cameras(synthetic_capture / "intri.yml", synthetic_capture / "extri.yml")
    rig.K[:, 0, 0] *= 2
    from dataparsers.easymocap_cameras import write_cameras

    write_cameras(synthetic_capture / "optimized", rig)
    cams = parse(synthetic_capture, eval_camera_interval=0).cameras
    assert torch.allclose(cams.fx[:5].flatten(), torch.tensor(rig.K[:, 0, 0], dtype=torch.float32))


def test_selection_and_downscale(synthetic_capture: Path):
    outputs = parse(
        synthetic_capture, "train", camera_step=2, frames=(0, 2), eval_camera_interval=0, downscale_factor=2
    )
    assert outputs.metadata["camera_names"] == ["00", "02", "04"]
    assert outputs.metadata["frame_names"] == ["000000", "000002"]
    assert outputs.cameras.times.flatten().tolist() == [0, 0, 0, 1, 1, 1]
    assert len(outputs.image_filenames) == 6
    full = read_cameras(synthetic_capture / "intri.yml", synthetic_capture / "extri.yml")
    assert int(outputs.cameras.width[0]) == 16 and int(outputs.cameras.height[0]) == 12
    assert float(outputs.cameras.fx[1]) == pytest.approx(full.K[2, 0, 0] / 2, rel=1e-6)
    assert float(outputs.cameras.cy[1]) == pytest.approx(full.K[2, 1, 2] / 2, rel=1e-6)
    image = cv2.imread(str(outputs.image_filenames[0]))
    mask = cv2.imread(str(outputs.mask_filenames[0]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (12, 16, 3) and mask.shape == (12, 16)
    assert set(np.unique(mask)) <= {0, 255}
    assert "fourk4d" in outputs.image_filenames[0].parts
    frame_range = parse(synthetic_capture, "train", frame_start=1, frame_stop=3, eval_camera_interval=0)
    assert frame_range.metadata["frame_names"] == ["000001", "000002"]


def test_jpeg_masks_are_thresholded(tmp_path: Path):
    data = write_synthetic_capture(tmp_path / "cap", ring_rig(2, 16, 16), frames=1)
    for path in (data / "masks").rglob("*.png"):
        noisy = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        noisy = np.where(noisy > 0, 240, 9).astype(np.uint8)  # JPEG-like noise around 0 and 255
        cv2.imwrite(str(path.with_suffix(".JPG")), noisy)
        path.unlink()
    outputs = parse(data, eval_camera_interval=0)
    mask = cv2.imread(str(outputs.mask_filenames[0]), cv2.IMREAD_UNCHANGED)
    assert outputs.mask_filenames[0].suffix == ".png" and set(np.unique(mask)) == {0, 255}


def test_scene_box_from_carved_bounds(synthetic_capture: Path):
    carve = synthetic_capture / "fourk4d" / "carve"
    carve.mkdir(parents=True)
    (carve / "carve.json").write_text(json.dumps({"bounds": [[-1, -2, -3], [1, 2, 3]]}))
    box = parse(synthetic_capture, scene_box_margin=0.0).scene_box.aabb
    assert torch.allclose(box, torch.tensor([[-1.0, -2, -3], [1, 2, 3]]))


def test_scene_box_from_camera_layout(synthetic_capture: Path):
    box = parse(synthetic_capture).scene_box.aabb
    assert torch.all(box[0] < 0) and torch.all(box[1] > 0)  # the ring looks at the origin
    assert float((box[1] - box[0]).max()) < 6.0  # smaller than the ring


# --- bad input: each error names the file or folder at fault -----------------------------------


def expect_error(data: Path, fragment: str, path_part: str, **options):
    with pytest.raises(CaptureError) as info:
        parse(data, **options)
    message = str(info.value)
    assert fragment in message and path_part in message, message


def test_missing_extri(synthetic_capture: Path):
    (synthetic_capture / "extri.yml").unlink()
    expect_error(synthetic_capture, "not found", "extri.yml")


def test_camera_without_K(synthetic_capture: Path):
    path = synthetic_capture / "intri.yml"
    text = path.read_text().replace("K_02:", "X_02:")
    path.write_text(text)
    expect_error(synthetic_capture, "'02'", "intri.yml")
    assert "K_02" in str(pytest.raises(CaptureError, parse, synthetic_capture).value)


def test_malformed_yaml(synthetic_capture: Path):
    (synthetic_capture / "intri.yml").write_text("%YAML:1.0\nnames: [\n  K_00: {")
    expect_error(synthetic_capture, "YAML", "intri.yml")


def test_mismatched_camera_names(synthetic_capture: Path):
    path = synthetic_capture / "extri.yml"
    path.write_text(path.read_text().replace('"04"', '"99"', 1))
    expect_error(synthetic_capture, "names", "extri.yml")


def test_images_of_a_camera_missing(synthetic_capture: Path):
    shutil.rmtree(synthetic_capture / "images" / "03")
    expect_error(synthetic_capture, "camera '03'", "images/03")


def test_corrupt_image(synthetic_capture: Path):
    (synthetic_capture / "images" / "01" / "000002.png").write_bytes(b"not an image at all")
    expect_error(synthetic_capture, "not a readable image", "images/01/000002.png")


def test_mismatched_image_sizes(synthetic_capture: Path):
    cv2.imwrite(str(synthetic_capture / "images" / "02" / "000001.png"), np.zeros((20, 30, 3), np.uint8))
    expect_error(synthetic_capture, "30x20", "images/02/000001.png")


def test_mask_size_differs_from_image(synthetic_capture: Path):
    cv2.imwrite(str(synthetic_capture / "masks" / "02" / "000001.png"), np.zeros((20, 30), np.uint8))
    expect_error(synthetic_capture, "mask", "masks/02/000001.png")


def test_empty_mask_folder(synthetic_capture: Path):
    for path in (synthetic_capture / "masks" / "04").iterdir():
        path.unlink()
    expect_error(synthetic_capture, "missing or empty", "masks/04")


def test_missing_frame_in_one_camera(synthetic_capture: Path):
    (synthetic_capture / "images" / "01" / "000001.png").unlink()
    expect_error(synthetic_capture, "different frames", "images/01")


def test_unknown_eval_camera(synthetic_capture: Path):
    with pytest.raises(InputError, match=r"--eval-cameras names cameras the capture .* does not have: \['77'\]"):
        parse(synthetic_capture, eval_cameras=("77",))
    with pytest.raises(InputError, match=r"--eval-cameras \['04'\] are not among the selected cameras"):
        parse(synthetic_capture, eval_cameras=("04",), cameras=("00", "01", "02"))
