"""scripts/gpu_verify.py on the CPU (its --quick dry run) where the packages the GPU machine lacks cannot
be imported; its report, time budget and exit status; and that the GPU tests collect with torch alone."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_verify.py"
SECTIONS = [
    "environment",
    "build",
    "small-index",
    "tie-index",
    "production-index",
    "edge-cases",
    "fused",
    "playback-bench",
    "training-bench",
    "sanitizer",
]
CUDA_ONLY_CHECKS = {
    "cuda extension builds and loads",
    "index pass on a side CUDA stream",
    "fused render on a side CUDA stream",
}
NOT_ON_GPU_MACHINE = (
    "nerfstudio",
    "cv2",
    "dataparsers",
    "torchvision",
    "torchmetrics",
    "pytorch_msssim",
    "tyro",
    "rich",
    "scipy",
    "skimage",
    "matplotlib",
    "simplejpeg",
    "av",
    "imageio_ffmpeg",
    "plyfile",
    "safetensors",
    "trimesh",
    "embreex",
    "PIL",
)
"""The project's dependencies besides torch, numpy and ninja, and its capture readers."""

BLOCKER = """
import sys

class Absent:
    '''Makes the blocked top-level modules unimportable, as on a machine without them.'''

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, Absent())
"""
RUN_SCRIPT = f"import runpy\nsys.argv[0] = {str(SCRIPT)!r}\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
RUN_PYTEST = "import pytest\nsys.exit(pytest.main(sys.argv[1:]))\n"


def run_without(blocked: tuple[str, ...], main: str, args: list[str], timeout: float = 120, prelude: str = ""):
    """``python -c main args`` in the repository root with the ``blocked`` modules unimportable."""
    code = f"BLOCKED = {blocked!r}\n{BLOCKER}\n{prelude}\n{main}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # plugins of this environment are not on the GPU machine
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def report_of(done: subprocess.CompletedProcess, path: Path) -> dict:
    assert path.exists(), done.stdout + done.stderr
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory) -> dict:
    """The --quick CPU dry run of every section."""
    path = tmp_path_factory.mktemp("gpu_verify") / "report.json"
    done = run_without(NOT_ON_GPU_MACHINE, RUN_SCRIPT, ["--device", "cpu", "--quick", "--output", str(path)])
    assert done.returncode == 0, done.stdout + done.stderr
    return report_of(done, path)


def test_dry_run_passes_every_section_that_needs_no_gpu(quick_report):
    assert quick_report["status"] == "passed" and quick_report["complete"]
    assert (quick_report["device"], quick_report["plan"]) == ("cpu", "quick")
    sections = quick_report["sections"]
    assert list(sections) == SECTIONS
    assert sections.pop("sanitizer") == {"status": "skipped", "reason": "no CUDA device"}
    for name, section in sections.items():
        assert section["status"] == "passed", name
        assert section["seconds"] >= 0 and isinstance(section["data"], dict)
        states = {check["status"] for check in section["checks"]}
        assert "passed" in states and "failed" not in states, name
        for check in section["checks"]:
            if check["status"] == "skipped":
                assert check["name"] in CUDA_ONLY_CHECKS and "no CUDA device" in check["reason"], check


def test_dry_run_compares_the_cpu_backend_with_the_torch_reference(quick_report):
    sections = quick_report["sections"]
    for name in ("small-index", "tie-index", "production-index"):
        exact = [c for c in sections[name]["checks"] if c["name"].endswith("cpu == torch")]
        assert exact and all(c["pixels_differing"] == 0 for c in exact), name
    fused = sections["fused"]["checks"]
    assert {"float16", "float32"} <= {c["name"].split()[0] for c in fused}
    assert all(c["name"].endswith("cpu vs torch") and c["pixels_off"] == 0 for c in fused)
    assert any(c["covered_pixels"] > 0.05 for c in fused)


