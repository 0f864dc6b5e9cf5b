"""The built-in demo capture: layout, cameras, masks against the figure's geometry, determinism, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh

from dataparsers.easymocap_cameras import read_cameras
from fourk4d_ns.cli.demo_scene import entrypoint
from fourk4d_ns.core.timeline import frame_time
from fourk4d_ns.demo.capture import PRESETS, OutputExistsError, write_demo_capture
from fourk4d_ns.demo.figure import ArticulatedFigure
from fourk4d_ns.demo.render import EmbreeUnavailableError, FrameRenderer
from fourk4d_ns.demo.rig import build_rig

TINY = PRESETS["tiny"]
NUM_CAMERAS = TINY.layout.train_cameras + TINY.layout.test_cameras


@pytest.fixture
def tiny(tiny_demo_capture: Path) -> Path:
    """The tiny preset with seed 0, written once per session by conftest (read-only)."""
    return tiny_demo_capture


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def test_frame_time():
    assert frame_time(0, 1) == 0.0
    assert frame_time(0, 4) == 0.0 and frame_time(3, 4) == 1.0
    assert frame_time(1, 5) == pytest.approx(0.25)


def test_layout_counts_sizes_and_dtypes(tiny: Path):
    names = [f"{i:02d}" for i in range(NUM_CAMERAS)]
    frames = [f"{f:06d}.png" for f in range(TINY.num_frames)]
    assert sorted(p.name for p in (tiny / "images").iterdir()) == names
    assert sorted(p.name for p in (tiny / "masks").iterdir()) == names
    for name in names:
        assert sorted(p.name for p in (tiny / "images" / name).iterdir()) == frames
        assert sorted(p.name for p in (tiny / "masks" / name).iterdir()) == frames
        for frame in frames:
            image = read_image(tiny / "images" / name / frame)
            mask = read_image(tiny / "masks" / name / frame)
            assert image.shape == (TINY.layout.height, TINY.layout.width, 3) and image.dtype == np.uint8
            assert mask.shape == (TINY.layout.height, TINY.layout.width) and mask.dtype == np.uint8
            assert set(np.unique(mask)) <= {0, 255}
            assert 0.02 < (mask == 255).mean() < 0.6
            # The background is not black, so a method must use the masks to separate it.
            assert image[mask == 0].mean() > 40
    assert not list(tiny.parent.glob(".*")), "no temporary files or folders are left next to the capture"


def test_split_and_metadata(tiny: Path):
    split = json.loads((tiny / "split.json").read_text())
    assert len(split["train_cameras"]) == TINY.layout.train_cameras
    assert len(split["test_cameras"]) == TINY.layout.test_cameras
    assert sorted(split["train_cameras"] + split["test_cameras"]) == [f"{i:02d}" for i in range(NUM_CAMERAS)]
    assert isinstance(split["note"], str)
    meta = json.loads((tiny / "demo.json").read_text())
    assert meta["preset"] == "tiny" and meta["seed"] == 0
    assert (meta["num_frames"], meta["height"], meta["width"]) == (TINY.num_frames, 64, 64)
    assert {"fps", "generator_version"} <= meta.keys()


def test_cameras_read_back_match_the_rig(tiny: Path):
    rig = read_cameras(tiny / "intri.yml", tiny / "extri.yml")
    figure = ArticulatedFigure(seed=0)
    vertices = np.concatenate([figure.pose(frame_time(f, TINY.num_frames)).vertices for f in range(TINY.num_frames)])
    expected, test_names = build_rig(TINY.layout, vertices)
    assert rig.names == expected.names
    np.testing.assert_allclose(rig.K, expected.K, rtol=1e-12)
    np.testing.assert_allclose(rig.R, expected.R, atol=1e-9)  # stored as a Rodrigues vector
    np.testing.assert_allclose(rig.T, expected.T, atol=1e-9)
    assert np.all(rig.dist == 0) and np.all(rig.height == 64) and np.all(rig.width == 64)
    assert np.all(rig.K[:, 0, 0] == rig.K[:, 1, 1]) and np.all(rig.K[:, :2, 2] == 32.0)

    split = json.loads((tiny / "split.json").read_text())
    assert split["test_cameras"] == test_names
    centers = rig.centers
    is_test = np.isin(rig.names, test_names)
    ring_axis = centers[~is_test, :2].mean(axis=0)  # the ring is centered on the subject's bounding box
    np.testing.assert_allclose(np.linalg.norm(centers[:, :2] - ring_axis, axis=1), TINY.layout.ring_radius, atol=1e-6)
    # Held-out cameras stand at other heights and azimuths than every training camera.
    distances = np.linalg.norm(centers[is_test][:, None] - centers[~is_test][None], axis=-1)
    assert distances.min() > 0.5
    assert not np.isin(np.round(centers[is_test, 2], 3), np.round(centers[~is_test, 2], 3)).any()


def test_surface_points_project_inside_masks(tiny: Path):
    rig = read_cameras(tiny / "intri.yml", tiny / "extri.yml")
    figure = ArticulatedFigure(seed=0)
    kernel = np.ones((3, 3), np.uint8)
    for f in range(TINY.num_frames):
        points = figure.surface_points(frame_time(f, TINY.num_frames), 3000, seed=f)
        for c, name in enumerate(rig.names):
            mask = read_image(tiny / "masks" / name / f"{f:06d}.png") > 0
            cam = points @ rig.R[c].T + rig.T[c]
            pixels = cam @ rig.K[c].T
            xy = np.floor(pixels[:, :2] / pixels[:, 2:3]).astype(int)
            inside_image = (xy >= 0).all(axis=1) & (xy[:, 0] < 64) & (xy[:, 1] < 64)
            assert inside_image.all(), "the figure is never cut off"
            # At 64x64 a limb is ~3 pixels wide, so many points fall on silhouette pixels whose center misses.
            assert mask[xy[:, 1], xy[:, 0]].mean() > 0.8
            dilated = cv2.dilate(mask.astype(np.uint8), kernel) > 0
            assert dilated[xy[:, 1], xy[:, 0]].all()


def test_figure_moves_non_rigidly():
    figure = ArticulatedFigure(seed=0)
    start, end = figure.mesh_at(0.0), figure.mesh_at(1.0)
    assert start.faces.shape == end.faces.shape and np.array_equal(start.faces, end.faces)
    torso = figure.vertex_part == [p.name for p in figure.parts].index("torso")
    # Displacement relative to the torso's own motion: limbs swing by tens of centimetres.
    relative = (end.vertices - end.vertices[torso].mean(0)) - (start.vertices - start.vertices[torso].mean(0))
    assert np.linalg.norm(relative, axis=1).max() > 0.3
    assert np.abs(figure.bounds_at(0.0) - figure.bounds_at(1.0)).max() > 0.1
    for t in np.linspace(0.0, 1.0, 7):
        bounds = figure.bounds_at(t)
        assert bounds[0, 2] == pytest.approx(0.0, abs=1e-9), "stands on the floor"
        assert 1.6 < bounds[1, 2] < 1.8


def test_surface_points_lie_on_the_posed_mesh():
    figure = ArticulatedFigure(seed=3)
    points = figure.surface_points(0.4, 500, seed=1)
    assert points.shape == (500, 3)
    bounds = figure.bounds_at(0.4)
    assert (points >= bounds[0] - 1e-9).all() and (points <= bounds[1] + 1e-9).all()
    np.testing.assert_array_equal(points, figure.surface_points(0.4, 500, seed=1))


def test_same_seed_same_bytes_other_seed_differs(tiny: Path, tmp_path: Path):
    again = write_demo_capture(tmp_path / "again", preset="tiny", seed=0, progress=False)
    other = write_demo_capture(tmp_path / "other", preset="tiny", seed=1, progress=False)
    files = [
        "intri.yml",
        "extri.yml",
        "split.json",
        "demo.json",
        "images/00/000000.png",
        "images/07/000003.png",
        "masks/03/000002.png",
    ]
    for name in files:
        assert (again / name).read_bytes() == (tiny / name).read_bytes(), name
    assert (other / "images/00/000000.png").read_bytes() != (tiny / "images/00/000000.png").read_bytes()


def test_refuses_non_empty_output_without_overwrite(tmp_path: Path):
    output = tmp_path / "capture"
    output.mkdir()
    (output / "keep.txt").write_text("precious")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_demo_capture(output, preset="tiny", progress=False)
    assert [p.name for p in output.iterdir()] == ["keep.txt"]

    write_demo_capture(output, preset="tiny", overwrite=True, progress=False)
    assert not (output / "keep.txt").exists() and (output / "intri.yml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture"]


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch):
    calls = {"count": 0}
    original = FrameRenderer.render

    def failing_render(self, view):
        calls["count"] += 1
        if calls["count"] > 5:
            raise KeyboardInterrupt
        return original(self, view)

    monkeypatch.setattr(FrameRenderer, "render", failing_render)
    with pytest.raises(KeyboardInterrupt):
        write_demo_capture(tmp_path / "capture", preset="tiny", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_embree_is_an_error(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(trimesh.ray, "has_embree", False)
    with pytest.raises(EmbreeUnavailableError, match="embreex"):
        write_demo_capture(tmp_path / "capture", preset="tiny", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_and_refuses(tmp_path: Path, capsys):
    output = tmp_path / "cli"
    entrypoint(["--output", str(output), "--preset", "tiny", "--seed", "2", "--no-progress"])
    assert json.loads((output / "demo.json").read_text())["seed"] == 2
    assert "Wrote" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exit_info:
        entrypoint(["--output", str(output), "--preset", "tiny", "--no-progress"])
    assert exit_info.value.code == 2
    assert "--overwrite" in capsys.readouterr().err
