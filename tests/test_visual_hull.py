"""Visual-hull carving: containment of the true surface, tightness, caching and bad masks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import carve
from scipy.spatial import cKDTree

from dataparsers.easymocap import EasyMocapDataParserConfig
from fourk4d_ns.carving.capture import load_carved
from fourk4d_ns.carving.visual_hull import CarveSettings, sample_hull_surface
from fourk4d_ns.core.timeline import frame_time
from fourk4d_ns.demo.capture import write_demo_capture
from fourk4d_ns.demo.figure import ArticulatedFigure

FAST = CarveSettings(fine_resolution=128)
"""Coarser fine voxels for the 64x64 tiny capture (its pixels are ~3 cm; 256 would waste time)."""


def hull_measurements(scene: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the fraction of true surface points inside a kept voxel, and the hull bounds'
    excess over the true bounds on each of the six sides (metres, positive = hull is larger)."""
    carved = load_carved(scene)
    voxel = carved.summary["fine_voxel_size"]
    figure = ArticulatedFigure(seed=seed)
    inside, excess = [], []
    for f, frame in enumerate(carved.frame_names):
        t = frame_time(f, len(carved.frame_names))
        truth = figure.surface_points(t, 4000, seed=f)
        distance, _ = cKDTree(carved.hull(frame)).query(truth, p=np.inf)  # L-inf: inside the voxel cube
        inside.append(np.mean(distance <= 0.5 * voxel * (1 + 1e-4)))
        true_bounds = figure.bounds_at(t)
        hull_bounds = np.asarray(carved.summary["frames"][frame]["bounds"])
        excess.append(np.concatenate([true_bounds[0] - hull_bounds[0], hull_bounds[1] - true_bounds[1]]))
    return np.asarray(inside), np.asarray(excess)


@pytest.fixture(scope="module")
def carved_tiny(tiny_demo_capture: Path, tmp_path_factory) -> Path:
    import shutil

    scene = Path(shutil.copytree(tiny_demo_capture, tmp_path_factory.mktemp("carve") / "tiny"))
    carve(scene, FAST, progress=False)
    return scene


def test_tiny_hull_contains_true_surface_and_is_tight(carved_tiny: Path):
    inside, excess = hull_measurements(carved_tiny)
    assert np.all(inside == 1.0), inside
    # 64x64 images: a pixel covers ~3.4 cm at the subject; 6 cameras leave some inherent slack.
    assert excess.min() >= 0.0
    assert np.median(excess) < 0.06 and excess.max() < 0.2, excess


def test_cache_layout_and_summary(carved_tiny: Path):
    carved = load_carved(carved_tiny)
    summary = carved.summary
    assert summary["cameras"] == ["00", "01", "02", "03", "04", "05"]  # held-out 06, 07 left out
    assert carved.frame_names == ["000000", "000001", "000002", "000003"]
    lower, upper = carved.bounds
    for frame in carved.frame_names:
        hull, surface = carved.hull(frame), carved.surface(frame)
        assert len(hull) == summary["frames"][frame]["hull_points"] > 100
        assert len(surface) == summary["frames"][frame]["surface_points"] > 100
        assert np.all(hull >= lower) and np.all(hull <= upper)
        # Surface samples lie on the hull's boundary: within a voxel of some hull voxel center.
        distance, _ = cKDTree(hull).query(surface)
        assert distance.max() < 1.5 * summary["fine_voxel_size"]
    # The dataparser's scene box now comes from the carved bounds.
    box = (
        EasyMocapDataParserConfig(data=carved_tiny, scene_box_margin=0)
        .setup()
        .get_dataparser_outputs("train")
        .scene_box.aabb
    )
    assert torch.allclose(box, torch.tensor(carved.bounds, dtype=torch.float32))


