"""The IBR visibility test (fourk4d_ns.core.visibility): hidden sources lend no color."""

from __future__ import annotations

import pytest
import torch

from fourk4d_ns.core import CoreConfig, FourK4DCore, SourceViews
from fourk4d_ns.core.visibility import (
    HIDDEN_LOGIT_PENALTY,
    first_surface_depth,
    hidden_in_sources,
)

SIZE = 32
K = torch.tensor([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])


def plane(z: float, half: float, count: int) -> torch.Tensor:
    """A square grid of count x count points at depth z (camera at the origin looking along +z)."""
    side = torch.linspace(-half, half, count)
    x, y = torch.meshgrid(side, side, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1), torch.full((count * count,), z)], dim=1)


def test_points_behind_a_surface_are_hidden_and_the_surface_is_not():
    front = plane(2.0, 0.5, 21)  # covers the middle of the view
    xyz = torch.cat([front, torch.tensor([[0.0, 0.0, 3.0], [0.0, 0.0, 2.01], [5.0, 0.0, 3.0], [0.95, 0.0, 3.0]])])
    radius = torch.full((len(xyz),), 0.05)
    R, T = torch.eye(3), torch.zeros(3)
    depth = first_surface_depth(xyz, radius, K, R, T, SIZE, SIZE, "torch", 0.01)
    assert depth.shape == (SIZE, SIZE)
    assert torch.isinf(depth[0, 0]) and abs(float(depth[16, 16]) - 2.0) < 1e-5
    hidden = hidden_in_sources(xyz, K[None], R[None], T[None], [depth], tolerance=0.05)
    assert hidden.shape == (1, len(xyz))
    assert not hidden[0, : len(front)].any()  # the surface itself
    behind, on_surface, outside, beside = hidden[0, len(front) :].tolist()
    assert behind and not on_surface and not outside and not beside


def test_depth_of_an_empty_view_is_infinite():
    xyz = torch.tensor([[0.0, 0.0, -2.0]])  # behind the camera
    depth = first_surface_depth(xyz, torch.tensor([0.1]), K, torch.eye(3), torch.zeros(3), 8, 8, "torch", 0.01)
    assert torch.isinf(depth).all()


def tiny_core(**config) -> FourK4DCore:
    torch.manual_seed(0)
    points = [plane(2.0, 0.4, 12)]
    cfg = CoreConfig(spatial_resolutions=(8, 16), radius_min_fraction=0.01, radius_max_fraction=0.05, **config)
    return FourK4DCore(cfg, points, torch.tensor([[-1.0, -1, 1], [1, 1, 3]]))


def two_sources() -> SourceViews:
    """Two sources at the origin looking along +z: one red, one blue."""
    images = torch.stack([torch.zeros(3, SIZE, SIZE), torch.zeros(3, SIZE, SIZE)])
    images[0, 0] = 1
    images[1, 2] = 1
    return SourceViews(
        images=images, K=K.expand(2, 3, 3).clone(), R=torch.eye(3).expand(2, 3, 3).clone(), T=torch.zeros(2, 3)
    )


def test_a_hidden_source_drops_out_of_the_blend_and_all_hidden_falls_back():
    core = tiny_core().eval()
    xyz = core.points[0].detach()
    sources = two_sources()
    everywhere_in_front = torch.full((SIZE, SIZE), 0.5)  # hides every point
    nothing = torch.full((SIZE, SIZE), float("inf"))
    with torch.no_grad():
        plain = core.point_outputs(xyz, 0.0, sources=sources)
        first_hidden = core.point_outputs(xyz, 0.0, sources=sources, depth_maps=[everywhere_in_front, nothing])
        all_hidden = core.point_outputs(xyz, 0.0, sources=sources, depth_maps=[everywhere_in_front] * 2)
    blue = torch.tensor([0.0, 0.0, 1.0]).expand_as(xyz)
    torch.testing.assert_close(first_hidden.ibr_rgb, blue, atol=1e-3, rtol=0)  # the red source weighs ~exp(-10)
    torch.testing.assert_close(first_hidden.blend_logits[0], plain.blend_logits[0] - HIDDEN_LOGIT_PENALTY)
    torch.testing.assert_close(all_hidden.ibr_rgb, plain.ibr_rgb, atol=1e-5, rtol=0)
    assert 0.05 < float(plain.ibr_rgb[:, 0].mean()) < 0.95  # both sources lend color without the test


@pytest.mark.parametrize("training", [True, False])
def test_depth_maps_are_reused_while_points_are_unchanged(training):
    core = tiny_core(ibr_visibility=True, visibility_refresh_updates=3).train(training)
    sources = two_sources()
    sources.keys = [("cam0", 0), ("cam1", 0)]
    xyz, radius = core.points[0], torch.full((core.point_counts()[0],), 0.05)
    first = core.source_depth_maps(0, xyz, radius, sources)
    assert first is not None and core.source_depth_maps(0, xyz, radius, sources)[0] is first[0]
    with torch.no_grad():
        core.points[0].add_(0.0)  # an optimizer update: the version moves on
    again = core.source_depth_maps(0, xyz, radius, sources)[0]
    assert (again is first[0]) == training  # training tolerates a few updates; evaluation does not
    core.train(not training)  # switching modes empties the cache
    assert core.source_depth_maps(0, xyz, radius, sources)[0] is not again


def test_visibility_off_gives_no_depth_maps():
    core = tiny_core(ibr_visibility=False)
    assert core.source_depth_maps(0, core.points[0], torch.full((144,), 0.05), two_sources()) is None


def test_points_reading_background_or_outside_the_image_are_outside_the_silhouette():
    mask = torch.zeros(1, SIZE, SIZE)
    mask[:, 8:24, 8:24] = 1  # pixels 8..23 are foreground
    # Projections (u = 40 x / z + 16 at z = 2): well inside, on the last foreground pixel's center,
    # half a pixel further (bilinear read mixes in background), outside the mask, outside the image.
    u = torch.tensor([16.0, 23.5, 24.0, 28.0, 40.0])
    xyz = torch.stack([(u - 16) * 2 / 40, torch.zeros(5), torch.full((5,), 2.0)], dim=1)
    nothing = [torch.full((SIZE, SIZE), float("inf"))]  # no surface in front: only the mask decides
    outside = hidden_in_sources(xyz, K[None], torch.eye(3)[None], torch.zeros(1, 3), nothing, 0.05, [mask])
    assert outside.tolist() == [[False, False, True, True, True]]


def test_masks_make_sources_that_see_background_drop_out():
    core = tiny_core(ibr_visibility=True).eval()
    sources = two_sources()
    sources.masks = torch.ones(2, 1, SIZE, SIZE)
    sources.masks[0] = 0  # the red source sees only background
    xyz = core.points[0].detach()
    nothing = [torch.full((SIZE, SIZE), float("inf"))] * 2
    with torch.no_grad():
        out = core.point_outputs(xyz, 0.0, sources=sources, depth_maps=nothing)
    torch.testing.assert_close(out.ibr_rgb, torch.tensor([0.0, 0.0, 1.0]).expand_as(xyz), atol=1e-3, rtol=0)
