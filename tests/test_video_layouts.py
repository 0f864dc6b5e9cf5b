"""EasyMocap captures stored as videos: decoding into the frame cache, resuming, bad videos, lengths;
4K4D's cropped and foreground-only videos, and the masks derived from them."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import carve
from test_fourk4d_method import train

import dataparsers.video_cache as video_cache
from dataparsers.easymocap import EasyMocapDataParserConfig
from dataparsers.easymocap_layout import FRAMES_FOLDER, read_layout
from dataparsers.foreground_masks import foreground_mask, lit_pixels
from dataparsers.video_crops import parse_video_name
from dataparsers.video_frames import probe_video, read_frames
from fourk4d_ns.carving.visual_hull import CarveSettings
from fourk4d_ns.cli.demo_scene import entrypoint
from fourk4d_ns.demo.capture import PRESETS, write_demo_capture
from fourk4d_ns.demo.video_layouts import CRF, ENCODERS, write_foreground_videos
from fourk4d_ns.io.errors import CaptureError
from fourk4d_ns.io.images import read_image, read_mask, resize_image
from fourk4d_ns.io.video import available_encoder, write_video

TINY = PRESETS["tiny"]
NUM_CAMERAS = TINY.layout.train_cameras + TINY.layout.test_cameras
ENCODER = available_encoder(ENCODERS)
# Codec error budget of the demo's videos (CRF 12, 4:4:4) decoded to the JPEG cache, in 8-bit levels:
# measured about 1.4-1.5 mean absolute error per image on the tiny preset's high-frequency textures.
MAX_IMAGE_MAE = 2.5
MIN_MASK_AGREEMENT = 0.99
FOREGROUND_LAYOUTS = ("4k4d-cropped", "4k4d-foreground")
# Derived masks against the rendered ones: measured mean IoU 0.987 (cropped) and 0.992 (full frames) on
# the tiny preset, where the published `rgb.sum > 12` gets 0.984 and 0.991.
MIN_DERIVED_IOU = 0.97


@pytest.fixture(scope="module")
def video_captures(tmp_path_factory) -> dict[str, Path]:
    """The tiny demo capture (seed 0, as the image-layout fixture) in both EasyMocap video layouts."""
    root = tmp_path_factory.mktemp("videos")
    return {
        layout: write_demo_capture(root / layout, preset="tiny", videos=layout, progress=False)
        for layout in ("easymocap", "4k4d", *FOREGROUND_LAYOUTS)
    }


@pytest.fixture
def capture_4k4d(video_captures: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the 4K4D-layout capture (videos only, nothing decoded yet)."""
    return Path(shutil.copytree(video_captures["4k4d"], tmp_path / "4k4d"))


@pytest.fixture
def capture_cropped(video_captures: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the 4K4D cropped-video capture (no mask videos)."""
    return Path(shutil.copytree(video_captures["4k4d-cropped"], tmp_path / "cropped"))


def parse(data: Path, split: str = "train", **options):
    return EasyMocapDataParserConfig(data=data, **options).setup().get_dataparser_outputs(split)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def foreground_truth(capture: Path, camera: str, frame: str) -> tuple[np.ndarray, np.ndarray]:
    """A rendered image times its mask (the subject on black), and the mask."""
    mask = read_mask(capture / "masks" / camera / f"{frame}.png")
    return read_image(capture / "images" / camera / f"{frame}.png") * mask[..., None].astype(np.uint8), mask


def foreground_capture(source: Path, target: Path, folder: str, **options) -> Path:
    """A copy of an image-layout capture whose images and masks are replaced by foreground-only videos
    in ``target/folder`` (``write_foreground_videos`` options)."""
    scene = Path(shutil.copytree(source, target))
    names = sorted(p.name for p in (scene / "images").iterdir())
    write_foreground_videos(scene, scene / folder, names, TINY.fps, ENCODER, **options)
    shutil.rmtree(scene / "images")
    shutil.rmtree(scene / "masks")
    return scene


def test_demo_writes_the_video_layouts(video_captures: dict[str, Path]):
    easymocap, minimal = video_captures["easymocap"], video_captures["4k4d"]
    assert sorted(p.name for p in (easymocap / "videos").iterdir()) == [f"{i:02d}.mp4" for i in range(NUM_CAMERAS)]
    assert (easymocap / "masks" / "00" / "000000.png").is_file() and not (easymocap / "images").exists()
    assert len(list((minimal / f"videos_{ENCODER}").glob("*.mp4"))) == NUM_CAMERAS
    assert len(list((minimal / f"videos_masks_{ENCODER}").glob("*.mp4"))) == NUM_CAMERAS
    assert not (minimal / "images").exists() and not (minimal / "masks").exists()
    summary = json.loads((minimal / "demo.json").read_text())
    assert summary["video_layout"] == "4k4d" and summary["video_encoder"] == ENCODER


@pytest.mark.parametrize("layout", ["easymocap", "4k4d"])
def test_video_layout_parses_like_the_image_layout(
    video_captures, tiny_demo_capture: Path, tmp_path: Path, layout: str
):
    scene = Path(shutil.copytree(video_captures[layout], tmp_path / layout))
    for split in ("train", "test"):
        from_images, from_videos = parse(tiny_demo_capture, split), parse(scene, split)
        for name in ("camera_to_worlds", "fx", "fy", "cx", "cy", "width", "height", "times"):
            assert torch.equal(getattr(from_images.cameras, name), getattr(from_videos.cameras, name)), name
        assert from_images.metadata["camera_names"] == from_videos.metadata["camera_names"]
        assert from_images.metadata["frame_names"] == from_videos.metadata["frame_names"]
        for image_path, video_path in zip(from_images.image_filenames, from_videos.image_filenames):
            assert video_path.is_relative_to(scene / FRAMES_FOLDER / "images") and video_path.suffix == ".jpg"
            error = np.abs(read_image(image_path).astype(float) - read_image(video_path)).mean()
            assert error < MAX_IMAGE_MAE, (video_path, error)
        for image_mask, video_mask in zip(from_images.mask_filenames, from_videos.mask_filenames):
            decoded = cv2.imread(str(video_mask), cv2.IMREAD_UNCHANGED)
            assert set(np.unique(decoded)) <= {0, 255}
            agreement = ((decoded > 127) == (cv2.imread(str(image_mask), cv2.IMREAD_GRAYSCALE) > 127)).mean()
            assert agreement > MIN_MASK_AGREEMENT, (video_mask, agreement)


def test_demo_writes_the_foreground_layouts(video_captures: dict[str, Path], tiny_demo_capture: Path):
    for layout in FOREGROUND_LAYOUTS:
        folders = [p.name for p in video_captures[layout].iterdir() if p.is_dir()]
        assert folders == [f"videos_{ENCODER}"], "no mask videos"
    plain = video_captures["4k4d-foreground"] / f"videos_{ENCODER}"
    assert sorted(p.name for p in plain.iterdir()) == [f"{i:02d}.mp4" for i in range(NUM_CAMERAS)]
    videos = sorted((video_captures["4k4d-cropped"] / f"videos_{ENCODER}").iterdir())
    assert len(videos) == NUM_CAMERAS
    for video in videos:
        camera, placement = parse_video_name(video)
        info = probe_video(video)
        assert placement.num_frames == info.num_frames == TINY.num_frames
        assert placement.canvas == placement.full == (64, 64) and info.width * info.height < 64 * 64 * 0.8
        for frame in range(TINY.num_frames):  # the crop holds the subject in every frame, with a margin
            rows, columns = np.nonzero(read_mask(tiny_demo_capture / "masks" / camera / f"{frame:06d}.png"))
            assert placement.x + 2 <= columns.min() and columns.max() < placement.x + info.width - 2, camera
            assert placement.y + 2 <= rows.min() and rows.max() < placement.y + info.height - 2, camera


@pytest.mark.parametrize("layout", FOREGROUND_LAYOUTS)
def test_foreground_videos_give_back_full_frames_and_masks(
    video_captures, tiny_demo_capture: Path, tmp_path: Path, layout: str
):
    scene = Path(shutil.copytree(video_captures[layout], tmp_path / layout))
    ious = []
    for split in ("train", "test"):
        from_images, from_videos = parse(tiny_demo_capture, split), parse(scene, split)
        for name in ("camera_to_worlds", "fx", "cx", "width", "height", "times"):
            assert torch.equal(getattr(from_images.cameras, name), getattr(from_videos.cameras, name)), name
        for image_path, video_path, mask_path in zip(
            from_images.image_filenames, from_videos.image_filenames, from_videos.mask_filenames
        ):
            truth, true_mask = foreground_truth(tiny_demo_capture, image_path.parent.name, image_path.stem)
            error = np.abs(read_image(video_path).astype(float) - truth).mean()
            assert error < MAX_IMAGE_MAE, (video_path, error)
            assert mask_path.is_relative_to(scene / FRAMES_FOLDER / "masks")
            ious.append(iou(read_mask(mask_path), true_mask))
    assert np.mean(ious) > MIN_DERIVED_IOU and min(ious) > 0.9, ious


def test_half_size_cropped_videos_are_enlarged_to_the_cameras_size(tiny_demo_capture: Path, tmp_path: Path):
    """4K4D stores most captures at half size (W, H = FW/2, FH/2): frames come back at the camera's size."""
    scene = foreground_capture(tiny_demo_capture, tmp_path / "half", f"videos_{ENCODER}", cropped=True, scale=0.5)
    assert all(parse_video_name(p)[1].canvas == (32, 32) for p in (scene / f"videos_{ENCODER}").iterdir())
    outputs = parse(scene)
    for path in outputs.image_filenames:
        truth = foreground_truth(tiny_demo_capture, path.parent.name, path.stem)[0]
        expected = resize_image(resize_image(truth, (32, 32)), (64, 64))
        error = np.abs(read_image(path).astype(float) - expected).mean()
        assert error < MAX_IMAGE_MAE, (path, error)


def test_foreground_mask_fills_dark_holes_not_background_gaps():
    image = np.zeros((40, 60, 3), np.uint8)
    for center, inside in (((15, 15), 0), ((45, 15), 2)):  # a gap showing the background; dark fabric
        cv2.circle(image, center, 12, (90, 60, 40), -1)
        cv2.circle(image, center, 5, (inside,) * 3, -1)
    image[35, 5] = image[35, 6] = (40, 40, 40)  # a codec speck
    mask = foreground_mask(image)
    assert not mask[15, 15] and mask[15, 45], "background gaps stay open, dark holes are filled"
    assert not mask[35, 5], "specks are dropped"
    assert mask.sum() == (image.sum(axis=-1) > 12).sum() - 2 + (image[..., 0] == 2).sum()


def test_derived_masks_recover_black_clothing(tiny_demo_capture: Path, tmp_path: Path):
    """Black clothing (1-4 levels) inside the silhouette: the published `rgb.sum > 12` leaves it out."""
    scene = foreground_capture(
        tiny_demo_capture, tmp_path / "dark", f"videos_{ENCODER}", cropped=False, black_clothing=True
    )
    outputs = parse(scene, frame_format="png")  # lossless: the published rule sees the decoded frames
    derived, published = [], []
    for image_path, mask_path in zip(outputs.image_filenames, outputs.mask_filenames):
        true_mask = foreground_truth(tiny_demo_capture, image_path.parent.name, image_path.stem)[1]
        derived.append(iou(read_mask(mask_path), true_mask))
        published.append(iou(lit_pixels(read_image(image_path)), true_mask))
    # Measured mean IoU 0.981 (derived) and 0.820 (published).
    assert np.mean(published) < 0.9, "the clothing makes holes"
    assert np.mean(derived) > max(0.95, np.mean(published) + 0.1), (np.mean(derived), np.mean(published))


def test_masks_are_derived_from_raw_videos_only_on_request(tiny_demo_capture: Path, tmp_path: Path):
    scene = foreground_capture(tiny_demo_capture, tmp_path / "raw", "videos", cropped=False)
    assert parse(scene).mask_filenames is None, "EasyMocap's videos/ hold full frames: no masks unasked"
    outputs = parse(scene, masks_dir="videos")
    true_masks = [foreground_truth(tiny_demo_capture, p.parent.name, p.stem)[1] for p in outputs.image_filenames]
    assert np.mean([iou(read_mask(p), m) for p, m in zip(outputs.mask_filenames, true_masks)]) > MIN_DERIVED_IOU


def test_red_mask_videos(capture_4k4d: Path, tiny_demo_capture: Path):
    """4K4D's full-frame mask videos hold the mask in the red channel only (luma 76 for foreground)."""
    for video in (capture_4k4d / f"videos_masks_{ENCODER}").iterdir():
        red = []
        for frame in range(TINY.num_frames):
            mask = read_mask(tiny_demo_capture / "masks" / video.stem / f"{frame:06d}.png")
            red.append(np.stack([mask * np.uint8(255), *[np.zeros_like(mask, np.uint8)] * 2], axis=-1))
        write_video(video, red, TINY.fps, ENCODER, crf=CRF, full_chroma=True)
    layout = read_layout(capture_4k4d, progress=False)
    for camera, masks in zip(layout.camera_names, layout.mask_paths):
        for frame, path in zip(layout.frame_names, masks):
            agreement = (read_mask(path) == read_mask(tiny_demo_capture / "masks" / camera / f"{frame}.png")).mean()
            assert agreement > MIN_MASK_AGREEMENT, (path, agreement)


def test_plain_video_wins_over_a_cropped_one(capture_cropped: Path, video_captures):
    folder = capture_cropped / f"videos_{ENCODER}"
    cropped = next(folder.glob("03_*.mp4"))
    shutil.copy(video_captures["4k4d-foreground"] / f"videos_{ENCODER}" / "03.mp4", folder / "03.mp4")
    with pytest.warns(UserWarning, match=f"camera '03' has a plain video; ignoring {cropped.name}"):
        read_layout(capture_cropped, progress=False)
    record = json.loads((capture_cropped / FRAMES_FOLDER / "images" / "03" / video_cache.RECORD_NAME).read_text())
    assert record["source"] == str((folder / "03.mp4").resolve())


def renamed_video(video: Path, **changes) -> Path:
    """A cropped video's path with fields of its placement changed (``dataclasses.replace``)."""
    camera, placement = parse_video_name(video)
    return video.with_name(f"{dataclasses.replace(placement, **changes).stem(camera)}.mp4")


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"x": 60}, "placed at x60, y.* do not fit in the W64xH64 canvas"),
        ({"canvas": (128, 128), "full": (128, 128)}, r"holds 128x128 \(WxH\) frames but the camera files give 64x64"),
        ({"canvas": (64, 128)}, "W128xH64 canvas in its name is not the FW64xFH64 full frame scaled"),
        ({"num_frames": 9}, "its name says N9 frames but the video holds 4"),
        ("03_N4_x0_y0_W64_H64", "not a valid cropped-video name"),
    ],
)
def test_bad_cropped_names_are_clear_errors(capture_cropped: Path, changes: dict | str, problem: str):
    video = next((capture_cropped / f"videos_{ENCODER}").glob("03_*.mp4"))
    renamed = video.with_name(f"{changes}.mp4") if isinstance(changes, str) else renamed_video(video, **changes)
    video.rename(renamed)
    with pytest.raises(CaptureError, match=problem) as info:
        parse(capture_cropped)
    assert str(renamed) in str(info.value)


