"""Playback of baked sequences (fourk4d_ns.playback): the bake format and its checks, baked
renders against the model's renders, the fused CPU kernel against the index pass + compositing,
the frame stream, and (slow / gpu) the CUDA kernel."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import struct
import time
from pathlib import Path

import pytest
import torch
from scenes import baked_inputs
from test_rasterizer_cuda import needs_gpu

from fourk4d_ns.core.camera import camera_center
from fourk4d_ns.core.config import CoreConfig
from fourk4d_ns.core.ibr import SourceViews, nearest_sources
from fourk4d_ns.core.point_model import FourK4DCore
from fourk4d_ns.core.visibility import HIDDEN_LOGIT_PENALTY
from fourk4d_ns.playback.bake import bake_frame, bake_frames
from fourk4d_ns.playback.bake_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    BakedCamera,
    BakedFrame,
    BakeError,
    BakeManifest,
    frame_file_name,
    read_frame,
    read_manifest,
    write_bake,
)
from fourk4d_ns.playback.baked_renderer import BakedRenderer
from fourk4d_ns.playback.frame_stream import FrameStream
from fourk4d_ns.playback.fused import render_baked_points
from fourk4d_ns.rasterizer import ExtensionBuildError, peel_points
from fourk4d_ns.rasterizer import build as rbuild

SIZE = 96
K_SRC = torch.tensor([[120.0, 0, 48], [0, 120.0, 48], [0, 0, 1]])


@pytest.fixture(scope="module")
def cpu_extension():
    """Builds (first run, minutes) or loads the CPU extension once for the module."""
    try:
        return rbuild.load_cpu_extension()
    except ExtensionBuildError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"CPU extension unavailable: {exc}")


# ---------------------------------------------------------------------------------------- helpers
def ring_camera(angle: float, radius: float = 2.5, height: float = 0.2):
    """OpenCV (R, T) of a camera on a ring around the origin (y down world), looking at it."""
    c = torch.tensor([radius * math.cos(angle), height, radius * math.sin(angle)])
    fwd = -c / c.norm()
    up = torch.tensor([0.0, -1.0, 0.0])
    right = torch.linalg.cross(up, fwd)
    right = right / right.norm()
    down = torch.linalg.cross(fwd, right)
    R = torch.stack([right, down, fwd])
    return R, -R @ c


def random_frame(n: int, cameras: int, seed: int, sh_degree: int = 3) -> BakedFrame:
    gen = torch.Generator().manual_seed(seed)
    return BakedFrame(
        xyz=torch.randn(n, 3, generator=gen),
        radius=torch.rand(n, generator=gen) * 0.05,
        density=torch.rand(n, generator=gen),
        sh=torch.randn(n, 3, 16, generator=gen)[..., : (sh_degree + 1) ** 2].contiguous(),
        ibr=torch.randn(cameras, n, 4, generator=gen),
    )


def make_manifest(
    num_frames: int, baked: int, held_out: int = 1, num_sources: int = 2, sh_degree: int = 3
) -> BakeManifest:
    """A manifest with ``held_out`` unbaked cameras listed first, then ``baked`` ring cameras."""
    cameras = []
    for i in range(held_out + baked):
        R, T = ring_camera(0.3 + i)
        cameras.append(
            BakedCamera(
                name=f"cam{i:02d}",
                K=K_SRC.tolist(),
                R=R.tolist(),
                T=T.tolist(),
                height=SIZE,
                width=SIZE + 8 * i,
                baked=i >= held_out,
            )
        )
    return BakeManifest(
        frame_names=[f"{f:06d}" for f in range(num_frames)],
        cameras=cameras,
        bounds=[[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]],
        sh_weight=0.25,
        sh_degree=sh_degree,
        layers=15,
        near=0.01,
        num_sources=num_sources,
        fps=30.0,
    )


def write_random_bake(
    folder: Path, num_frames: int = 3, n: int = 40, cameras: int = 2, seed: int = 0, sh_degree: int = 3
):
    frames = [random_frame(n + f, cameras, seed + f, sh_degree) for f in range(num_frames)]
    manifest = make_manifest(num_frames, cameras, sh_degree=sh_degree)
    write_bake(folder, manifest, frames)
    return manifest, frames


def assert_frames_equal(a: BakedFrame, b: BakedFrame) -> None:
    for name, value in a.tensors().items():
        other = getattr(b, name)
        assert value.dtype == other.dtype, name
        assert torch.equal(value, other), name


def edit_manifest(folder: Path, **changes) -> None:
    path = folder / MANIFEST
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def hidden_entries(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------- 1. bake round trip
@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_bake_round_trip(tmp_path, sh_degree):
    folder = tmp_path / "bake"
    manifest, frames = write_random_bake(folder, num_frames=3, sh_degree=sh_degree)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST] + [frame_file_name(f) for f in range(3)])
    loaded = read_manifest(folder)
    assert loaded.format == FORMAT_NAME and loaded.version == FORMAT_VERSION == 2
    assert loaded.sh_degree == sh_degree
    assert json.loads((folder / MANIFEST).read_text())["sh_degree"] == sh_degree
    assert loaded.num_frames == 3 and loaded.frame_names == [
        "000000",
        "000001",
        "000002",
    ]
    assert loaded.cameras == manifest.cameras  # names, K, R, T, sizes and baked flags
    assert [(c.height, c.width) for c in loaded.cameras] == [(SIZE, SIZE + 8 * i) for i in range(3)]
    assert [c.name for c in loaded.baked_cameras()] == ["cam01", "cam02"]
    assert dataclasses.asdict(loaded) == dataclasses.asdict(manifest)
    for f, (record, frame) in enumerate(zip(loaded.frames, frames)):
        path = folder / record["file"]
        assert record["file"] == frame_file_name(f)
        assert record["points"] == frame.num_points
        assert record["bytes"] == path.stat().st_size
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        expected = frame.to(dtype=torch.float16)
        for verify in ("checksum", "size"):
            got = read_frame(folder, loaded, f, verify=verify)
            assert_frames_equal(got, expected)
            assert got.sh.shape == (frame.num_points, 3, (sh_degree + 1) ** 2)
            assert got.xyz.device.type == "cpu"
    with pytest.raises(IndexError):
        read_frame(folder, loaded, 3)
    with pytest.raises(ValueError, match="verify"):
        read_frame(folder, loaded, 0, verify="none")


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_bake_of_a_core_round_trips(tmp_path, scene_of_degree, sh_degree):
    scene = scene_of_degree(sh_degree)
    folder = tmp_path / "bake"
    frames = len(scene.bakes)
    manifest = make_manifest(frames, scene.C, sh_degree=sh_degree)
    write_bake(folder, manifest, (b for b in scene.bakes))
    loaded = read_manifest(folder)
    assert loaded.sh_degree == sh_degree
    for f in range(frames):
        frame = read_frame(folder, loaded, f)
        assert frame.sh.shape == (3000, 3, (sh_degree + 1) ** 2)
        assert_frames_equal(frame, scene.bakes[f].to(dtype=torch.float16))
    # A manifest of another degree than the frames: refused when writing, and when reading.
    other = make_manifest(frames, scene.C, sh_degree=3 - sh_degree)
    with pytest.raises(BakeError, match=rf"frame 0: tensor 'sh' .*\(SH degree {3 - sh_degree}\)"):
        write_bake(tmp_path / "other", other, scene.bakes)
    edit_manifest(folder, sh_degree=3 - sh_degree)
    with pytest.raises(BakeError, match=rf"{frame_file_name(frames - 1)}: tensor 'sh'"):
        read_frame(folder, read_manifest(folder), frames - 1)


def test_frame_files_are_safetensors(tmp_path):
    folder = tmp_path / "bake"
    write_random_bake(folder, num_frames=2, n=30, cameras=3)
    for f in range(2):
        data = (folder / frame_file_name(f)).read_bytes()
        (header_len,) = struct.unpack("<Q", data[:8])
        assert 8 + header_len < len(data)
        header = json.loads(data[8 : 8 + header_len])
        assert header["__metadata__"] == {"format": FORMAT_NAME, "frame": str(f)}
        n = 30 + f
        shapes = {
            "xyz": [n, 3],
            "radius": [n],
            "density": [n],
            "sh": [n, 3, 16],
            "ibr": [3, n, 4],
        }
        end = 0
        for name, shape in shapes.items():
            assert header[name]["dtype"] == "F16"
            assert header[name]["shape"] == shape
            end = max(end, header[name]["data_offsets"][1])
        # Nothing but the header and the tensor data; neither a pickle nor torch's zip format.
        assert 8 + header_len + end == len(data)
        assert data[:1] != b"\x80" and data[:2] != b"PK"
        assert b"torch._utils" not in data and b"_rebuild_tensor" not in data


def test_write_bake_replaces_a_bake_atomically(tmp_path):
    folder = tmp_path / "bake"
    write_random_bake(folder, num_frames=3, seed=0)
    (folder / "stale.txt").write_text("from the old bake")
    _, frames = write_random_bake(folder, num_frames=2, n=25, seed=10)
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST] + [frame_file_name(f) for f in range(2)])
    loaded = read_manifest(folder)
    assert loaded.num_frames == 2
    for f in range(2):
        assert_frames_equal(read_frame(folder, loaded, f), frames[f].to(dtype=torch.float16))
    # No staging or retired folders are left.
    assert [p.name for p in tmp_path.iterdir()] == ["bake"]


def test_failing_frame_generator_leaves_nothing(tmp_path):
    def frames():
        yield random_frame(20, 2, 0)
        yield random_frame(20, 2, 1)
        raise RuntimeError("camera 3 is unreadable")

    folder = tmp_path / "bake"
    with pytest.raises(RuntimeError, match="unreadable"):
        write_bake(folder, make_manifest(3, 2), frames())
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []

    # An existing bake survives a failed rewrite untouched.
    _, old = write_random_bake(folder, num_frames=2)
    with pytest.raises(RuntimeError, match="unreadable"):
        write_bake(folder, make_manifest(3, 2), frames())
    assert [p.name for p in tmp_path.iterdir()] == ["bake"]
    loaded = read_manifest(folder)
    assert loaded.num_frames == 2
    assert_frames_equal(read_frame(folder, loaded, 1), old[1].to(dtype=torch.float16))


def test_write_bake_rejects_a_frame_count_or_shape_mismatch(tmp_path):
    folder = tmp_path / "bake"
    with pytest.raises(ValueError, match="2 frames for a manifest of 3"):
        write_bake(
            folder,
            make_manifest(3, 2),
            [random_frame(10, 2, 0), random_frame(10, 2, 1)],
        )
    bad = random_frame(10, 2, 0)
    bad.sh = bad.sh[..., :9]  # degree 2, the manifest says 3
    with pytest.raises(BakeError, match="'sh'"):
        write_bake(folder, make_manifest(1, 2), [bad])
    bad.sh = bad.sh[..., :5]  # no SH degree at all
    with pytest.raises(BakeError, match=r"'sh' has shape \(10, 3, 5\), expected \(10, 3, 1 or 4 or 9 or 16\)"):
        bad.check()
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- 2. rejections
@pytest.fixture
def bake_folder(tmp_path) -> Path:
    folder = tmp_path / "bake"
    write_random_bake(folder, num_frames=3, n=40, cameras=2)
    return folder


@pytest.mark.parametrize("verify", ["size", "checksum"])
def test_truncated_frame_is_rejected(bake_folder, verify):
    manifest = read_manifest(bake_folder)
    path = bake_folder / frame_file_name(1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])
    with pytest.raises(BakeError, match=frame_file_name(1)) as info:
        read_frame(bake_folder, manifest, 1, verify=verify)
    assert "truncated" in str(info.value)
    with pytest.raises(BakeError, match=frame_file_name(1)):
        read_manifest(bake_folder)
    read_frame(bake_folder, manifest, 0, verify=verify)  # the other frames still load


def test_modified_frame_is_rejected_with_checksums(bake_folder):
    manifest = read_manifest(bake_folder)
    path = bake_folder / frame_file_name(2)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # inside the tensor data: same size, valid file
    path.write_bytes(bytes(data))
    read_manifest(bake_folder)  # sizes still agree
    with pytest.raises(BakeError, match=frame_file_name(2)) as info:
        read_frame(bake_folder, manifest, 2, verify="checksum")
    assert "SHA-256" in str(info.value)
    # The size check alone cannot see it: the frame loads, with a changed value.
    frame = read_frame(bake_folder, manifest, 2, verify="size")
    assert frame.num_points == manifest.frames[2]["points"]


def test_missing_manifest_is_rejected(bake_folder):
    (bake_folder / MANIFEST).unlink()
    with pytest.raises(BakeError, match=MANIFEST) as info:
        read_manifest(bake_folder)
    assert "missing" in str(info.value)
    with pytest.raises(BakeError, match=MANIFEST):
        read_manifest(bake_folder.parent / "nowhere")


@pytest.mark.parametrize("version", [1, FORMAT_VERSION + 1], ids=["old", "newer"])
def test_manifest_of_another_version_is_rejected(bake_folder, version):
    # Version 1 is the format before sh_degree (always [N, 3, 16]): such bakes are baked again.
    edit_manifest(bake_folder, version=version)
    with pytest.raises(BakeError, match=MANIFEST) as info:
        read_manifest(bake_folder)
    assert f"version {version}" in str(info.value) and "bake again" in str(info.value)


@pytest.mark.parametrize("sh_degree", [4, -1, "3", None, 2.0, True])
def test_manifest_of_an_unknown_sh_degree_is_rejected(bake_folder, sh_degree):
    edit_manifest(bake_folder, sh_degree=sh_degree)
    with pytest.raises(BakeError, match=f"{MANIFEST}.*malformed manifest.*sh_degree"):
        read_manifest(bake_folder)


def test_manifest_of_another_format_is_rejected(bake_folder):
    edit_manifest(bake_folder, format="something-else")
    with pytest.raises(BakeError, match=f"{MANIFEST}.*not a {FORMAT_NAME} manifest"):
        read_manifest(bake_folder)


@pytest.mark.parametrize("text", ['{"format": "fourk4d-bake", "version": 1', "", "[1, 2"])
def test_malformed_json_is_rejected(bake_folder, text):
    (bake_folder / MANIFEST).write_text(text)
    with pytest.raises(BakeError, match=f"{MANIFEST}.*not valid JSON"):
        read_manifest(bake_folder)


def test_manifest_missing_fields_is_rejected(bake_folder):
    data = json.loads((bake_folder / MANIFEST).read_text())
    del data["cameras"]
    (bake_folder / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(BakeError, match=f"{MANIFEST}.*malformed"):
        read_manifest(bake_folder)


def test_missing_frame_file_is_rejected(bake_folder):
    manifest = read_manifest(bake_folder)
    (bake_folder / frame_file_name(1)).unlink()
    for verify in ("size", "checksum"):
        with pytest.raises(BakeError, match=f"{frame_file_name(1)}.*missing"):
            read_frame(bake_folder, manifest, 1, verify=verify)
    with pytest.raises(BakeError, match=f"{frame_file_name(1)}.*missing"):
        read_manifest(bake_folder)


def _replace_frame_file(folder: Path, frame: int, tensors: dict[str, torch.Tensor]) -> None:
    """Writes ``tensors`` as the frame's file and fixes its bytes and SHA-256 in the manifest, so
    only the checks on the tensors themselves can catch it."""
    from safetensors.torch import save_file

    path = folder / frame_file_name(frame)
    save_file({k: v.half().contiguous() for k, v in tensors.items()}, str(path))
    data = json.loads((folder / MANIFEST).read_text())
    data["frames"][frame]["bytes"] = path.stat().st_size
    data["frames"][frame]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(data))


@pytest.mark.parametrize(
    "case",
    ["fewer_points", "sh_shape", "ibr_cameras", "missing_tensor", "radius_shape"],
)
def test_tensor_of_wrong_shape_is_rejected(bake_folder, case):
    n = read_manifest(bake_folder).frames[1]["points"]
    tensors = random_frame(n, 2, 5).tensors()
    if case == "fewer_points":  # consistent tensors, but not the manifest's point count
        tensors = random_frame(n - 1, 2, 5).tensors()
    elif case == "sh_shape":
        tensors["sh"] = tensors["sh"][..., :9]
    elif case == "ibr_cameras":
        # Consistent tensors, but not the manifest's baked cameras.
        tensors["ibr"] = torch.cat([tensors["ibr"], tensors["ibr"][:1]])
    elif case == "missing_tensor":
        del tensors["density"]
    else:
        tensors["radius"] = tensors["radius"][:, None]
    _replace_frame_file(bake_folder, 1, tensors)
    manifest = read_manifest(bake_folder)  # sizes agree
    for verify in ("size", "checksum"):
        with pytest.raises(BakeError, match=frame_file_name(1)):
            read_frame(bake_folder, manifest, 1, verify=verify)
    read_frame(bake_folder, manifest, 0)


# --------------------------------------------------------------------- 3. baked vs model renders
class Scene:
    """A random core of SH degree ``sh_degree`` and ``num_frames`` frames (float16-exact positions,
    radii large enough to cover a quarter of the view), six baked cameras on a ring with random
    images per frame and a round foreground mask, and float32 bakes. With ``visibility`` the IBR
    visibility test is on (hidden sources are folded into the baked logits)."""

    def __init__(self, sh_degree: int = 3, num_frames: int = 2, visibility: bool = False) -> None:
        torch.manual_seed(0)
        points = [(torch.randn(3000, 3) * 0.3).half().float() for _ in range(num_frames)]
        config = CoreConfig(
            spatial_resolutions=(16, 32, 64, 128),
            radius_min_fraction=0.01,
            radius_max_fraction=0.03,
            sh_degree=sh_degree,
            ibr_visibility=visibility,
        )
        self.core = FourK4DCore(config, points, torch.tensor([[-1.0, -1, -1], [1, 1, 1]])).eval()
        self.C = 6
        # The baked cameras of make_manifest(held_out=1).
        Rs, Ts = zip(*[ring_camera(0.3 + i) for i in range(1, self.C + 1)])
        self.R, self.T = torch.stack(Rs), torch.stack(Ts)
        self.images = [torch.rand(self.C, 3, SIZE, SIZE) for _ in range(num_frames)]
        pixel = torch.arange(SIZE) + 0.5 - SIZE / 2
        self.mask = ((pixel[:, None] ** 2 + pixel[None] ** 2) < (0.35 * SIZE) ** 2).float().expand(self.C, 1, -1, -1)
        self.bakes = list(bake_frames(self.core, self.sources, camera_chunk=4))

    def sources(self, frame: int) -> SourceViews:
        return SourceViews(
            images=self.images[frame],
            masks=self.mask,
            K=K_SRC.expand(self.C, 3, 3).clone(),
            R=self.R,
            T=self.T,
        )

    def reference(self, frame, K, R, T, height, width, count, background=None):
        sources = nearest_sources(camera_center(R, T), self.sources(frame).centers(), count)
        with torch.no_grad():
            ref = self.core.render(
                frame,
                K,
                R,
                T,
                height,
                width,
                self.sources(frame).select(sources.tolist()),
                background=background,
                train_cnn=False,
            )
        assert ref["num_visible"] > 1000
        return sources, ref


@pytest.fixture(scope="module")
def scene_of_degree(cpu_extension):
    """Scene(sh_degree), made once per degree and module: two frames and the visibility test for the
    published degree 3, one frame for the others (the CNN on the source images dominates the time)."""
    scenes: dict[int, Scene] = {}

    def scene(sh_degree: int) -> Scene:
        if sh_degree not in scenes:
            scenes[sh_degree] = Scene(sh_degree, num_frames=2 if sh_degree == 3 else 1, visibility=sh_degree == 3)
        return scenes[sh_degree]

    return scene


@pytest.fixture(scope="module")
def baked_scene(scene_of_degree) -> Scene:
    return scene_of_degree(3)


def test_bake_frame_chunks_agree(baked_scene):
    whole = bake_frame(baked_scene.core, 0, baked_scene.sources(0), camera_chunk=6)
    assert whole.ibr.shape == (6, 3000, 4)
    hidden = whole.ibr[..., 3] < -HIDDEN_LOGIT_PENALTY / 2  # the visibility test is folded into the logits
    assert 0.05 < float(hidden.float().mean()) < 0.95
    for name, value in whole.tensors().items():
        # The CNN rounds differently in batches of 4 and 6; a camera out of order differs by ~0.1.
        torch.testing.assert_close(getattr(baked_scene.bakes[0], name), value, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("sh_degree", "background"),
    [(3, None), (3, (0.2, 0.5, 0.9)), (2, None), (1, (0.2, 0.5, 0.9)), (0, None)],
    ids=["sh3-black", "sh3-colored", "sh2-black", "sh1-colored", "sh0-black"],
)
def test_baked_render_matches_the_model(scene_of_degree, sh_degree, background):
    scene = scene_of_degree(sh_degree)
    frame, count = len(scene.bakes) - 1, 4
    R, T = ring_camera(0.8)  # between baked cameras
    K = torch.tensor([[110.0, 0, 52], [0, 115.0, 41], [0, 0, 1]])
    h, w = 84, 100
    bg = None if background is None else torch.tensor(background)
    sources, ref = scene.reference(frame, K, R, T, h, w, count, bg)
    cfg = scene.core.config
    assert scene.bakes[frame].sh.shape == (3000, 3, (sh_degree + 1) ** 2)
    for dtype, atol in ((torch.float16, 2e-3), (torch.float32, 1e-5)):
        b = scene.bakes[frame].to(dtype=dtype)
        out = render_baked_points(
            b.xyz,
            b.radius,
            b.density,
            b.sh,
            b.ibr,
            sources,
            K,
            R,
            T,
            h,
            w,
            cfg.layers,
            background=bg,
            near=cfg.near,
            sh_weight=cfg.sh_weight,
        )
        assert out.rgb.shape == (h, w, 3) and out.accumulation.shape == (h, w, 1)
        assert out.rgb.dtype == torch.float32
        torch.testing.assert_close(out.rgb, ref["rgb"], atol=atol, rtol=0)
        torch.testing.assert_close(out.accumulation, ref["accumulation"], atol=atol, rtol=0)
    assert (ref["accumulation"] > 0.5).float().mean() > 0.1


def test_baked_renderer_matches_the_model(baked_scene, tmp_path):
    folder = tmp_path / "bake"
    # cam00 is held out, and listed last.
    manifest = make_manifest(2, baked_scene.C, held_out=1, num_sources=3)
    manifest.cameras = manifest.cameras[1:] + manifest.cameras[:1]
    write_bake(folder, manifest, baked_scene.bakes)
    R, T = ring_camera(0.3)  # the held-out camera's pose, not a baked camera
    K = torch.tensor([[120.0, 0, 40], [0, 120.0, 50], [0, 0, 1]])
    h, w = 96, 80
    bg = torch.tensor([1.0, 1.0, 1.0])
    renderer = BakedRenderer(folder, cache_frames=2, prefetch=1)
    try:
        assert torch.allclose(renderer.centers, baked_scene.sources(0).centers(), atol=1e-6)
        for frame in (1, 0):
            sources, ref = baked_scene.reference(frame, K, R, T, h, w, 3, bg)
            assert renderer.sources_for(camera_center(R, T)).tolist() == sources.tolist()
            out = renderer.render(frame, K, R, T, h, w, background=bg)
            torch.testing.assert_close(out.rgb, ref["rgb"], atol=2e-3, rtol=0)
            torch.testing.assert_close(out.accumulation, ref["accumulation"], atol=2e-3, rtol=0)
        # Another source count than the manifest's.
        sources, ref = baked_scene.reference(1, K, R, T, h, w, 5)
        out = renderer.render(1, K, R, T, h, w, num_sources=5)
        torch.testing.assert_close(out.rgb, ref["rgb"], atol=2e-3, rtol=0)
    finally:
        renderer.close()


# ------------------------------------------------------------- 4. fused CPU kernel vs reference
def assert_renders_close(a, b, atol=1e-5):
    torch.testing.assert_close(a.rgb, b.rgb, atol=atol, rtol=0)
    torch.testing.assert_close(a.accumulation, b.accumulation, atol=atol, rtol=0)
    torch.testing.assert_close(a.depth, b.depth, atol=atol, rtol=1e-6)


FUSED_CASES = [
    # seed, points, cameras, height, width, layers, sources, SH degree
    (0, 300, 5, 24, 32, 3, [3, 0, 4], 3),
    (1, 3000, 7, 37, 53, 15, [6], 3),
    (2, 2000, 16, 41, 17, 1, list(range(15, -1, -1)), 3),
    (3, 1500, 3, 16, 16, 8, [1, 1, 2], 3),
    (4, 800, 4, 1, 9, 4, [0, 2, 3], 3),
    (5, 2500, 2, 50, 30, 2, [1, 0], 3),
    # The lower degrees, on small cases.
    (0, 300, 5, 24, 32, 3, [3, 0, 4], 0),
    (3, 1500, 3, 16, 16, 8, [1, 1, 2], 1),
    (5, 600, 2, 50, 30, 2, [1, 0], 2),
]
FUSED_IDS = [f"seed{c[0]}-sh{c[-1]}" for c in FUSED_CASES]


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["f16", "f32"])
@pytest.mark.parametrize("case", FUSED_CASES, ids=FUSED_IDS)
def test_fused_cpu_equals_index_pass_and_composite(cpu_extension, case, dtype):
    seed, n, cameras, h, w, layers, sources, sh_degree = case
    tensors, K, R, T = baked_inputs(seed, n, cameras, h, w, dtype, sh_degree)
    assert tensors[3].shape == (n, 3, (sh_degree + 1) ** 2)
    bg = torch.tensor([0.3, 0.6, 0.1]) if seed % 2 else None
    kw = {"background": bg, "sh_weight": 0.25 + 0.1 * seed}
    cpu = render_baked_points(*tensors, sources, K, R, T, h, w, layers, backend="cpu", **kw)
    ref = render_baked_points(*tensors, sources, K, R, T, h, w, layers, backend="torch", **kw)
    assert_renders_close(cpu, ref)
    # "auto" is the CPU kernel for CPU tensors.
    auto = render_baked_points(*tensors, torch.tensor(sources), K, R, T, h, w, layers, **kw)
    assert torch.equal(auto.rgb, cpu.rgb)
    assert (cpu.accumulation > 0.1).float().mean() > 0.1


def test_fused_cpu_with_more_covering_points_than_layers(cpu_extension):
    tensors, K, R, T = baked_inputs(7, 4000, 3, 20, 28, torch.float32)
    tensors[1] = tensors[1] * 4  # large discs: tens of points per pixel
    layers = 4
    peel = peel_points(tensors[0], tensors[1], K, R, T, 20, 28, 3 * layers, backend="cpu")
    assert (peel.idx[..., 2 * layers] >= 0).float().mean() > 0.5
    for dtype in (torch.float16, torch.float32):
        args = [t.to(dtype) for t in tensors]
        for L in (layers, 3 * layers):
            cpu = render_baked_points(*args, [2, 0], K, R, T, 20, 28, L, backend="cpu")
            ref = render_baked_points(*args, [2, 0], K, R, T, 20, 28, L, backend="torch")
            assert_renders_close(cpu, ref)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["f16", "f32"])
def test_fused_cpu_empty_scene_and_nothing_visible(cpu_extension, dtype):
    bg = torch.tensor([0.25, 0.5, 0.75])
    tensors, K, R, T = baked_inputs(0, 0, 2, 12, 20, dtype)
    assert tensors[0].shape == (0, 3)
    for background in (None, bg):
        out = render_baked_points(*tensors, [1], K, R, T, 12, 20, 5, background=background, backend="cpu")
        ref = render_baked_points(*tensors, [1], K, R, T, 12, 20, 5, background=background, backend="torch")
        assert_renders_close(out, ref)
        expected = torch.zeros(3) if background is None else background
        assert torch.equal(out.rgb, expected.expand(12, 20, 3))
        assert torch.equal(out.accumulation, torch.zeros(12, 20, 1))
        assert torch.equal(out.depth, torch.zeros(12, 20, 1))
    # Cameras that see none of the points: all behind it, or all beside the image.
    tensors, K, R, T = baked_inputs(3, 500, 2, 12, 20, dtype)
    for shift in ([0.0, 0.0, -50.0], [100.0, 0.0, 0.0]):
        T2 = T + torch.tensor(shift)
        out = render_baked_points(*tensors, [0, 1], K, R, T2, 12, 20, 5, background=bg, backend="cpu")
        ref = render_baked_points(*tensors, [0, 1], K, R, T2, 12, 20, 5, background=bg, backend="torch")
        assert_renders_close(out, ref)
        assert torch.equal(out.accumulation, torch.zeros(12, 20, 1))
        assert torch.equal(out.rgb, bg.expand(12, 20, 3))
    out = render_baked_points(*tensors, [0, 1], K, R, T, 12, 20, 5, background=bg, backend="cpu")
    assert (out.accumulation > 0.1).any()  # the unshifted camera sees them


def test_fused_rejects_invalid_inputs(cpu_extension):
    (xyz, radius, density, sh, ibr), K, R, T = baked_inputs(0, 100, 3, 8, 8, torch.float16)

    def render(*tensors, sources=(0, 1), backend="cpu"):
        return render_baked_points(*tensors, sources, K, R, T, 8, 8, 2, backend=backend)

    good = (xyz, radius, density, sh, ibr)
    render(*good)
    many = torch.cat([ibr] * 6)  # 18 cameras
    for backend in ("cpu", "torch"):
        with pytest.raises(ValueError, match="between 1 and 16 sources"):
            render(xyz, radius, density, sh, many, sources=list(range(17)), backend=backend)
        with pytest.raises(ValueError, match="between 1 and 16 sources"):
            render(*good, sources=[], backend=backend)
    render(xyz, radius, density, sh, many, sources=list(range(16)))
    with pytest.raises((RuntimeError, ValueError), match="out of range"):
        render(*good, sources=[0, 3])
    with pytest.raises((RuntimeError, ValueError), match="out of range"):
        render(*good, sources=[-1])
    with pytest.raises((RuntimeError, ValueError), match="dtype"):
        render(xyz, radius.float(), density, sh, ibr)
    with pytest.raises((RuntimeError, ValueError), match="float32 or float16"):
        render(*(t.double() for t in good))
    for bad_sh in (sh[..., :5], sh[..., :0], sh[:-1], sh[:, :2], sh.reshape(100, 48)):
        with pytest.raises((RuntimeError, ValueError), match="sh must be"):
            render(xyz, radius, density, bad_sh.contiguous(), ibr)
    with pytest.raises((RuntimeError, ValueError), match="ibr must be"):
        render(xyz, radius, density, sh, ibr[..., :3].contiguous())
    with pytest.raises((RuntimeError, ValueError), match="radius and density"):
        render(xyz, radius[:-1], density, sh, ibr)
    with pytest.raises(ValueError, match="backend"):
        render(*good, backend="metal")
    with pytest.raises(ValueError, match="CUDA tensors"):
        render(*good, backend="cuda")


# ---------------------------------------------------------------------------- 5. frame stream
def wait_until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


@pytest.fixture
def stream_bake(tmp_path):
    folder = tmp_path / "bake"
    manifest, _ = write_random_bake(folder, num_frames=6, n=50, cameras=3)
    return folder, manifest


def test_frame_stream_is_bounded_and_equals_read_frame(stream_bake):
    folder, manifest = stream_bake
    expected = [read_frame(folder, manifest, f) for f in range(6)]
    with FrameStream(folder, capacity=3, prefetch=2) as stream:
        assert stream.num_frames == 6
        for _ in range(2):  # two passes: wraps at the end
            for f in range(6):
                assert_frames_equal(stream.get(f), expected[f])
                assert len(stream.cached_frames()) <= 3
                # The requested frame is the most recent.
                assert stream.cached_frames()[-1] == f
                assert set(stream.cached_frames()) >= {f, (f + 1) % 6, (f + 2) % 6}
        # No frame is read twice in a pass (plus the last prefetches).
        assert stream.loads <= 12 + 2
    with FrameStream(folder, capacity=1, prefetch=3) as stream:
        assert stream.prefetch == 0
        for f in (0, 4, 2, 2):
            assert_frames_equal(stream.get(f), expected[f])
            assert stream.cached_frames() == [f]
        assert stream.loads == 3


@pytest.fixture
def recorded_reads(monkeypatch):
    """Frames the streams read from disk, in order; reading frame 1 takes a little longer."""
    from fourk4d_ns.playback import frame_stream

    reads: list[int] = []
    original = frame_stream.read_frame

    def read(folder, manifest, frame, verify="checksum"):
        reads.append(frame)
        if frame == 1:
            time.sleep(0.2)
        return original(folder, manifest, frame, verify)

    monkeypatch.setattr(frame_stream, "read_frame", read)
    return reads


def test_frame_stream_prefetches_the_next_frame(stream_bake, recorded_reads):
    folder, manifest = stream_bake
    with FrameStream(folder, capacity=4, prefetch=1, verify="size") as stream:
        stream.get(0)
        assert sorted(stream.cached_frames()) == [0, 1]  # frame 1 queued or loading
        assert wait_until(lambda: stream.loads >= 2), "frame 1 was not prefetched"
        assert recorded_reads == [0, 1]
        assert_frames_equal(stream.get(1), read_frame(folder, manifest, 1))
        # Frame 1 came from the cache.
        assert recorded_reads[:2] == [0, 1] and recorded_reads.count(1) == 1
        assert wait_until(lambda: stream.loads >= 3)
        assert recorded_reads == [0, 1, 2]
    recorded_reads.clear()
    with FrameStream(folder, capacity=4, prefetch=2) as stream:
        stream.get(0)  # queues 1 (slow) and 2
        frame = stream.get(1)  # waits on the load in flight instead of reading again
        assert_frames_equal(frame, read_frame(folder, manifest, 1))
        assert wait_until(lambda: stream.loads >= 4)
        assert recorded_reads == [0, 1, 2, 3]
    recorded_reads.clear()
    with FrameStream(folder, capacity=2, prefetch=1) as stream:
        stream.get(5)  # the last frame: the prefetch wraps to frame 0
        assert wait_until(lambda: stream.loads >= 2)
        assert recorded_reads == [5, 0]
        assert stream.cached_frames() == [0, 5]
        assert_frames_equal(stream.get(0), read_frame(folder, manifest, 0))
        assert recorded_reads[:2] == [5, 0] and recorded_reads.count(0) == 1


def test_frame_stream_rejects_out_of_range(stream_bake):
    folder, _ = stream_bake
    with FrameStream(folder, capacity=2, prefetch=1) as stream:
        for frame in (-1, 6, 100):
            with pytest.raises(IndexError):
                stream.get(frame)
        assert stream.cached_frames() == []


@pytest.mark.parametrize("verify", ["size", "checksum"])
def test_frame_stream_surfaces_frame_errors(stream_bake, verify):
    folder, manifest = stream_bake
    path = folder / frame_file_name(3)
    good = path.read_bytes()
    with FrameStream(folder, capacity=3, prefetch=1, verify=verify) as stream:
        path.write_bytes(good[:-5])  # truncated after the stream checked the sizes
        stream.get(1)
        stream.get(2)  # queues frame 3, which fails in the background
        with pytest.raises(BakeError, match=frame_file_name(3)):
            stream.get(3)  # the error surfaces here
        assert 3 not in stream.cached_frames()
        with pytest.raises(BakeError, match=frame_file_name(3)):
            stream.get(3)
        # Repaired: the failed frame is not cached, so it loads now.
        path.write_bytes(good)
        assert_frames_equal(stream.get(3), read_frame(folder, manifest, 3))


# ------------------------------------------------------------------------------------- 6. CUDA
# The extension build itself (now with render_baked) is tested in test_rasterizer_cuda.py.


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["f16", "f32"])
@pytest.mark.parametrize("case", FUSED_CASES, ids=FUSED_IDS)
def test_fused_cuda_equals_cpu(cpu_extension, cuda_extension, case, dtype):
    seed, n, cameras, h, w, layers, sources, sh_degree = case
    tensors, K, R, T = baked_inputs(seed, n, cameras, h, w, dtype, sh_degree)
    bg = torch.tensor([0.3, 0.6, 0.1]) if seed % 2 else None
    cpu = render_baked_points(*tensors, sources, K, R, T, h, w, layers, background=bg, backend="cpu")
    # "auto" picks the CUDA kernel for CUDA tensors.
    gpu = render_baked_points(
        *(t.cuda() for t in tensors),
        sources,
        K.cuda(),
        R.cuda(),
        T.cuda(),
        h,
        w,
        layers,
        background=bg,
    )
    assert gpu.rgb.is_cuda
    assert_renders_close(type(gpu)(*(t.cpu() for t in gpu)), cpu)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=["f16", "f32"])
def test_fused_cuda_empty_scene(cpu_extension, cuda_extension, dtype):
    tensors, K, R, T = baked_inputs(0, 0, 2, 12, 20, dtype)
    bg = torch.tensor([0.25, 0.5, 0.75])
    cpu = render_baked_points(*tensors, [1, 0], K, R, T, 12, 20, 5, background=bg, backend="cpu")
    gpu = render_baked_points(
        *(t.cuda() for t in tensors),
        [1, 0],
        K,
        R,
        T,
        12,
        20,
        5,
        background=bg,
        backend="cuda",
    )
    assert_renders_close(type(gpu)(*(t.cpu() for t in gpu)), cpu)
    assert torch.equal(gpu.rgb.cpu(), bg.expand(12, 20, 3))


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.pop("bytes"),
        lambda r: r.update(file="../../elsewhere.safetensors"),
        lambda r: r.update(points="many"),
    ],
)
def test_malformed_frame_record_is_rejected(bake_folder, change):
    manifest_path = bake_folder / "manifest.json"
    data = json.loads(manifest_path.read_text())
    change(data["frames"][0])
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(BakeError, match="malformed frame record 0"):
        read_manifest(bake_folder)
