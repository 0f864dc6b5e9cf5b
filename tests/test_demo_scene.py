"""The built-in demo capture: layout, cameras, masks against the figure's geometry, determinism, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import trimesh
from PIL import Image

from dataparsers.easymocap_cameras import read_cameras
from fourk4d_ns.cli.demo_scene import entrypoint
from fourk4d_ns.core.camera import project_points
from fourk4d_ns.core.timeline import frame_time
from fourk4d_ns.demo.capture import PRESETS, OutputExistsError, write_demo_capture
from fourk4d_ns.demo.figure import ArticulatedFigure
from fourk4d_ns.demo.human_parsing import LIP_LABELS, PART_LABELS, label_palette
from fourk4d_ns.demo.render import CameraView, EmbreeUnavailableError, FrameRenderer
from fourk4d_ns.demo.rig import build_rig
from fourk4d_ns.io.errors import InputError
from fourk4d_ns.io.images import apply_color_curves

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


# Flavours: the same renders written as public captures write them (fourk4d_ns/demo/flavors.py).


def yaml_keys(path: Path) -> set[str]:
    """Top-level keys of an OpenCV YAML file."""
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    keys = set(storage.root().keys())
    storage.release()
    return keys


def yaml_matrix(path: Path, key: str) -> np.ndarray:
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    matrix = storage.getNode(key).mat()
    storage.release()
    return matrix


def frame_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def surface_hits(scene: Path, rig, masks: str, frame: int = 1) -> float:
    """Fraction of true surface points (projected with ``rig``) inside the masks (> 127) of a frame."""
    points = ArticulatedFigure(seed=0).surface_points(frame_time(frame, TINY.num_frames), 3000, seed=frame)
    hits = []
    for c, name in enumerate(rig.names):
        mask = read_image(next((scene / masks / name).glob(f"{frame:06d}.*")))
        mask = mask.max(axis=2) if mask.ndim == 3 else mask
        pixels, _ = project_points(points, rig.K[c], rig.R[c], rig.T[c], rig.dist[c])
        index = np.floor(pixels).astype(int)
        hits.append((mask[index[:, 1], index[:, 0]] > 127).mean())
    return float(np.mean(hits))


def test_dna_rendering_flavor_files_and_cameras(demo_flavors):
    scene = demo_flavors["dna-rendering"]
    names = [f"{i:02d}" for i in range(NUM_CAMERAS)]
    frames = [f"{f:06d}.jpg" for f in range(TINY.num_frames)]
    for folder in ("images", "images_calib", "masks"):
        assert frame_files(scene / folder) == names
        assert all(frame_files(scene / folder / name) == frames for name in names)
    # Two image sizes, as DNA-Rendering's 5 MP and 12 MP cameras (aspect ratios kept), among training
    # and held-out cameras alike.
    sizes = {name: read_image(scene / "images_calib" / name / "000000.jpg").shape for name in names}
    large = {name for name, shape in sizes.items() if shape == (94, 128, 3)}
    assert large == {"03", "07"} and all(sizes[n] == (64, 76, 3) for n in names if n not in large)
    intri, extri = scene / "optimized" / "intri.yml", scene / "optimized" / "extri.yml"
    for folder in (scene, scene / "optimized"):  # EasyVolcap's spelling, R_ and Rot_ both, ccm_ 3x3
        keys = yaml_keys(folder / "intri.yml") | yaml_keys(folder / "extri.yml")
        for name in names:
            assert {f"K_{name}", f"D_{name}", f"H_{name}", f"W_{name}", f"ccm_{name}"} <= keys
            assert {f"R_{name}", f"Rot_{name}", f"T_{name}"} <= keys and f"dist_{name}" not in keys
        assert yaml_matrix(folder / "intri.yml", "D_00").shape == (5, 1)
        rotation = yaml_matrix(folder / "extri.yml", "Rot_05")
        np.testing.assert_allclose(cv2.Rodrigues(yaml_matrix(folder / "extri.yml", "R_05"))[0], rotation, atol=1e-12)
    refined = read_cameras(intri, extri)
    assert [int(h) for h in refined.height] == [sizes[n][0] for n in names]
    assert [int(w) for w in refined.width] == [sizes[n][1] for n in names]
    # The images agree with the refined cameras; the top-level calibration is a little off.
    rough = read_cameras(scene / "intri.yml", scene / "extri.yml")
    angles = [np.degrees(np.linalg.norm(cv2.Rodrigues(a @ b.T)[0])) for a, b in zip(rough.R, refined.R)]
    assert 0.04 < min(angles) and max(angles) < 0.21
    assert np.abs(rough.centers - refined.centers).max() < 0.006
    assert surface_hits(scene, refined, "masks") > 0.8


def test_dna_rendering_flavor_colors_and_masks(demo_flavors):
    scene = demo_flavors["dna-rendering"]
    intri = scene / "optimized" / "intri.yml"
    for name in ("00", "03", "06"):
        ccm = yaml_matrix(intri, f"ccm_{name}")
        np.testing.assert_array_equal(ccm, yaml_matrix(scene / "intri.yml", f"ccm_{name}"))
        raw = read_image(scene / "images" / name / "000002.jpg")[:, :, ::-1]  # OpenCV reads BGR
        calibrated = read_image(scene / "images_calib" / name / "000002.jpg")[:, :, ::-1]
        # EasyVolcap's convention: per channel a v^2 + b v + c, rows R, G, B (JPEG error only remains).
        assert np.abs(apply_color_curves(raw, ccm).astype(float) - calibrated).mean() < 1.5
        assert np.abs(apply_color_curves(raw, ccm[::-1]).astype(float) - calibrated).mean() > 3.0
        assert np.abs(raw.astype(float) - calibrated).mean() > 3.0
        mask = cv2.imread(str(scene / "masks" / name / "000002.jpg"), cv2.IMREAD_UNCHANGED)
        assert mask.ndim == 2 and mask.dtype == np.uint8
        soft = (mask > 30) & (mask < 225)
        assert 0 < soft.mean() < 0.2 and ((mask <= 30) | (mask >= 225)).mean() > 0.8
    # The calibrated images are the figure as rendered (up to JPEG and the 8-bit round trip).
    rig = read_cameras(intri, scene / "optimized" / "extri.yml")
    c = rig.names.index("03")
    view = CameraView.from_calibration(rig.K[c], rig.R[c], rig.T[c], int(rig.height[c]), int(rig.width[c]), 2)
    figure = ArticulatedFigure(seed=0)
    rendered = FrameRenderer(figure.pose(frame_time(2, TINY.num_frames)), figure.materials).render(view).rgb
    calibrated = read_image(scene / "images_calib" / "03" / "000002.jpg")[:, :, ::-1]
    assert np.abs(calibrated.astype(float) - rendered).mean() < 4.0


def test_zju_mocap_flavor(demo_flavors, tiny: Path):
    scene = demo_flavors["zju-mocap"]
    names = [f"{i:02d}" for i in range(NUM_CAMERAS)]
    assert sorted(p.name for p in scene.iterdir() if p.is_dir()) == ["images", "mask", "schp"]
    intri_text = (scene / "intri.yml").read_text()
    assert "H_" not in intri_text and "W_" not in intri_text and "dist_00" in intri_text and "D_00" not in intri_text
    assert yaml_matrix(scene / "extri.yml", "R_00").shape == (3, 1) and "Rot_" not in (scene / "extri.yml").read_text()
    rig = read_cameras(scene / "intri.yml", scene / "extri.yml")
    assert np.all(rig.height == 0) and np.all(rig.width == 0)
    palette = label_palette()
    seen = set()
    for name in names:
        for f in range(TINY.num_frames):
            image = read_image(scene / "images" / name / f"{f:06d}.jpg")
            mask = cv2.imread(str(scene / "mask" / name / f"{f:06d}.png"), cv2.IMREAD_UNCHANGED)
            reference = read_image(tiny / "masks" / name / f"{f:06d}.png")
            assert mask.shape == (64, 64) and set(np.unique(mask)) == {0, 1}
            np.testing.assert_array_equal(mask * 255, reference)  # the same masks, stored as 0/1
            png = read_image(tiny / "images" / name / f"{f:06d}.png")
            assert image.shape == (64, 64, 3) and np.abs(image.astype(float) - png).mean() < 6.0  # JPEG of the PNG
            with Image.open(scene / "schp" / name / f"{f:06d}.png") as parsing:
                assert parsing.mode == "P"
                np.testing.assert_array_equal(np.asarray(parsing.getpalette()[:60]).reshape(-1, 3), palette[:20])
                labels = np.asarray(parsing)
            np.testing.assert_array_equal(labels > 0, mask > 0)  # non-zero is the person
            colors = read_image(scene / "schp" / name / f"{f:06d}.png")  # OpenCV expands the palette
            np.testing.assert_array_equal(colors[:, :, ::-1], palette[labels])
            seen |= set(np.unique(labels).tolist())
    assert {LIP_LABELS[i] for i in seen} == set(PART_LABELS.values()) | {"Background"} and len(seen) == 10
    # LIP's label order, as SCHP writes it: 13 face, 14-15 arms, 16-17 legs, 18-19 shoes.
    assert [LIP_LABELS[i] for i in (5, 9, 13, 14, 17, 19)] == [
        "Upper-clothes",
        "Pants",
        "Face",
        "Left-arm",
        "Right-leg",
        "Right-shoe",
    ]
    assert np.all(palette[1:20].max(axis=1) > 0) and np.all(palette[0] == 0)


def test_nhr_flavor(demo_flavors, tiny: Path):
    scene = demo_flavors["nhr"]
    assert sorted(p.name for p in scene.iterdir() if p.is_dir()) == ["images", "mask"]
    agreement = []
    for name in ("00", "04", "07"):
        mask = cv2.imread(str(scene / "mask" / name / "000001.jpg"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (64, 64, 3) and len(np.unique(mask)) > 2  # three channels, JPEG ringing
        reference = read_image(tiny / "masks" / name / "000001.png") > 0
        agreement.append(((mask.max(axis=2) > 127) == reference).mean())
        assert read_image(scene / "images" / name / "000001.jpg").shape == (64, 64, 3)
    assert min(agreement) > 0.99


def test_flavors_are_deterministic_and_combine_with_distortion(demo_flavors, tmp_path: Path, capsys):
    again = tmp_path / "dna"
    entrypoint(["--output", str(again), "--preset", "tiny", "--flavor", "dna-rendering", "--no-progress"])
    assert "dna-rendering" in capsys.readouterr().out
    for name in ("intri.yml", "optimized/extri.yml", "images/07/000003.jpg", "images_calib/03/000001.jpg"):
        assert (again / name).read_bytes() == (demo_flavors["dna-rendering"] / name).read_bytes(), name
    distorted = write_demo_capture(tmp_path / "zju", preset="tiny", flavor="zju-mocap", distorted=True, progress=False)
    rig = read_cameras(distorted / "intri.yml", distorted / "extri.yml")
    assert np.all(rig.dist[:, 0] < -0.15)
    assert json.loads((distorted / "demo.json").read_text())["distorted"] is True
    with pytest.raises(InputError, match="easymocap flavor only"):
        write_demo_capture(tmp_path / "v", preset="tiny", flavor="nhr", videos="4k4d", progress=False)
    with pytest.raises(InputError, match="distortion"):
        write_demo_capture(tmp_path / "d", preset="tiny", distorted=True, videos="dynerf", progress=False)
    assert not (tmp_path / "v").exists() and not (tmp_path / "d").exists()