def test_dry_run_measures_and_profiles_the_benchmarks(quick_report):
    sections = quick_report["sections"]
    playback = sections["playback-bench"]["data"]
    assert playback["results"][0]["fps"] > 0
    assert playback["profile"]["top_cpu_ops"]["events"]
    training = sections["training-bench"]["data"]
    assert [r["train_cnn"] for r in training["results"]] == [False, True]
    assert training["profile"]["top_cpu_ops"]["total_ms"] > 0
    environment = sections["environment"]
    assert environment["checks"][0]["loaded"] == []
    assert environment["data"]["torch"]
    # Core modules that need a package the GPU machine lacks (plyfile for the PLY export) are listed.
    for module, error in environment["data"]["core_modules_not_importable"].items():
        assert any(f"'{name}" in error for name in NOT_ON_GPU_MACHINE), (module, error)


def test_sections_past_the_time_budget_are_skipped_and_earlier_ones_kept(tmp_path):
    path = tmp_path / "report.json"
    args = ["--device", "cpu", "--quick", "--sections", "small-index", "fused", "--time-budget", "1e-6"]
    done = run_without(NOT_ON_GPU_MACHINE, RUN_SCRIPT, [*args, "--output", str(path)])
    report = report_of(done, path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(report["sections"]) == ["small-index", "fused"]
    first, second = report["sections"].values()
    assert first["status"] == "passed" and first["checks"]
    assert second["status"] == "skipped" and "time budget" in second["reason"]


def test_a_failed_check_fails_the_run(tmp_path):
    # OpenCV imported before the script: the check that the core imports without it must fail.
    path = tmp_path / "report.json"
    args = ["--device", "cpu", "--sections", "environment", "--output", str(path)]
    done = run_without((), RUN_SCRIPT, args, prelude="import cv2")
    report = report_of(done, path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert report["status"] == "failed"
    check = report["sections"]["environment"]["checks"][0]
    assert check["status"] == "failed" and check["loaded"] == ["cv2"]


def test_help_lists_the_sections():
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for name in SECTIONS:
        assert name in done.stdout
    assert "--time-budget" in done.stdout and "--device" in done.stdout


def test_gpu_tests_collect_with_torch_alone():
    marked = re.compile(r"^@pytest\.mark\.gpu$", re.MULTILINE)
    gpu_files = sorted(p.name for p in (ROOT / "tests").glob("test_*.py") if marked.search(p.read_text()))
    assert "test_rasterizer_cuda.py" in gpu_files
    args = ["--collect-only", "-q", "-m", "gpu", "-p", "no:cacheprovider", *(f"tests/{f}" for f in gpu_files)]
    done = run_without(NOT_ON_GPU_MACHINE, RUN_PYTEST, args)
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert any("test_rasterizer_cuda.py::test_cuda_equals_cpu_exactly" in line for line in collected)
    assert {line.split("::")[0] for line in collected} == {f"tests/{f}" for f in gpu_files}


@pytest.fixture(scope="module")
def gpu_verify():
    """The script as a module, for its pure functions."""
    spec = importlib.util.spec_from_file_location("gpu_verify", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


def test_sanitizer_summaries_are_read(gpu_verify):
    clean = gpu_verify.sanitizer_clean
    assert clean("========= ERROR SUMMARY: 0 errors\n") == (True, ["ERROR SUMMARY: 0 errors"])
    assert clean("========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)")[0]
    assert not clean("========= Invalid __global__ read\n========= ERROR SUMMARY: 3 errors")[0]
    assert not clean("========= RACECHECK SUMMARY: 1 hazard displayed (0 errors, 1 warning)")[0]
    assert not clean("the tool never started")[0]


def test_binary_architectures_are_matched_to_the_device(gpu_verify):
    runs = gpu_verify.runs_on_device
    assert runs({"elf": ["sm_90"], "ptx": []}, (9, 0))[0]
    assert runs({"elf": ["sm_90"], "ptx": ["sm_90"]}, (10, 0))[0]  # PTX compiled at load time
    assert not runs({"elf": ["sm_90"], "ptx": []}, (10, 0))[0]
    assert not runs({"elf": [], "ptx": ["sm_90"]}, (8, 0))[0]
