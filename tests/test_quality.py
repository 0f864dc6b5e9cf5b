"""Pieces that the quality settings rest on: even point subsets, the coverage metric, the viewer's start."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fourk4d_ns.core.metrics import coverage, error_magnitude, masked_psnr
from fourk4d_ns.core.sampling import even_subset, neighbour_distances, surface_subset, typical_spacing


def sphere_surface(count: int, seed: int = 0) -> np.ndarray:
    points = np.random.default_rng(seed).normal(size=(count, 3))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def largest_gap(subset: np.ndarray, surface: np.ndarray) -> float:
    """Largest distance from a surface point to the nearest kept point: the widest hole to cover."""
    from scipy.spatial import cKDTree

    return float(cKDTree(subset).query(surface)[0].max())


def test_even_subset_has_the_asked_count_and_smaller_gaps_than_random():
    surface = sphere_surface(20000)
    even = even_subset(surface, 3000, seed=1)
    random = surface_subset(surface, 3000, seed=1, kind="random")
    assert even.shape == random.shape == (3000, 3)
    assert len(np.unique(even, axis=0)) == 3000  # distinct points of the surface
    assert np.isin(even.view([("", even.dtype)] * 3), surface.view([("", surface.dtype)] * 3)).all()
    assert largest_gap(even, surface) < 0.8 * largest_gap(random, surface)
    # Even spacing: fewer very close pairs than a uniform draw.
    assert np.percentile(neighbour_distances(even), 10) > 1.3 * np.percentile(neighbour_distances(random), 10)


def test_subset_keeps_everything_under_the_limit_and_rejects_unknown_kinds():
    surface = sphere_surface(500)
    assert surface_subset(surface, None, 0) is surface
    assert surface_subset(surface, 800, 0) is surface
    with pytest.raises(ValueError, match="even"):
        surface_subset(surface, 100, 0, kind="poisson")  # type: ignore[arg-type]


def test_even_subset_depends_on_the_seed_only():
    surface = sphere_surface(5000)
    np.testing.assert_array_equal(even_subset(surface, 700, 3), even_subset(surface, 700, 3))
    assert not np.array_equal(even_subset(surface, 700, 3), even_subset(surface, 700, 4))


def test_typical_spacing_of_a_grid():
    side = np.arange(10) * 0.01
    grid = np.stack(np.meshgrid(side, side, side), -1).reshape(-1, 3)
    assert typical_spacing([grid, grid]) == pytest.approx(0.01)


def test_coverage_counts_silhouette_pixels_below_the_threshold():
    mask = torch.zeros(4, 5, 1)
    mask[:2] = 1  # ten silhouette pixels
    accumulation = torch.ones(4, 5, 1) * 0.2  # outside the mask: ignored
    accumulation[:2] = 0.95
    accumulation[0, :3] = 0.5  # three holes
    assert coverage(accumulation, mask) == pytest.approx(0.7)
    assert coverage(accumulation, torch.zeros_like(mask)) == 1.0


def test_masked_psnr_and_error_picture():
    image = torch.zeros(4, 4, 3)
    rgb = image.clone()
    rgb[0] = 0.1  # error inside the mask
    rgb[3] = 1.0  # error outside it
    mask = torch.zeros(4, 4, 1)
    mask[:2] = 1
    assert masked_psnr(rgb, image, mask) == pytest.approx(-10 * math.log10(0.01 / 2), rel=1e-5)
    error = error_magnitude(rgb, image)
    assert error.shape == (4, 4, 1) and float(error[3].min()) == 1.0 and float(error[1].max()) == 0.0


def test_viewer_starts_at_a_training_camera_looking_at_the_subject():
    from fourk4d_ns.integration.viewer_start import start_pose

    center = np.array([0.1, 0.2, 0.9])
    bounds = np.stack([center - [0.3, 0.3, 0.9], center + [0.3, 0.3, 0.9]])
    # OpenCV camera 3 m away along -y, looking along +y, image down = world -z.
    R = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    position = np.array([0.1, -2.8, 1.0])
    T = -R @ torch.tensor(position, dtype=torch.float32)
    pose = start_pose(R, T, bounds)
    np.testing.assert_allclose(pose["position"], position, atol=1e-5)
    np.testing.assert_allclose(pose["up_direction"], [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(pose["look_at"], [0.1, 0.2, 1.0], atol=1e-5)  # on the axis, level with it
    half_height = math.tan(math.radians(pose["fov"]) / 2) * 3.0
    assert half_height >= 0.9  # the whole figure fits vertically


def test_each_new_viewer_client_is_moved_to_the_start_pose():
    from types import SimpleNamespace

    from nerfstudio.viewer.viewer import VISER_NERFSTUDIO_SCALE_RATIO

    from fourk4d_ns.integration.viewer_start import StartAtTrainingCamera, start_pose

    class Client:
        def __init__(self):
            self.camera = SimpleNamespace()

        def atomic(self):
            from contextlib import nullcontext

            return nullcontext()

    bounds = np.array([[-0.3, -0.3, 0.0], [0.3, 0.3, 1.8]])
    R = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    T = -R @ torch.tensor([0.0, -3.0, 0.9])
    client = Client()
    StartAtTrainingCamera(lambda: None, bounds).place(client)  # no camera known yet: left alone
    assert vars(client.camera) == {}
    StartAtTrainingCamera(lambda: (R, T), bounds).place(client)
    pose = start_pose(R, T, bounds)
    np.testing.assert_allclose(client.camera.position, np.array(pose["position"]) * VISER_NERFSTUDIO_SCALE_RATIO)
    np.testing.assert_allclose(client.camera.look_at, np.array(pose["look_at"]) * VISER_NERFSTUDIO_SCALE_RATIO)
    assert client.camera.fov == pytest.approx(math.radians(pose["fov"]))
