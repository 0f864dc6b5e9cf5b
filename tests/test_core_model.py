"""The 4K4D core model (fourk4d_ns.core) on tiny synthetic scenes, CPU only."""

from __future__ import annotations

import math

import pytest
import torch

from fourk4d_ns.core import (
    CoreConfig,
    FourK4DCore,
    SourceViews,
    build_optimizer,
    camera_center,
    nearest_sources,
    sh_basis,
)
from fourk4d_ns.core.config import PUBLISHED_LEARNING_RATES
from fourk4d_ns.core.feature_field import SixPlaneField
from fourk4d_ns.core.ibr import project_to_grid

SIZE = 32
SMALL_PLANES = {"spatial_resolutions": (16, 32, 64, 128)}
SPHERE_RADII = {"radius_min_fraction": 0.04, "radius_max_fraction": 0.1}


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """The tensors here are tiny: one thread is as fast, and immune to oversubscribed CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def look_at(center, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)):
    """OpenCV world-to-camera (R, T) of a camera at ``center`` looking at ``target`` (z up world)."""
    center = torch.as_tensor(center, dtype=torch.float32)
    forward = torch.as_tensor(target, dtype=torch.float32) - center
    forward = forward / forward.norm()
    right = torch.linalg.cross(forward, torch.as_tensor(up, dtype=torch.float32))
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    R = torch.stack([right, down, forward])
    return R, -R @ center


def sphere_points(count: int, radius: float = 0.5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(count, 3, generator=g)
    return v / v.norm(dim=1, keepdim=True) * radius


class Scene:
    """Six cameras on a ring around a sphere of points (two frames), with random source images."""

    def __init__(self, config: CoreConfig, counts=(600, 500), num_sources: int = 3, seed: int = 0):
        torch.manual_seed(seed)
        points = [sphere_points(n, seed=seed + f) for f, n in enumerate(counts)]
        self.bounds = torch.tensor([[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]])
        self.model = FourK4DCore(config, points, self.bounds)
        angles = [2 * math.pi * i / 6 for i in range(6)]
        cams = [look_at((3 * math.cos(a), 3 * math.sin(a), 0.3)) for a in angles]
        self.R = torch.stack([c[0] for c in cams])
        self.T = torch.stack([c[1] for c in cams])
        self.K = torch.tensor([[80.0, 0, SIZE / 2], [0, 80.0, SIZE / 2], [0, 0, 1]])
        self.centers = camera_center(self.R, self.T)
        picked = nearest_sources(self.centers[0], self.centers, num_sources, exclude=0)
        self.sources = SourceViews(
            torch.rand(num_sources, 3, SIZE, SIZE),
            self.K.expand(num_sources, 3, 3).clone(),
            self.R[picked],
            self.T[picked],
        )

    def render(self, frame: int = 0, **kwargs):
        return self.model.render(frame, self.K, self.R[0], self.T[0], SIZE, SIZE, self.sources, **kwargs)


def test_render_shapes_and_value_ranges():
    scene = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII))
    model = scene.model
    out = scene.render()
    assert out["rgb"].shape == (SIZE, SIZE, 3)
    assert out["accumulation"].shape == (SIZE, SIZE, 1)
    assert out["depth"].shape == (SIZE, SIZE, 1)
    assert out["num_points"] == 600 and 0 < out["num_visible"] <= 600
    assert out["rgb"].min() >= 0 and out["rgb"].max() <= 1
    acc = out["accumulation"]
    assert acc.min() >= 0 and acc.max() <= 1 + 1e-5
    assert (acc > 0.5).float().mean() > 0.2  # the sphere covers a good part of the image
    assert out["depth"].min() >= 0

    rmin, rmax = model.radius_limits
    assert rmin == pytest.approx(0.04) and rmax == pytest.approx(0.1)
    po = model.frame_outputs(1, camera_center=scene.centers[0], sources=scene.sources)
    assert po.xyz.shape == (500, 3) and po.features.shape == (500, 32)
    assert po.sh.shape == (500, 3, 16) and po.blend_logits.shape == (3, 500)
    assert po.radius.min() >= rmin and po.radius.max() <= rmax
    assert po.density.min() > 0 and po.density.max() < 1
    assert po.colors.min() >= 0 and po.colors.max() <= 1
    assert po.ibr_rgb.min() >= 0 and po.ibr_rgb.max() <= 1


def test_radius_limits_scale_with_the_scene():
    points = [sphere_points(50)]
    small = FourK4DCore(CoreConfig(**SMALL_PLANES), points, [[0, 0, 0], [2.0, 1.0, 1.0]])
    large = FourK4DCore(CoreConfig(**SMALL_PLANES), [p * 1000 for p in points], [[0, 0, 0], [2000.0, 10, 10]])
    assert small.radius_limits == pytest.approx((0.001, 0.015))  # published values for a 2 m scene
    assert large.radius_limits == pytest.approx((1.0, 15.0))


def test_gradients_reach_every_part_of_the_sampled_frame():
    scene = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII))
    model = scene.model
    out = scene.render(frame=0, train_cnn=True)
    (out["rgb"].mean() + out["accumulation"].mean()).backward()

    def reached(module) -> bool:
        return all(p.grad is not None for p in module.parameters()) and any(
            float(p.grad.abs().sum()) > 0 for p in module.parameters()
        )

    assert model.points[0].grad is not None and float(model.points[0].grad.abs().sum()) > 0
    assert model.points[1].grad is None  # other frames get nothing: Adam skips them
    for module in (model.field, model.geometry_head, model.blend_head, model.sh_head, model.cnn):
        assert reached(module), type(module).__name__

    model.zero_grad(set_to_none=True)
    out = scene.render(frame=1, train_cnn=False)
    out["rgb"].mean().backward()
    assert all(p.grad is None for p in model.cnn.parameters())
    assert model.points[0].grad is None and model.points[1].grad is not None


def test_param_groups_cover_every_parameter_once():
    for deformation in (False, True):
        model = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII, use_deformation=deformation)).model
        groups = model.param_groups()
        assert set(groups) <= set(PUBLISHED_LEARNING_RATES)
        assert ("deformation" in groups) == deformation
        grouped = [id(p) for params in groups.values() for p in params]
        assert len(grouped) == len(set(grouped))
        assert set(grouped) == {id(p) for p in model.parameters()}
        optimizer = build_optimizer(groups)
        assert optimizer.defaults["eps"] == 1e-15
        assert {g["name"]: g["lr"] for g in optimizer.param_groups}["points"] == 1e-5


def test_deformation_offsets_and_loss():
    scene = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII, use_deformation=True))
    model = scene.model
    out = scene.render()
    assert out["deformation_loss"].item() == 0.0  # the deformation MLP starts at zero
    (out["rgb"].mean() + out["deformation_loss"]).backward()
    assert model.deformation_head.mlp[-1].weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.deformation_head.mlp[-1].bias.fill_(0.01)
    xyz, delta = model.positions(0)
    assert torch.allclose(delta, torch.full_like(delta, 0.001))
    assert torch.allclose(xyz, model.points[0] + 0.001)
    assert float(model.deformation_loss(0)) == pytest.approx(1e-6)


def test_nearest_sources_excludes_the_target_and_picks_the_nearest():
    centers = torch.tensor([[float(i), 0.0, 0.0] for i in range(6)])
    assert nearest_sources(centers[2], centers, 2, exclude=2).tolist() in ([1, 3], [3, 1])
    assert nearest_sources(centers[2], centers, 3, exclude=2).tolist()[2] in (0, 4)
    picked = nearest_sources(torch.tensor([2.1, 0, 0]), centers, 4, exclude=[2, 3])
    assert picked.tolist() == [1, 4, 0, 5]
    assert nearest_sources(centers[0], centers, 10, exclude=0).tolist() == [1, 2, 3, 4, 5]
    assert nearest_sources(centers[0], centers, 1).tolist() == [0]
    with pytest.raises(ValueError):
        nearest_sources(centers[0], centers[:1], 1, exclude=0)


def test_ibr_reproduces_the_source_image_through_the_projection_conventions():
    """One opaque point at every pixel center of a plane, one source equal to the target camera:
    each point reads its own pixel of the source, so the render equals the image (SH off)."""
    height, width, z = 24, 32, 2.0
    K = torch.tensor([[40.0, 0, 15.0], [0, 40.0, 13.0], [0, 0, 1]])
    R, T = torch.eye(3), torch.zeros(3)
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    points = torch.stack([(xs - K[0, 2]) * z / K[0, 0], (ys - K[1, 2]) * z / K[1, 1], torch.full_like(xs, z)], -1)
    points = points.reshape(-1, 3)
    lower, upper = points.min(0).values - 0.1, points.max(0).values + 0.1
    scene_size = float((upper - lower).max())
    radius = 0.75 * z / K[1, 1]  # a disc of 0.75 px: covers its own pixel center only
    config = CoreConfig(
        **SMALL_PLANES, radius_min_fraction=radius / scene_size, radius_max_fraction=1.0001 * radius / scene_size
    )
    model = FourK4DCore(config, [points], torch.stack([lower, upper]))
    with torch.no_grad():
        for module in (model.geometry_head.mlp[-1], model.sh_head.mlp[-1]):
            module.weight.zero_()
            module.bias.zero_()
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(3))
    sources = SourceViews(image[None], K[None], R[None], T[None])
    with torch.no_grad():
        out = model.render(0, K, R, T, height, width, sources)
    acc = out["accumulation"]
    assert float(acc.min()) > 0.99  # sigmoid(5) at the disc center
    rendered = (out["rgb"] / acc).permute(2, 0, 1)
    assert torch.allclose(rendered, image, atol=1e-4)

    # The same scene seen through a crop (shifted principal point, smaller image) is the sub-image.
    Kc = K.clone()
    Kc[0, 2] -= 5
    Kc[1, 2] -= 7
    with torch.no_grad():
        crop = model.render(0, Kc, R, T, 12, 20, sources)
    assert torch.allclose(crop["rgb"], out["rgb"][7:19, 5:25], atol=1e-5)

    # A source crop stores the pixel center convention too: grid coordinates of pixel centers.
    grid = project_to_grid(points[:1], K[None], R[None], T[None], [(height, width)])
    assert torch.allclose(grid[0, 0], torch.tensor([2 * 0.5 / width - 1, 2 * 0.5 / height - 1]), atol=1e-5)


def test_resize_points_and_load_state_dict_keep_the_parameter_objects():
    source = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII), counts=(300, 200)).model
    target = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII), counts=(100, 120), seed=5).model
    params = list(target.points)
    optimizer = build_optimizer(target.param_groups())
    state = source.state_dict()
    assert FourK4DCore.point_counts_in_state_dict(state) == {0: 300, 1: 200}

    target.resize_points_([300, 200])
    assert target.point_counts() == [300, 200]
    target.load_state_dict(state)
    assert all(a is b for a, b in zip(target.points, params))
    assert torch.equal(target.points[0], source.points[0]) and torch.equal(target.points[1], source.points[1])
    assert optimizer.param_groups[0]["params"][0] is target.points[0]

    # Without an explicit resize, load_state_dict adopts the checkpoint's counts by itself.
    other = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII), counts=(50, 60), seed=7).model
    kept = list(other.points)
    other.load_state_dict(state)
    assert other.point_counts() == [300, 200] and all(a is b for a, b in zip(other.points, kept))
    assert torch.equal(other.field.spatial[0], source.field.spatial[0])


def test_prune_cuts_points_and_optimizer_state():
    scene = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII))
    model = scene.model
    optimizer = build_optimizer(model.param_groups())
    scene.render(frame=0)["rgb"].mean().backward()
    optimizer.step()
    keep = torch.arange(600) % 3 != 0
    before = model.points[0].detach().clone()
    assert model.prune_(0, keep, optimizer) == 400
    assert torch.equal(model.points[0].detach(), before[keep])
    assert optimizer.state[model.points[0]]["exp_avg"].shape == (400, 3)
    assert model.low_density_mask(0, threshold=0.5).shape == (400,)
    optimizer.zero_grad()
    scene.render(frame=0)["rgb"].mean().backward()
    optimizer.step()  # state and parameter shapes agree


def test_feature_cache_reuses_maps_until_the_cnn_changes():
    scene = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII))
    model = scene.model
    sources = SourceViews(
        scene.sources.images, scene.sources.K, scene.sources.R, scene.sources.T, keys=[("cam", i) for i in range(3)]
    )
    first = model.source_feature_maps(sources, train_cnn=False)
    again = model.source_feature_maps(sources, train_cnn=False)
    assert all(a is b for a, b in zip(first, again))
    # A training step that leaves the CNN without gradients keeps the cache valid.
    optimizer = build_optimizer(model.param_groups())
    model.render(0, scene.K, scene.R[0], scene.T[0], SIZE, SIZE, sources, train_cnn=False)["rgb"].mean().backward()
    optimizer.step()
    optimizer.zero_grad()
    assert all(a is b for a, b in zip(first, model.source_feature_maps(sources, train_cnn=False)))
    with torch.no_grad():
        model.cnn.smooth0.bias.add_(1.0)
    changed = model.source_feature_maps(sources, train_cnn=False)
    assert all(torch.allclose(c, a + 1.0, atol=1e-5) for c, a in zip(changed, first))
    trained = model.source_feature_maps(sources, train_cnn=True)
    assert all(t.requires_grad for t in trained)


def test_sources_of_different_sizes():
    scene = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII))
    s = scene.sources
    images = [torch.rand(3, SIZE, SIZE), torch.rand(3, 20, 28), torch.rand(3, 40, 24)]
    sources = SourceViews(images, s.K, s.R, s.T)
    out = scene.model.render(0, scene.K, scene.R[0], scene.T[0], SIZE, SIZE, sources)
    assert out["rgb"].shape == (SIZE, SIZE, 3) and torch.isfinite(out["rgb"]).all()
    with pytest.raises(ValueError, match="SourceViews.K"):
        SourceViews(images, s.K[:2], s.R, s.T)


def test_field_time_slicing_matches_per_point_sampling():
    field = SixPlaneField(torch.tensor([[-1.0, -1, -1], [1, 1, 1]]), (8, 16), 5, 4)
    xyz = (torch.rand(200, 3) * 2.4 - 1.2).requires_grad_()  # some points outside: clamped
    for t in (0.0, 0.25, 0.3, 1.0):
        fast = field(xyz, t)
        slow = field(xyz, torch.full((200,), t))
        assert fast.shape == (200, 8)
        assert torch.allclose(fast, slow, atol=1e-6)
        weights = torch.randn(200, 8)
        grads_fast = torch.autograd.grad((fast * weights).sum(), [xyz, *field.parameters()])
        grads_slow = torch.autograd.grad((slow * weights).sum(), [xyz, *field.parameters()])
        for a, b in zip(grads_fast, grads_slow):
            assert torch.allclose(a, b, atol=1e-5)


def test_sh_basis_is_orthonormal():
    dirs = torch.nn.functional.normalize(torch.randn(200000, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    basis = sh_basis(dirs.double(), 3)
    gram = 4 * math.pi * basis.T @ basis / dirs.shape[0]
    assert torch.allclose(gram, torch.eye(16, dtype=gram.dtype), atol=0.03)


def test_a_short_training_run_reduces_the_loss():
    scene = Scene(CoreConfig(**SMALL_PLANES, **SPHERE_RADII))
    model = scene.model
    with torch.no_grad():
        silhouette = scene.render()["accumulation"]
    target = silhouette * torch.tensor([0.9, 0.15, 0.1])  # a red sphere on black
    optimizer = build_optimizer(model.param_groups())
    losses = []
    for step in range(40):
        out = scene.render(train_cnn=model.config.cnn_trains_at(step))
        loss = torch.nn.functional.mse_loss(out["rgb"], target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses
