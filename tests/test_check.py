"""``fourk4d-check``: the capture doctor passes a good capture, and finds bad files and a bad camera."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from dataparsers.easymocap_cameras import read_cameras, write_cameras
from dataparsers.easymocap_layout import MASKS_LOOKED_FOR
from fourk4d_ns.cli import check


def run_check(scene: Path, tmp_path: Path, *options: str) -> tuple[int, dict]:
    """The command's exit status and its JSON report."""
    report = tmp_path / "report.json"
    status = check.entrypoint(["--data", str(scene), "--json", str(report), *options])
    return status, json.loads(report.read_text())


def test_tiny_demo_passes_and_draws_the_rig(tiny_demo_copy: Path, tmp_path: Path, capsys):
    status, report = run_check(tiny_demo_copy, tmp_path)
    assert status == 0 and report["passed"] and report["errors"] == [] and report["warnings"] == []
    assert report["files_decoded"] == 2 * 8 * 4 and report["unreadable"] == [] and report["wrong_size"] == []
    cameras = report["cameras"]
    assert [c["name"] for c in cameras] == [f"{i:02d}" for i in range(8)]
    assert [c["name"] for c in cameras if c["held_out"]] == ["06", "07"]  # split.json
    assert all(0.03 < x < 0.2 for c in cameras for x in c["coverage"])  # the figure fills ~8% of each image
    assert all(c["covered"] > 0.9 and c["iou"] > 0.7 and not c["flagged"] for c in cameras)
    picture = tiny_demo_copy / "fourk4d" / "check" / "rig.png"  # the default place
    assert report["picture"] == str(picture)
    image = cv2.imread(str(picture))
    assert image is not None and image.shape[:2] == (700, 1400) and image.std() > 10
    assert "check passed" in capsys.readouterr().out


def rotate_in_place(scene: Path, camera: str, degrees: float) -> None:
    """Turns one camera about its own y axis (its center stays), as a miscalibration would."""
    rig = read_cameras(scene / "intri.yml", scene / "extri.yml")
    c = rig.names.index(camera)
    angle = np.radians(degrees)
    turn = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    rig.R[c], rig.T[c] = turn @ rig.R[c], turn @ rig.T[c]  # x_cam' = turn x_cam
    write_cameras(scene, rig)


def test_a_camera_turned_by_two_degrees_is_flagged(tiny_demo_copy: Path, tmp_path: Path):
    """Camera 02 faces 05 across the ring, and only those two constrain each other's silhouettes much:
    02's bad mask erodes the hull 05 is compared with, so only trying 02 out of the hulls clears 05."""
    rotate_in_place(tiny_demo_copy, "02", 2.0)
    status, report = run_check(tiny_demo_copy, tmp_path)
    assert status == 1 and not report["passed"]
    flagged = [c["name"] for c in report["cameras"] if c["flagged"]]
    assert flagged == ["02"], [(c["name"], c["covered"]) for c in report["cameras"]]
    assert report["excluded"] == ["02"]
    assert len(report["errors"]) == 1 and "camera '02'" in report["errors"][0]
    covered = {c["name"]: c["covered"] for c in report["cameras"]}
    assert covered["02"] < 0.7 * report["median_covered"]  # measured: 0.53 of 0.97
    assert cv2.imread(report["picture"]) is not None


def test_every_bad_file_is_listed(tiny_demo_copy: Path, tmp_path: Path):
    scene = tiny_demo_copy
    image = cv2.imread(str(scene / "images" / "01" / "000002.png"))
    (scene / "images" / "01" / "000002.png").unlink()
    encoded = cv2.imencode(".jpg", image)[1].tobytes()
    truncated = scene / "images" / "01" / "000002.jpg"
    truncated.write_bytes(encoded[: len(encoded) // 2])
    assert cv2.imread(str(truncated)) is not None  # OpenCV decodes it partly, with only a warning
    png = scene / "images" / "04" / "000000.png"
    png.write_bytes(png.read_bytes()[:-12])  # no end chunk: Pillow reads it, OpenCV does not
    garbage = scene / "masks" / "03" / "000001.png"
    garbage.write_bytes(b"not an image")
    small = scene / "masks" / "05" / "000003.png"
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(small), cv2.IMREAD_GRAYSCALE), (32, 32)))
    cv2.imwrite(str(scene / "masks" / "06" / "000002.png"), np.zeros((64, 64), np.uint8))

    status, report = run_check(scene, tmp_path, "--consistency.frames", "1")
    assert status == 1
    unreadable = {Path(p["path"]): p["problem"] for p in report["unreadable"]}
    assert set(unreadable) == {truncated, png, garbage}
    assert "truncated" in unreadable[truncated]
    assert [Path(p["path"]) for p in report["wrong_size"]] == [small]
    assert "32x32" in report["wrong_size"][0]["problem"]
    assert len(report["errors"]) == 2  # undecodable files, a file of the wrong size
    assert report["warnings"] == ["camera '06': empty masks in frames 000002"]  # a warning, not an error
    camera_06 = report["cameras"][6]
    assert camera_06["empty_frames"] == ["000002"] and camera_06["coverage"][2] == 0
    assert report["cameras"][3]["coverage"][1] is None and report["cameras"][5]["coverage"][3] is None


def test_an_empty_mask_alone_is_a_warning(tiny_demo_copy: Path, tmp_path: Path):
    cv2.imwrite(str(tiny_demo_copy / "masks" / "01" / "000001.png"), np.zeros((64, 64), np.uint8))
    status, report = run_check(tiny_demo_copy, tmp_path, "--output", str(tmp_path / "rig.png"))
    assert status == 0 and report["errors"] == []
    assert report["warnings"] == ["camera '01': empty masks in frames 000001"]
    assert (tmp_path / "rig.png").is_file() and not (tiny_demo_copy / "fourk4d").exists()


def test_a_capture_without_masks_fails(tiny_demo_copy: Path, tmp_path: Path):
    import shutil

    shutil.rmtree(tiny_demo_copy / "masks")
    status, report = run_check(tiny_demo_copy, tmp_path)
    assert status == 1 and report["masks"] is None
    assert report["errors"] == [f"no mask folder (looked for {MASKS_LOOKED_FOR}): fourk4d needs masks"]


def test_errors_of_the_command_itself_exit_with_2(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        check.entrypoint(["--data", str(tmp_path / "missing")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fourk4d-check: error: ") and "capture folder not found" in err and "\n" not in err
