"""What real captures look like: mask encodings and folders (ZJU-MoCap, DNA-Rendering, NHR, ENeRF-Outdoor,
Mobile-Stage), strict image decoding, image sizes, camera and split validation, DNA-Rendering's color
curves, and choosing the dataparser of ``ns-train fourk4d`` by subcommand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import carve, ring_rig, write_synthetic_capture
from PIL import Image

from dataparsers.easymocap import EasyMocapDataParserConfig
from dataparsers.easymocap_cameras import IDENTITY_CURVES, cameras_looking_away, read_cameras, write_cameras
from fourk4d_ns.carving.visual_hull import CarveSettings
from fourk4d_ns.core.camera import camera_center, look_at
from fourk4d_ns.integration.frame_cache import ImageSource, load_image
from fourk4d_ns.io.errors import CaptureError, InputError
from fourk4d_ns.io.images import (
    apply_color_curves,
    color_curves_problem,
    mask_convention,
    read_image,
    read_mask,
)

PALETTE = np.array([[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]], dtype=np.uint8)
"""Human-parsing colors (SCHP/LIP start like this): class 0, the background, is black."""
CURVES = np.array([[-0.0008, 1.25, 2.0], [0.0, 0.95, 6.0], [0.0004, 0.85, -3.0]])
"""Plausible per-channel color curves (rows R, G, B of a x^2 + b x + c)."""


def parse(data: Path, split: str = "train", **options):
    return EasyMocapDataParserConfig(data=data, **options).setup().get_dataparser_outputs(split)


def disc(height: int = 48, width: int = 64) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, (width // 2, height // 2), height // 3, 1, -1)
    return mask.astype(bool)


def labels(mask: np.ndarray) -> np.ndarray:
    """Class indices 1-4 in horizontal bands inside the mask (a parsing label map), 0 outside."""
    rows = np.arange(mask.shape[0])[:, None] * 4 // mask.shape[0] + 1
    return np.where(mask, rows, 0).astype(np.uint8)


def soft(mask: np.ndarray) -> np.ndarray:
    """A matte: the mask blurred into soft 0..1 edges."""
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2.0)


def encode(mask: np.ndarray, kind: str, path: Path) -> tuple[Path, np.ndarray]:
    """Write ``mask`` in one of the public captures' encodings; returns the file and the foreground it means."""
    if kind == "0/1 png":
        cv2.imwrite(str(path.with_suffix(".png")), mask.astype(np.uint8))
    elif kind == "0/1 png16":
        cv2.imwrite(str(path.with_suffix(".png")), mask.astype(np.uint16))
    elif kind == "0/255 png16":
        cv2.imwrite(str(path.with_suffix(".png")), mask.astype(np.uint16) * 255)
    elif kind == "labels png":
        cv2.imwrite(str(path.with_suffix(".png")), labels(mask))
    elif kind == "palette png":
        image = Image.frombytes("P", mask.shape[::-1], labels(mask).tobytes())
        image.putpalette(PALETTE.ravel().tolist())
        image.save(path.with_suffix(".png"))
    elif kind == "color labels png":
        cv2.imwrite(str(path.with_suffix(".png")), PALETTE[labels(mask)][..., ::-1])
    elif kind == "0/255 png":
        cv2.imwrite(str(path.with_suffix(".png")), mask.astype(np.uint8) * 255)
    elif kind == "3-channel jpg":
        cv2.imwrite(str(path.with_suffix(".jpg")), np.repeat(mask[..., None], 3, axis=2).astype(np.uint8) * 255)
    elif kind == "soft png":
        matte = np.round(soft(mask) * 255).astype(np.uint8)
        cv2.imwrite(str(path.with_suffix(".png")), matte)
        return path.with_suffix(".png"), matte > 127
    elif kind == "soft png16":
        matte = np.round(soft(mask) * 65535).astype(np.uint16)
        cv2.imwrite(str(path.with_suffix(".png")), matte)
        return path.with_suffix(".png"), matte > 32767
    suffix = ".jpg" if kind.endswith("jpg") else ".png"
    return path.with_suffix(suffix), mask


@pytest.mark.parametrize(
    "kind, name",
    [
        ("0/1 png", "0/1 labels"),  # ZJU-MoCap mask/
        ("0/1 png16", "0/1 labels"),
        ("0/255 png16", "label values"),  # 8-bit values in a 16-bit file
        ("labels png", "label values"),  # gray parsing labels
        ("palette png", "RGB label map"),  # SCHP's palette PNG
        ("color labels png", "RGB label map"),
        ("0/255 png", "0/255"),
        ("3-channel jpg", "JPEG (threshold 128)"),  # NHR, DNA-Rendering
        ("soft png", "soft (threshold 128)"),  # bgmtv2/, rvm/
        ("soft png16", "soft (threshold 32768)"),
    ],
)
def test_mask_encodings_read_as_their_foreground(tmp_path: Path, kind: str, name: str):
    masks = [disc(), np.roll(disc(), 9, axis=1), np.zeros((48, 64), bool)]  # one frame without the subject
    written = [encode(mask, kind, tmp_path / f"{i:06d}") for i, mask in enumerate(masks)]
    convention = mask_convention([path for path, _ in written])
    assert convention.name == name
    for path, truth in written:
        foreground = read_mask(path, convention)
        agreement = (foreground == truth).mean()
        assert agreement == 1.0 or (kind.endswith("jpg") and agreement > 0.99), (path.name, agreement)


def test_the_folder_decides_not_one_file(tmp_path: Path):
    matte = np.round(soft(disc()) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), matte)
    cv2.imwrite(str(tmp_path / "b.png"), np.where(disc(), 255, 0).astype(np.uint8))  # binary in this frame
    faint = np.where(matte > 200, 40, 3).astype(np.uint8)  # the subject nearly gone: only faint values
    cv2.imwrite(str(tmp_path / "c.png"), faint)
    assert mask_convention([tmp_path / "c.png"]).name == "label values"  # alone it would read as labels
    convention = mask_convention(sorted(tmp_path.glob("*.png")))
    assert convention.name == "soft (threshold 128)"
    assert not read_mask(tmp_path / "c.png", convention).any()
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((48, 64), np.uint8))
    assert mask_convention([tmp_path / "empty.png"]).name == "all background"
    # A 0/1 label folder stays one even when the sampled frames include empty ones.
    for i in range(40):
        cv2.imwrite(str(tmp_path / f"l{i:02d}.png"), (disc() if i % 3 else np.zeros((48, 64), bool)).astype(np.uint8))
    assert mask_convention(sorted(tmp_path.glob("l*.png"))).name == "0/1 labels"


def convert_masks(capture: Path, kind: str, folder: str) -> dict[tuple[str, str], np.ndarray]:
    """Write a capture's masks again into ``folder/`` in another encoding; the foreground of each (camera, frame)."""
    truth = {}
    for path in sorted((capture / "masks").rglob("*.png")):
        target = capture / folder / path.parent.name / path.stem
        target.parent.mkdir(parents=True, exist_ok=True)
        written, foreground = encode(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127, kind, target)
        truth[path.parent.name, written.stem] = foreground
    return truth


def without_image_sizes(capture: Path) -> None:
    rig = read_cameras(capture / "intri.yml", capture / "extri.yml")
    rig.height[:] = 0
    rig.width[:] = 0
    write_cameras(capture, rig)
    assert "H_00" not in (capture / "intri.yml").read_text()


def test_zju_mocap_01_masks_without_image_sizes_carve(tiny_demo_copy: Path):
    """ZJU-MoCap: 0/1 PNG masks in mask/, no H_/W_: the masks are read, sizes come from the images, carving
    keeps the subject (it kept nothing in any frame when masks were cut at 127)."""
    truth = convert_masks(tiny_demo_copy, "0/1 png", "mask")
    shutil.rmtree(tiny_demo_copy / "masks")
    without_image_sizes(tiny_demo_copy)
    outputs = parse(tiny_demo_copy)
    assert int(outputs.cameras.width[0]) == 64 and int(outputs.cameras.height[0]) == 64
    for path in outputs.mask_filenames:
        assert "x1" in path.parts and "mask" in path.parts  # binarized copies, read alike by every reader
        stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(stored > 0, truth[path.parent.name, path.stem])
    carved = carve(tiny_demo_copy, CarveSettings(fine_resolution=64), progress=False)
    assert all(entry["surface_points"] > 100 for entry in carved.summary["frames"].values())


def test_mask_folders_are_found_in_order_and_cached_apart(tiny_demo_copy: Path):
    """Mobile-Stage ships several mask folders: the first of masks, mask, msk, schp, bgmtv2, rvm is used."""
    truths = {"rvm": convert_masks(tiny_demo_copy, "soft png", "rvm")}
    truths["schp"] = convert_masks(tiny_demo_copy, "palette png", "schp")
    assert parse(tiny_demo_copy).mask_filenames[0].parts[-3] == "masks"  # plain 0/255 PNG: used as it is
    shutil.rmtree(tiny_demo_copy / "masks")
    for folder, masks_dir in (("schp", None), ("rvm", "rvm")):
        for factor in (1, 2):
            outputs = parse(tiny_demo_copy, masks_dir=masks_dir, downscale_factor=factor)
            assert all(path.parts[-4:-2] == (f"x{factor}", folder) for path in outputs.mask_filenames)
            if factor == 1:
                for path in outputs.mask_filenames:
                    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) > 0
                    assert np.array_equal(stored, truths[folder][path.parent.name, path.stem])


def test_no_mask_folder_is_a_clear_error_for_fourk4d(synthetic_capture: Path):
    from fourk4d_ns.integration.datamanager import check_dataparser_outputs

    shutil.rmtree(synthetic_capture / "masks")
    config = EasyMocapDataParserConfig(data=synthetic_capture)
    outputs = config.setup().get_dataparser_outputs("train")  # other methods train without masks
    with pytest.raises(CaptureError, match="looked for masks/, mask/, msk/, schp/, bgmtv2/, rvm/ and videos_masks"):
        check_dataparser_outputs(outputs, config)


# --- strict decoding ------------------------------------------------------------------------------


def jpeg_capture(tmp_path: Path) -> Path:
    return write_synthetic_capture(tmp_path / "capture", ring_rig(5, 24, 32), frames=3, image_ext=".jpg")


def test_truncated_images_are_found_up_front(tmp_path: Path):
    capture = jpeg_capture(tmp_path)
    path = capture / "images" / "03" / "000001.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(CaptureError, match="corrupt or truncated JPEG") as info:
        parse(capture)
    assert "images/03/000001.jpg" in str(info.value)
    with pytest.raises(CaptureError, match="images/03/000001.jpg"):
        read_image(path)
    path.write_bytes(data + b"\0trailer bytes")  # data after the image's end is not damage
    parse(capture)
    png = capture / "masks" / "02" / "000000.png"
    png.write_bytes(png.read_bytes()[:-20])
    with pytest.raises(CaptureError, match="corrupt or truncated PNG"):
        parse(capture)


def test_corrupt_jpeg_data_is_an_error_when_decoded(tmp_path: Path):
    """A complete-looking file (ending in its end marker) with damaged data passes the start-up check
    and fails where it is decoded, instead of yielding a partly decoded image."""
    capture = jpeg_capture(tmp_path)
    path = capture / "images" / "01" / "000002.jpg"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    assert cv2.imread(str(path)) is not None  # what OpenCV alone would have trained on
    parse(capture)
    with pytest.raises(CaptureError, match="corrupt or truncated JPEG"):
        read_image(path)


