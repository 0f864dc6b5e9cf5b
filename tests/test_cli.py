"""The fourk4d-* commands print user errors as one line (exit status 2) and keep tracebacks for --debug."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fourk4d_ns.cli import bake, carve, demo_scene, export, orbit_path, render


def user_error_cases(tmp_path: Path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yml").write_text("")
    missing = str(tmp_path / "missing")
    return [
        (carve, "fourk4d-carve", ["--data", missing], "capture folder not found"),
        (orbit_path, "fourk4d-orbit-path", ["--data", missing, "--output", str(tmp_path / "o.json")], "not found"),
        (bake, "fourk4d-bake", ["--load-config", str(tmp_path / "none.yml")], "no such config.yml"),
        (render, "fourk4d-render", ["--load-config", str(tmp_path / "run" / "config.yml")], "run fourk4d-bake"),
        (export, "fourk4d-export", [], "give exactly one of --bake DIR and --load-config CONFIG"),
        (demo_scene, "fourk4d-demo-scene", ["--output", str(tmp_path / "full"), "--preset", "tiny"], "--overwrite"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_user_errors_are_one_line(case: int, tmp_path: Path, capsys):
    module, name, argv, expected = user_error_cases(tmp_path)[case]
    with pytest.raises(SystemExit) as exit_info:
        module.entrypoint(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"{name}: error: ") and expected in err, err
    assert "\n" not in err and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch):
    from fourk4d_ns.io.errors import CaptureError

    with pytest.raises(CaptureError):
        carve.entrypoint(["--data", str(tmp_path / "missing"), "--debug"])
    monkeypatch.setenv("FOURK4D_DEBUG", "1")
    with pytest.raises(CaptureError):
        carve.entrypoint(["--data", str(tmp_path / "missing")])


def test_console_script(tmp_path: Path):
    """The installed command, as a user runs it."""
    script = Path(sys.executable).with_name("fourk4d-render")
    result = subprocess.run([str(script), "--bake", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("fourk4d-render: error: ") and "Traceback" not in result.stderr
    assert "no baked sequence there" in result.stderr


@pytest.mark.parametrize("module", ["fourk4d_ns.cli.render", "fourk4d_ns.cli.export"])
def test_playback_commands_do_not_need_nerfstudio(module: str):
    """Rendering and exporting a bake work where only torch is installed (a GPU machine without nerfstudio)."""
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'nerfstudio'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_ns_train_prints_a_capture_problem_as_one_line(tiny_demo_copy: Path, tmp_path: Path):
    """A capture the user must fix stops ``ns-train fourk4d`` at setup with one line and status 2, and leaves
    no run folder behind (nerfstudio writes config.yml before setup)."""
    import shutil

    shutil.rmtree(tiny_demo_copy / "masks")
    script = Path(sys.executable).with_name("ns-train")
    command = [str(script), "fourk4d", "--data", str(tiny_demo_copy), "--output-dir", str(tmp_path / "outputs")]
    command += ["--machine.device-type", "cpu", "--vis", "tensorboard"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    err = result.stderr.strip().splitlines()
    assert err[-1].startswith("ns-train fourk4d: error: ") and "looked for masks/, mask/" in err[-1], err[-1]
    assert "Traceback" not in result.stderr
    assert list((tmp_path / "outputs").iterdir()) == []