def test_png_frames_on_request_and_explicit_video_folders(capture_4k4d: Path):
    outputs = parse(
        capture_4k4d, frame_format="png", images_dir=f"videos_{ENCODER}", masks_dir=f"videos_masks_{ENCODER}"
    )
    assert {p.suffix for p in outputs.image_filenames} == {".png"}
    # A later reader that does not ask for a format (carving) reuses the PNG cache instead of flipping it.
    layout = read_layout(capture_4k4d, progress=False)
    assert layout.image_paths[0][0].suffix == ".png"


@pytest.mark.parametrize("layout", ["4k4d", "4k4d-cropped"])  # image and mask videos; derived masks
def test_interrupted_decode_resumes_without_redoing_work(video_captures, tmp_path: Path, monkeypatch, layout: str):
    capture_4k4d = Path(shutil.copytree(video_captures[layout], tmp_path / layout))
    original = video_cache.write_frame
    written: list[Path] = []

    def write_then_fail(path: Path, frame: np.ndarray) -> None:
        if len(written) >= 10:
            raise KeyboardInterrupt("simulated interruption")
        original(path, frame)
        written.append(path)

    monkeypatch.setattr(video_cache, "write_frame", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        read_layout(capture_4k4d, progress=False)
    cache = capture_4k4d / FRAMES_FOLDER
    assert not list(cache.rglob(".*")), "no temporary files are left behind"
    records = [json.loads(p.read_text()) for p in cache.rglob(video_cache.RECORD_NAME)]
    assert records and not all(r["complete"] for r in records)
    assert all(p.is_file() for p in written)
    before = {p: p.stat().st_mtime_ns for p in written}
    # A frame file a killed process was writing (atomic writes use hidden temporary names).
    unfinished = next(
        p.parent for p in cache.rglob(video_cache.RECORD_NAME) if not json.loads(p.read_text())["complete"]
    )
    (unfinished / ".000003.tmp.jpg").write_bytes(b"half a frame")

    rewritten: list[Path] = []
    monkeypatch.setattr(video_cache, "write_frame", lambda path, frame: (original(path, frame), rewritten.append(path)))
    layout = read_layout(capture_4k4d, progress=False)
    total = 2 * NUM_CAMERAS * TINY.num_frames  # images and masks
    assert len(rewritten) == total - len(written), "finished frames are not decoded again"
    assert not set(rewritten) & set(written)
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert not list(cache.rglob(".*"))
    assert all(json.loads(p.read_text())["complete"] for p in cache.rglob(video_cache.RECORD_NAME))
    assert layout.num_frames == TINY.num_frames

    rewritten.clear()
    read_layout(capture_4k4d, progress=False)
    assert not rewritten, "a complete cache is reused"
    (layout.image_paths[2][1]).unlink()  # a damaged cache: that camera is decoded again
    read_layout(capture_4k4d, progress=False)
    assert len(rewritten) == 1 and rewritten[0] == layout.image_paths[2][1]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_bad_video_is_a_clear_error(capture_4k4d: Path, damage: str):
    video = capture_4k4d / f"videos_{ENCODER}" / "03.mp4"
    data = video.read_bytes()
    video.write_bytes(b"not a video" * 50 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(CaptureError) as info:
        parse(capture_4k4d)
    assert str(video) in str(info.value) and "video" in str(info.value)


def test_missing_camera_video_is_a_clear_error(capture_4k4d: Path):
    (capture_4k4d / f"videos_{ENCODER}" / "05.mp4").unlink()
    with pytest.raises(CaptureError, match=r"no video for cameras \['05'\]") as info:
        parse(capture_4k4d)
    assert f"videos_{ENCODER}" in str(info.value)


def test_videos_of_different_lengths_use_the_common_prefix(video_captures, tiny_demo_capture: Path, tmp_path: Path):
    scene = Path(shutil.copytree(video_captures["easymocap"], tmp_path / "easymocap"))
    frames = [read_image(tiny_demo_capture / "images" / "02" / f"{f:06d}.png") for f in range(TINY.num_frames - 1)]
    write_video(
        scene / "videos" / "02.mp4", frames, TINY.fps, available_encoder(("libx264",)), crf=CRF, full_chroma=True
    )
    with pytest.warns(UserWarning, match=f"videos/02: {TINY.num_frames - 1}") as warned:
        outputs = parse(scene)
    assert f"using the first {TINY.num_frames - 1} frames" in str(warned[0].message)
    assert outputs.metadata["num_frames"] == TINY.num_frames - 1
    assert outputs.metadata["frame_names"] == [f"{f:06d}" for f in range(TINY.num_frames - 1)]
    assert float(outputs.cameras.times.max()) == 1.0


def test_cropped_videos_of_different_lengths_use_the_common_prefix(capture_cropped: Path):
    video = next((capture_cropped / f"videos_{ENCODER}").glob("02_*.mp4"))
    frames = list(read_frames(video, "image", TINY.num_frames - 1))
    write_video(renamed_video(video, num_frames=len(frames)), frames, TINY.fps, ENCODER, crf=CRF, full_chroma=True)
    video.unlink()
    with pytest.warns(UserWarning, match=f"videos_{ENCODER}/02: {TINY.num_frames - 1}"):
        layout = read_layout(capture_cropped, progress=False)
    assert layout.num_frames == TINY.num_frames - 1 and len(layout.mask_paths[2]) == TINY.num_frames - 1


def test_carving_works_on_a_video_capture(capture_4k4d: Path):
    carved = carve(capture_4k4d, CarveSettings(coarse_resolution=32, fine_resolution=48))
    assert len(carved.frame_names) == TINY.num_frames
    assert all(entry["hull_points"] > 0 for entry in carved.summary["frames"].values())


def test_cli_writes_a_video_layout(tmp_path: Path, capsys):
    entrypoint(["--output", str(tmp_path / "v"), "--preset", "tiny", "--videos", "easymocap", "--no-progress"])
    assert "'easymocap' video layout" in capsys.readouterr().out
    assert len(list((tmp_path / "v" / "videos").glob("*.mp4"))) == NUM_CAMERAS


@pytest.mark.slow  # about a minute on 2 CPU cores (nerfstudio's start-up, carving, three steps)
def test_trains_on_a_cropped_capture(capture_cropped: Path, tmp_path: Path):
    """4K4D's cropped, foreground-only videos and no mask videos: decoded, masks derived, carved, trained."""
    run = train(capture_cropped, tmp_path / "outputs", 3)
    assert list((run / "nerfstudio_models").glob("step-*.ckpt"))
    assert len(list((capture_cropped / FRAMES_FOLDER / "masks").rglob("*.png"))) == NUM_CAMERAS * TINY.num_frames