def test_image_sizes_come_from_the_files_or_must_match_them(synthetic_capture: Path):
    cv2.imwrite(str(synthetic_capture / "images" / "02" / "000001.png"), np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(CaptureError) as info:
        parse(synthetic_capture)
    message = str(info.value)
    for fragment in ("images/02/000001.png", "30x20", "camera '02' is 32x24 in intri.yml (W_, H_)"):
        assert fragment in message, message
    without_image_sizes(synthetic_capture)
    with pytest.raises(CaptureError, match=r"30x20 \(WxH\) but the first image of camera '02' \(000000.png\) is 32x24"):
        parse(synthetic_capture)
    cv2.imwrite(str(synthetic_capture / "images" / "02" / "000001.png"), np.zeros((24, 32, 3), np.uint8))
    assert int(parse(synthetic_capture).cameras.width[0]) == 32


@pytest.mark.parametrize("value, problem", [("-24", "positive whole number"), ("12.5", "positive whole number")])
def test_bad_image_size_entries(synthetic_capture: Path, value: str, problem: str):
    path = synthetic_capture / "intri.yml"
    path.write_text(path.read_text().replace("H_01: 24", f"H_01: {value}"))
    with pytest.raises(CaptureError, match=f"`H_01` must be a {problem}"):
        parse(synthetic_capture)


# --- cameras --------------------------------------------------------------------------------------


def flip(R: np.ndarray, T: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The cameras with one turned around its vertical axis (center kept): it looks away."""
    R, T = R.copy(), T.copy()
    center = camera_center(R[index], T[index])
    R[index] = np.diag([-1.0, 1.0, -1.0]) @ R[index]
    T[index] = -R[index] @ center
    return R, T


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda R: R * 1.01, "R R^T differs from the identity by 0.0201 (tolerance 0.001; scaled or sheared)"),
        (lambda R: R * np.array([[1.0], [1.0], [-1.0]]), "its determinant is -1 (a reflection)"),
    ],
)
def test_rotation_matrices_must_be_rotations(tmp_path: Path, change, fragment: str):
    rig = ring_rig(4, 16, 16)
    rig.R[2] = change(rig.R[2])
    capture = write_synthetic_capture(tmp_path / "capture", rig, frames=1, spelling="easyvolcap")
    with pytest.raises(CaptureError, match="extri.yml") as info:
        parse(capture)
    assert "`Rot_02` is not a rotation" in str(info.value) and fragment in str(info.value), str(info.value)


def test_rounded_rotations_are_accepted_and_made_exact(tmp_path: Path):
    rig = ring_rig(4, 16, 16)
    rig.R[1] = np.round(rig.R[1], 5)
    capture = write_synthetic_capture(tmp_path / "capture", rig, frames=1, spelling="easyvolcap")
    R = read_cameras(capture / "intri.yml", capture / "extri.yml").R[1]
    assert np.abs(R @ R.T - np.eye(3)).max() < 1e-12 and np.abs(R - rig.R[1]).max() < 1e-5


@pytest.mark.parametrize("file", ["intri.yml", "extri.yml"])
def test_duplicate_camera_names(synthetic_capture: Path, file: str):
    path = synthetic_capture / file
    path.write_text(path.read_text().replace('   - "04"\n', '   - "04"\n   - "02"\n', 1))
    with pytest.raises(CaptureError, match=r"`names` lists camera\(s\) \['02'\] more than once") as info:
        read_cameras(synthetic_capture / "intri.yml", synthetic_capture / "extri.yml")
    assert file in str(info.value)


def rig_looking_at(centers: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    poses = [look_at(c, t, up=(0.0, 1.0, 0.0)) for c, t in zip(centers, targets)]
    return np.stack([p[0] for p in poses]), np.stack([p[1] for p in poses])


def line(count: int) -> np.ndarray:
    return np.stack([np.linspace(-1, 1, count), np.zeros(count), np.zeros(count)], axis=1)


@pytest.mark.parametrize(
    "name, centers, targets",
    [
        ("forward-facing, converging", line(6), np.tile([0.0, 0.0, 5.0], (6, 1))),
        ("forward-facing, parallel", line(6), line(6) + [0, 0, 1]),
        ("forward-facing, diverging", line(6), line(6) * 1.2 + [0, 0, 1]),
        ("three converging", line(3), np.tile([0.0, 0.0, 3.0], (3, 1))),
        ("three parallel", line(3), line(3) + [0, 0, 1]),
        ("pair facing each other", np.array([[0.0, 0, -2], [0, 0, 2]]), np.zeros((2, 3))),
        ("pair converging", line(2), np.tile([0.0, 0.0, 3.0], (2, 1))),
        ("stereo pair", line(2), line(2) + [0, 0, 1]),
    ],
)
def test_rigs_that_look_at_their_scene(name: str, centers, targets):
    R, T = rig_looking_at(centers, targets)
    assert cameras_looking_away(R, T) == [], name
    if len(R) > 2:  # turning any one camera around is found
        for index in range(len(R)):
            assert [i for i, _, _ in cameras_looking_away(*flip(R, T, index))] == [index], (name, index)


def test_a_pair_looking_apart_is_found():
    R, T = rig_looking_at(np.array([[0.0, 0, -2], [0, 0, 2]]), np.array([[0.0, 0, -5], [0, 0, 5]]))
    assert [i for i, _, _ in cameras_looking_away(R, T)] == [0, 1]


def test_a_camera_looking_away_is_an_error_unless_left_out(tmp_path: Path):
    rig = ring_rig(8, 16, 16)
    rig.R, rig.T = flip(rig.R, rig.T, 3)
    capture = write_synthetic_capture(tmp_path / "capture", rig, frames=1)
    with pytest.raises(CaptureError) as info:
        parse(capture)
    message = str(info.value)
    assert "extri.yml" in message and "camera '03' looks away from the scene" in message, message
    assert "degrees from the point the other cameras look at" in message and "camera-to-world" in message
    parse(capture, cameras=("00", "01", "02", "04", "05", "06", "07"))


def test_split_file_naming_an_unknown_camera(synthetic_capture: Path):
    (synthetic_capture / "split.json").write_text(json.dumps({"test_cameras": ["01", "77"]}))
    with pytest.raises(
        CaptureError, match=r"split.json: `test_cameras` names cameras the capture does not have: \['77'\]"
    ):
        parse(synthetic_capture)
    (synthetic_capture / "split.json").write_text(json.dumps({"test_cameras": ["01", "03"]}))
    outputs = parse(synthetic_capture, cameras=("00", "01", "02"))  # 03 is not selected: not there
    assert outputs.metadata["eval_cameras"] == [1]


# --- DNA-Rendering's color curves -----------------------------------------------------------------


def test_color_curves_math_and_plausibility():
    rgb = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    x = rgb.astype(float)
    expected = np.clip(np.round(CURVES[:, 0] * x**2 + CURVES[:, 1] * x + CURVES[:, 2]), 0, 255)
    assert np.array_equal(apply_color_curves(rgb, CURVES), expected)
    assert np.array_equal(apply_color_curves(rgb, IDENTITY_CURVES), rgb)
    assert color_curves_problem(CURVES) is None
    linear_matrix = np.array([[1.5, -0.3, -0.2], [-0.2, 1.3, -0.1], [-0.1, -0.4, 1.5]])  # a 3x3 *matrix*
    assert "do not rise" in color_curves_problem(linear_matrix)
    assert "map 0..255 to 0..905" in color_curves_problem(np.tile([0.01, 1.0, 0.0], (3, 1)))


def capture_with_curves(folder: Path, curves: np.ndarray) -> Path:
    rig = ring_rig(4, 16, 16)
    rig.color_curves = np.stack([IDENTITY_CURVES, curves, curves, IDENTITY_CURVES])
    return write_synthetic_capture(folder, rig, frames=1)


def test_color_curves_are_applied_only_on_request(tmp_path: Path):
    capture = capture_with_curves(tmp_path / "capture", CURVES)
    assert "ccm_01" in (capture / "intri.yml").read_text()
    assert parse(capture).metadata["color_curves"] is None  # default: images as stored
    outputs = parse(capture, apply_color_correction=True, eval_camera_interval=0)
    curves = outputs.metadata["color_curves"]
    assert np.allclose(curves[1], CURVES) and np.allclose(curves[0], IDENTITY_CURVES)
    path = outputs.image_filenames[1]
    source = ImageSource(path, None, np.eye(3), np.zeros(5), curves[1])
    assert np.array_equal(load_image(source).rgb, apply_color_curves(read_image(path), CURVES))
    shutil.copytree(capture / "images", capture / "images_calib")  # DNA-Rendering's corrected copy
    assert "images_calib" in parse(capture).image_filenames[0].parts  # preferred over images/
    with pytest.raises(InputError, match="color-corrected already"):
        parse(capture, apply_color_correction=True)


def test_implausible_or_placeholder_curves(tmp_path: Path):
    capture = capture_with_curves(tmp_path / "matrix", np.array([[1.5, -0.3, -0.2], [-0.2, 1.3, -0.1], [0, -0.4, 1.5]]))
    with pytest.raises(CaptureError, match=r"intri.yml: `ccm_01` is not a set of per-channel color curves"):
        parse(capture, apply_color_correction=True)
    parse(capture)  # left off: the images are used as stored, whatever ccm_ holds
    capture = capture_with_curves(tmp_path / "identity", np.eye(3))  # EasyVolcap's "no correction"
    assert "ccm_01" in (capture / "intri.yml").read_text()
    assert not read_cameras(capture / "intri.yml", capture / "extri.yml").has_color_curves
    assert parse(capture, apply_color_correction=True).metadata["color_curves"] is None


# --- ns-train fourk4d with a dataparser subcommand ------------------------------------------------


def ns_train_config(*args: str):
    """The config ``ns-train`` builds from its arguments (nerfstudio's own tyro union)."""
    import tyro
    from nerfstudio.configs.method_configs import AnnotatedBaseConfigUnion

    return tyro.cli(AnnotatedBaseConfigUnion, args=list(args))


def test_dataparser_subcommand_feeds_fourk4d(tiny_demo_copy: Path):
    rig = read_cameras(tiny_demo_copy / "intri.yml", tiny_demo_copy / "extri.yml")
    rig.color_curves = np.tile(CURVES, (len(rig), 1, 1))
    write_cameras(tiny_demo_copy, rig)
    config = ns_train_config(
        "fourk4d", "--data", str(tiny_demo_copy), "--pipeline.datamanager.carve.fine-resolution", "64",
        "easymocap-data", "--eval-cameras", "05", "07", "--apply-color-correction", "True",
    )  # fmt: skip
    assert isinstance(config.pipeline.datamanager.dataparser, EasyMocapDataParserConfig)
    config.pipeline.datamanager.data = config.data
    manager = config.pipeline.datamanager.setup(device="cpu")
    assert manager.train_dataparser_outputs.metadata["eval_cameras"] == [5, 7]
    path = manager.eval_dataparser_outputs.image_filenames[0]
    assert np.array_equal(manager.images.get(5, 0).rgb, apply_color_curves(read_image(path), CURVES))


def test_dataparsers_that_cannot_feed_fourk4d(tmp_path: Path):
    import torch
    from nerfstudio.cameras.cameras import Cameras
    from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from nerfstudio.data.scene_box import SceneBox

    from fourk4d_ns.integration.datamanager import check_dataparser_outputs

    config = ns_train_config("fourk4d", "--data", str(tmp_path / "no-such-scene"), "dyn3d-data")
    config.pipeline.datamanager.data = config.data
    with pytest.raises(InputError, match="dyn3d-data scenes have no foreground masks"):
        config.pipeline.datamanager.setup(device="cpu")  # before decoding any video
    cameras = Cameras(camera_to_worlds=torch.eye(4)[None, :3], fx=1.0, fy=1.0, cx=1.0, cy=1.0, width=2, height=2)
    outputs = DataparserOutputs([tmp_path / "a.png"], cameras, scene_box=SceneBox(torch.ones(2, 3)))
    with pytest.raises(InputError, match="camera and frame of every image .* nerfstudio-data dataparser gives none"):
        check_dataparser_outputs(outputs, NerfstudioDataParserConfig())
