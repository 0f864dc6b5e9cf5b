"""Every demo flavour as a user meets it: ``fourk4d-check`` passes it, flags a camera turned by 2 degrees,
and fourk4d trains on it; a distorted capture trains like the pinhole one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import build_pipeline, held_out_psnr, train_steps

from dataparsers.easymocap_cameras import camera_files, read_cameras, write_cameras
from fourk4d_ns.cli import check
from fourk4d_ns.integration.baking import bake_pipeline
from fourk4d_ns.playback.bake_format import read_frame, read_manifest

FLAVORS = ("dna-rendering", "zju-mocap", "nhr", "distorted")


def run_check(scene: Path, tmp_path: Path) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    status = check.entrypoint(["--data", str(scene), "--json", str(report), "--output", str(tmp_path / "rig.png")])
    return status, json.loads(report.read_text())


def private_copy(scene: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(scene, tmp_path / scene.name))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_check_passes_each_flavor(demo_flavors, flavor: str, tmp_path: Path):
    status, report = run_check(demo_flavors[flavor], tmp_path)
    assert status == 0 and report["passed"] and report["errors"] == [], report["errors"]
    assert report["unreadable"] == [] and report["wrong_size"] == []
    assert all(c["iou"] > 0.7 and not c["flagged"] for c in report["cameras"])


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_check_flags_a_camera_turned_by_two_degrees(demo_flavors, flavor: str, tmp_path: Path):
    """Camera 02 turned about its own y axis in the files the reader uses (optimized/ where present),
    in the flavour's spelling of them (no H_/W_ for zju-mocap, Rot_ for dna-rendering)."""
    scene = private_copy(demo_flavors[flavor], tmp_path)
    intri, extri = camera_files(scene)
    rig = read_cameras(intri, extri)
    c = rig.names.index("02")
    angle = np.radians(2.0)
    turn = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    rig.R[c], rig.T[c] = turn @ rig.R[c], turn @ rig.T[c]
    spelling = "easyvolcap" if "Rot_02" in extri.read_text() else "easymocap"
    write_cameras(intri.parent, rig, spelling=spelling)
    status, report = run_check(scene, tmp_path)
    assert status == 1 and not report["passed"]
    assert [c["name"] for c in report["cameras"] if c["flagged"]] == ["02"]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_fourk4d_trains_on_each_flavor(demo_flavors, flavor: str, tmp_path: Path):
    scene = private_copy(demo_flavors[flavor], tmp_path)
    pipeline = build_pipeline(scene)
    outputs = pipeline.datamanager.train_dataparser_outputs
    sizes = {(int(h), int(w)) for h, w in zip(outputs.cameras.height.reshape(-1), outputs.cameras.width.reshape(-1))}
    if flavor == "dna-rendering":
        assert Path(outputs.image_filenames[0]).parts[-3] == "images_calib"
        assert len(sizes) == 2  # the 5 MP and 12 MP cameras' aspect ratios
    else:
        assert sizes == {(64, 64)}
    before = {name: p.detach().clone() for name, p in pipeline.model.named_parameters()}
    losses = train_steps(pipeline, 5)
    assert all(np.isfinite(losses))
    moved = [name for name, p in pipeline.model.named_parameters() if not torch.equal(p, before[name])]
    assert any(".points." in name for name in moved) and any(".field." in name for name in moved)
    if flavor == "dna-rendering":  # the bake draws its colors from sources of both sizes at once
        bake = bake_pipeline(pipeline, tmp_path / "bake", quiet=True)
        manifest = read_manifest(bake)
        assert manifest.num_frames == 4 and read_frame(bake, manifest, 3).xyz.shape[0] > 0


@pytest.mark.slow
def test_a_distorted_capture_trains_to_the_pinhole_psnr(demo_flavors, tiny_demo_capture: Path, tmp_path: Path):
    """The same scene with and without lens distortion, the same seed and 300 steps: held-out PSNR agrees
    within noise, and training did improve it (measured on the subject: 13.3 -> 14.2 dB pinhole, 13.3 -> 14.5 dB
    distorted)."""
    psnr = {}
    for name, scene in (("pinhole", tiny_demo_capture), ("distorted", demo_flavors["distorted"])):
        pipeline = build_pipeline(private_copy(scene, tmp_path / name), seed=0)
        start = held_out_psnr(pipeline, "psnr_foreground")
        train_steps(pipeline, 300)
        psnr[name] = held_out_psnr(pipeline, "psnr_foreground")
        assert psnr[name] > start + 0.5, (name, start, psnr[name])
    assert abs(psnr["distorted"] - psnr["pinhole"]) < 0.5, psnr


def test_orbit_path_of_a_capture_without_image_sizes(demo_flavors, tmp_path: Path):
    """zju-mocap's intri.yml has no H_/W_: the field of view comes from the images' size (64 px, focal ~90 px)."""
    from fourk4d_ns.cli import orbit_path

    scene = private_copy(demo_flavors["zju-mocap"], tmp_path)
    assert "H_00" not in (scene / "intri.yml").read_text()
    orbit_path.entrypoint(["--data", str(scene), "--output", str(tmp_path / "orbit.json"), "--frames", "4"])
    cameras = json.loads((tmp_path / "orbit.json").read_text())["camera_path"]
    rig = read_cameras(scene / "intri.yml", scene / "extri.yml")
    expected = np.degrees(2 * np.arctan(64 / 2 / rig.K[:, 1, 1])).mean()
    assert len(cameras) == 4 and all(abs(c["fov"] - expected) < 0.5 for c in cameras), (cameras[0]["fov"], expected)