def test_cache_is_reused_and_invalidated(carved_tiny: Path):
    summary_path = load_carved(carved_tiny).folder / "carve.json"
    stamp = summary_path.stat().st_mtime_ns
    start = time.perf_counter()
    carve(carved_tiny, FAST, progress=False)
    assert summary_path.stat().st_mtime_ns == stamp and time.perf_counter() - start < 5
    other = CarveSettings(fine_resolution=96)
    result = carve(carved_tiny, other, progress=False)
    assert result.summary["settings"]["fine_resolution"] == 96
    carve(carved_tiny, FAST, progress=False)  # back to the shared fixture's settings
    assert not list(result.folder.parent.glob(".carve*"))  # no staging folders left behind


def test_empty_masks_do_not_abort(tiny_demo_copy: Path):
    for camera, frame in (("02", "000001"), ("04", "000002")):
        cv2.imwrite(str(tiny_demo_copy / "masks" / camera / f"{frame}.png"), np.zeros((64, 64), np.uint8))
    with pytest.warns(UserWarning, match="empty masks from cameras"):
        carved = carve(tiny_demo_copy, FAST, progress=False)
    frames = carved.summary["frames"]
    assert frames["000001"]["cameras_skipped"] == ["02"]
    assert frames["000002"]["cameras_skipped"] == ["04"]
    assert frames["000000"]["cameras_skipped"] == []
    assert all(entry["surface_points"] > 100 for entry in frames.values())


def test_no_masks_at_all_is_a_clear_error(tiny_demo_copy: Path):
    import shutil

    from fourk4d_ns.io.errors import CaptureError

    shutil.rmtree(tiny_demo_copy / "masks")
    with pytest.raises(CaptureError, match="needs a foreground mask"):
        carve(tiny_demo_copy, FAST, progress=False)


def test_surface_resampling_of_a_voxelised_sphere():
    voxel = 0.02
    axis = np.arange(-0.6, 0.6, voxel) + voxel / 2
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    ball = grid[np.linalg.norm(grid, axis=1) <= 0.5]
    samples = sample_hull_surface(ball, voxel, CarveSettings(surface_points=5000), seed=0)
    assert samples.shape == (5000, 3)
    radius = np.linalg.norm(samples, axis=1)
    assert np.all(np.abs(radius - 0.5) < 1.5 * voxel)
    # Area-weighted: each octant gets about an eighth of the samples.
    octants = np.unique((samples > 0) @ np.array([1, 2, 4]), return_counts=True)[1]
    assert octants.min() > 0.8 * 5000 / 8
    default = sample_hull_surface(ball, voxel, CarveSettings(), seed=0)
    assert abs(len(default) - 4 * np.pi * 0.25 / voxel**2) < 0.1 * len(default)  # one per voxel-sized patch


def test_cli(tiny_demo_copy: Path):
    script = Path(sys.executable).with_name("fourk4d-carve")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "fourk4d_ns.cli.carve"]
    result = subprocess.run(
        command + ["--data", str(tiny_demo_copy), "--settings.fine-resolution", "64"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "carved 4 frames with 6 cameras" in result.stdout
    summary = json.loads((tiny_demo_copy / "fourk4d" / "carve" / "carve.json").read_text())
    assert summary["settings"]["fine_resolution"] == 64


@pytest.mark.slow
def test_demo_hull_contains_true_surface_and_is_tight(tmp_path: Path):
    """The demo preset (16 training cameras, 256x256, 24 frames) with default settings."""
    scene = write_demo_capture(tmp_path / "demo", preset="demo", seed=0, progress=False)
    carve(scene, progress=False)
    inside, excess = hull_measurements(scene)
    assert np.all(inside == 1.0), inside
    # Measured: every side of every frame is 8-37 mm larger than the truth (median ~16 mm, about 1%
    # of the 1.69 m figure: two fine voxels of 7 mm plus the 1.5 px quantization allowance).
    assert excess.min() >= 0.0 and np.median(excess) < 0.025 and excess.max() < 0.05, excess
