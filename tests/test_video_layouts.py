"""EasyMocap captures stored as videos: decoding into the frame cache, resuming, bad videos, lengths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import carve

import dataparsers.video_cache as video_cache
from dataparsers.easymocap import EasyMocapDataParserConfig
from dataparsers.easymocap_layout import FRAMES_FOLDER, read_layout
from fourk4d_ns.carving.visual_hull import CarveSettings
from fourk4d_ns.cli.demo_scene import entrypoint
from fourk4d_ns.demo.capture import PRESETS, write_demo_capture
from fourk4d_ns.demo.video_layouts import CRF, ENCODERS
from fourk4d_ns.io.errors import CaptureError
from fourk4d_ns.io.images import read_image
from fourk4d_ns.io.video import available_encoder, write_video

TINY = PRESETS["tiny"]
NUM_CAMERAS = TINY.layout.train_cameras + TINY.layout.test_cameras
ENCODER = available_encoder(ENCODERS)
# Codec error budget of the demo's videos (CRF 12, 4:4:4) decoded to the JPEG cache, in 8-bit levels:
# measured about 1.4-1.5 mean absolute error per image on the tiny preset's high-frequency textures.
MAX_IMAGE_MAE = 2.5
MIN_MASK_AGREEMENT = 0.99


@pytest.fixture(scope="module")
def video_captures(tmp_path_factory) -> dict[str, Path]:
    """The tiny demo capture (seed 0, as the image-layout fixture) in both EasyMocap video layouts."""
    root = tmp_path_factory.mktemp("videos")
    return {
        layout: write_demo_capture(root / layout, preset="tiny", videos=layout, progress=False)
        for layout in ("easymocap", "4k4d")
    }


@pytest.fixture
def capture_4k4d(video_captures: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the 4K4D-layout capture (videos only, nothing decoded yet)."""
    return Path(shutil.copytree(video_captures["4k4d"], tmp_path / "4k4d"))


def parse(data: Path, split: str = "train", **options):
    return EasyMocapDataParserConfig(data=data, **options).setup().get_dataparser_outputs(split)


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


def test_png_frames_on_request_and_explicit_video_folders(capture_4k4d: Path):
    outputs = parse(
        capture_4k4d, frame_format="png", images_dir=f"videos_{ENCODER}", masks_dir=f"videos_masks_{ENCODER}"
    )
    assert {p.suffix for p in outputs.image_filenames} == {".png"}
    # A later reader that does not ask for a format (carving) reuses the PNG cache instead of flipping it.
    layout = read_layout(capture_4k4d, progress=False)
    assert layout.image_paths[0][0].suffix == ".png"


def test_interrupted_decode_resumes_without_redoing_work(capture_4k4d: Path, monkeypatch):
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


def test_carving_works_on_a_video_capture(capture_4k4d: Path):
    carved = carve(capture_4k4d, CarveSettings(coarse_resolution=32, fine_resolution=48))
    assert len(carved.frame_names) == TINY.num_frames
    assert all(entry["hull_points"] > 0 for entry in carved.summary["frames"].values())


def test_cli_writes_a_video_layout(tmp_path: Path, capsys):
    entrypoint(["--output", str(tmp_path / "v"), "--preset", "tiny", "--videos", "easymocap", "--no-progress"])
    assert "'easymocap' video layout" in capsys.readouterr().out
    assert len(list((tmp_path / "v" / "videos").glob("*.mp4"))) == NUM_CAMERAS
