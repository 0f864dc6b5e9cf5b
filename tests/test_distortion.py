"""Lens distortion end to end: one convention (OpenCV's model, pixel centers at +0.5, images distorted
on disk and undistorted at load into the capture's own K) in projection, the demo's distorted
captures, the image loader, carving, the datamanager and training."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import carve
from scipy.spatial import cKDTree
from test_fourk4d_method import ns, train

from dataparsers.easymocap_cameras import read_cameras, write_cameras
from fourk4d_ns.carving.capture import load_carved
from fourk4d_ns.carving.visual_hull import CarveSettings
from fourk4d_ns.core.camera import opencv_intrinsics, project_points, undistort_pixels, undistortion_maps
from fourk4d_ns.demo import capture
from fourk4d_ns.demo.capture import DemoPreset, write_demo_capture
from fourk4d_ns.demo.figure import ArticulatedFigure
from fourk4d_ns.demo.imperfections import lens_distortion
from fourk4d_ns.demo.rig import RigLayout
from fourk4d_ns.integration.datamanager import FourK4DDataManagerConfig
from fourk4d_ns.integration.frame_cache import ImageSource, load_image
from fourk4d_ns.io.images import read_image, read_mask

K = np.array([[1000.0, 0.0, 961.3], [0.0, 1004.0, 538.6], [0.0, 0.0, 1.0]])
DIST = np.array([-0.3, 0.1, 1e-3, -8e-4, 0.01])
"""A 1920x1080 camera with a strong barrel lens: its corners lie at a normalized radius of ~1.1."""

CHECK = DemoPreset(RigLayout(train_cameras=6, test_cameras=1, height=320, width=320), num_frames=1, fps=12.0)
"""One frame of the demo rig at 320x320: the lens moves the figure's extremities by ~2 pixels,
enough to see in images and carving (the tiny preset's 64x64 shows under half a pixel)."""
CARVE = CarveSettings(fine_resolution=128)


def test_projection_matches_opencv_with_distortion():
    rng = np.random.default_rng(0)
    rotation = rng.normal(0.0, 0.3, 3)
    R, T = cv2.Rodrigues(rotation)[0], np.array([0.1, -0.2, 4.0])
    points = rng.uniform(-1.5, 1.5, (500, 3))
    # OpenCV puts pixel centers at integers: the same camera has its principal point 0.5 lower there.
    expected, _ = cv2.projectPoints(points, rotation, T, opencv_intrinsics(K), DIST)
    expected = expected.reshape(-1, 2) + 0.5
    pixels, depth = project_points(points, K, R, T, DIST)
    np.testing.assert_allclose(pixels, expected, atol=1e-8)
    np.testing.assert_allclose(depth, points @ R[2] + T[2])
    as_torch = [torch.as_tensor(a, dtype=torch.float32) for a in (points, K, R, T, DIST)]
    np.testing.assert_allclose(project_points(*as_torch)[0].numpy(), expected, atol=2e-3)


def test_undistort_pixels_inverts_the_projection_to_the_corners():
    xs, ys = np.meshgrid(np.linspace(0, 1920, 25), np.linspace(0, 1080, 15))
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1)
    normalized = undistort_pixels(pixels, K, DIST)
    rays = np.concatenate([normalized, np.ones((len(normalized), 1))], axis=1)
    back, _ = project_points(rays, K, np.eye(3), np.zeros(3), DIST)
    np.testing.assert_allclose(back, pixels, atol=1e-6)  # OpenCV's default 5 iterations: 0.5 px at the corners


def test_undistortion_maps_sample_where_the_ray_of_each_pixel_center_lands():
    height, width = 1080, 1920
    map_x, map_y = undistortion_maps(K, DIST, height, width)
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(0, height, 50), rng.integers(0, width, 50)
    rays = np.linalg.solve(K, np.stack([cols + 0.5, rows + 0.5, np.ones(50)]))  # pinhole rays of the centers
    distorted, _ = project_points(rays.T, K, np.eye(3), np.zeros(3), DIST)
    # remap reads the source at (map_x, map_y) in OpenCV's pixel indices, centers at integers.
    np.testing.assert_allclose(map_x[rows, cols], distorted[:, 0] - 0.5, atol=1e-3)
    np.testing.assert_allclose(map_y[rows, cols], distorted[:, 1] - 0.5, atol=1e-3)


@pytest.fixture(scope="module")
def check_captures(tmp_path_factory) -> tuple[Path, Path]:
    """The CHECK preset written as pinhole images and through the demo lenses (same seed and rig)."""
    root = tmp_path_factory.mktemp("distortion")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(capture.PRESETS, "check", CHECK)
        pinhole = write_demo_capture(root / "pinhole", preset="check", progress=False)
        distorted = write_demo_capture(root / "distorted", preset="check", progress=False, distorted=True)
    return pinhole, distorted


def test_distorted_capture_records_the_lens(check_captures):
    pinhole, distorted = check_captures
    rig = read_cameras(distorted / "intri.yml", distorted / "extri.yml")
    reference = read_cameras(pinhole / "intri.yml", pinhole / "extri.yml")
    np.testing.assert_allclose(rig.dist, lens_distortion(len(rig), seed=0), atol=1e-12)
    assert np.all(rig.dist[:, 0] < -0.15) and np.all(reference.dist == 0)
    for field in ("K", "R", "T", "height", "width"):
        np.testing.assert_allclose(getattr(rig, field), getattr(reference, field), atol=1e-9)
    # Surface points projected by OpenCV (with the lens, centers at integers) fall inside the distorted
    # masks; without the lens, some of them miss.
    points = ArticulatedFigure(seed=0).surface_points(0.0, 20000, seed=0)
    inside, inside_pinhole = [], []
    for c, name in enumerate(rig.names):
        mask = read_mask(distorted / "masks" / name / "000000.png")
        rotation = cv2.Rodrigues(rig.R[c])[0]
        for dist, found in ((rig.dist[c], inside), (np.zeros(5), inside_pinhole)):
            pixels, _ = cv2.projectPoints(points, rotation, rig.T[c], opencv_intrinsics(rig.K[c]), dist)
            index = np.floor(pixels.reshape(-1, 2) + 0.5).astype(int)  # +0.5: back to centers at +0.5
            found.append(mask[index[:, 1], index[:, 0]].mean())
    # 320x320 limbs are ~10 pixels wide: points on silhouette pixels whose center misses remain.
    assert min(inside) > 0.9
    assert np.mean(inside) > np.mean(inside_pinhole) + 0.02, (inside, inside_pinhole)


def band_shift(reference: np.ndarray, image: np.ndarray, rows: slice) -> float:
    """Length (pixels) of the translation between two RGB images' rows, by phase correlation."""
    gray = [cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)[rows].astype(np.float32) for a in (reference, image)]
    return float(np.hypot(*cv2.phaseCorrelate(*map(np.ascontiguousarray, gray))[0]))


def test_undistorting_at_load_gives_the_pinhole_images(check_captures):
    pinhole, distorted = check_captures
    rig = read_cameras(distorted / "intri.yml", distorted / "extri.yml")
    top, bottom = slice(0, CHECK.layout.height // 3), slice(2 * CHECK.layout.height // 3, None)
    interior = (slice(8, -8), slice(8, -8))
    for c, name in enumerate(rig.names):
        files = distorted / "images" / name / "000000.png", distorted / "masks" / name / "000000.png"
        loaded = load_image(ImageSource(*files, rig.K[c], rig.dist[c]))
        recorded = read_image(files[0])
        expected = read_image(pinhole / "images" / name / "000000.png")
        expected_mask = read_mask(pinhole / "masks" / name / "000000.png")
        error = np.abs(loaded.rgb.astype(float) - expected)[interior].mean()
        assert error < 1.2, (name, error)  # anti-aliased edges resampled; 1.1-1.4 levels without undistortion
        for rows in (top, bottom):  # the head and the feet, where the lens moves the figure most
            assert band_shift(expected, loaded.rgb, rows) < 0.25
            assert band_shift(expected, recorded, rows) > 0.5, "the lens is visible"
        union = (loaded.mask | expected_mask).sum()
        assert (loaded.mask & expected_mask).sum() / union > 0.96
        assert (read_mask(files[1]) & expected_mask).sum() / union < (loaded.mask & expected_mask).sum() / union


def true_surface_inside(scene: Path, count: int = 20000) -> float:
    """Fraction of true surface points inside a kept voxel of the carved hull of frame 0."""
    carved = load_carved(scene)
    voxel = carved.summary["fine_voxel_size"]
    truth = ArticulatedFigure(seed=0).surface_points(0.0, count, seed=0)
    distance, _ = cKDTree(carved.hull("000000")).query(truth, p=np.inf)
    return float(np.mean(distance <= 0.5 * voxel * (1 + 1e-4)))


def test_carving_a_distorted_capture_gives_the_pinhole_hull(check_captures, tmp_path: Path):
    pinhole, distorted = check_captures
    ignored = Path(shutil.copytree(distorted, tmp_path / "ignored"))  # the lens left out of the camera files
    rig = read_cameras(ignored / "intri.yml", ignored / "extri.yml")
    rig.dist[:] = 0.0
    write_cameras(ignored, rig)
    for scene in (pinhole, distorted, ignored):
        carve(scene, CARVE)
    voxel = load_carved(pinhole).summary["fine_voxel_size"]
    assert true_surface_inside(pinhole) == 1.0
    assert true_surface_inside(distorted) == 1.0
    np.testing.assert_allclose(load_carved(distorted).bounds, load_carved(pinhole).bounds, atol=voxel)
    assert true_surface_inside(ignored) < 0.998, "ignoring the lens cuts the extremities (measured: 0.9935)"


def test_datamanager_serves_the_distorted_capture_as_the_pinhole_one(check_captures):
    managers = [FourK4DDataManagerConfig(data=scene, carve=CARVE).setup(test_mode="test") for scene in check_captures]
    (pinhole_camera, pinhole_batch), (camera, batch) = (manager.eval_item(0) for manager in managers)
    assert camera.distortion_params is None  # every image the model sees is a pinhole image
    for key in ("fx", "fy", "cx", "cy", "camera_to_worlds"):
        assert torch.allclose(getattr(camera, key), getattr(pinhole_camera, key))
    error = (batch["image"] - pinhole_batch["image"]).abs().mean()
    assert error < 1.5 / 255
    dataparser_cameras = managers[1].eval_dataset.cameras
    assert dataparser_cameras.distortion_params is not None and bool(dataparser_cameras.distortion_params.any())
    banks = [manager.source_bank() for manager in managers]
    assert torch.allclose(banks[1].K, banks[0].K)
    train_camera = banks[1].train_cameras[0]
    sources = [bank.images_of(0, [train_camera], "cpu") for bank in banks]
    assert (sources[1] - sources[0]).abs().mean() < 1.5 / 255


@pytest.mark.slow
def test_trains_and_evaluates_on_a_distorted_capture(tmp_path: Path):
    """nerfstudio cameras with distortion through ns-train (carving, training, the bake) and ns-eval."""
    scene = write_demo_capture(tmp_path / "distorted", preset="tiny", progress=False, distorted=True)
    run = train(scene, tmp_path / "outputs", 3)
    ns("ns-eval", "--load-config", run / "config.yml", "--output-path", tmp_path / "eval.json", cwd=tmp_path)
