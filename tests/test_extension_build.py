"""The extension loader without compiling anything: cached lookups, the build key, the CUDA
architectures, the messages of a missing toolkit or a failed build, and the compile notices.
``torch.utils.cpp_extension.load`` is replaced by a fake that records its arguments."""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch.utils import cpp_extension

from fourk4d_ns.cli.common import CommandOptions, run_command
from fourk4d_ns.rasterizer import ExtensionBuildError
from fourk4d_ns.rasterizer import build as rbuild


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path: Path):
    """No backend loaded yet, builds under tmp_path, and a fake ``cpp_extension.load`` returning
    an empty module (its calls are in the returned list)."""
    monkeypatch.setattr(rbuild, "_loaded", {})
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    calls = []

    def fake_load(**kwargs):
        calls.append({**kwargs, "env": {k: rbuild.os.environ.get(k) for k in ("CUDA_HOME", "TORCH_CUDA_ARCH_LIST")}})
        return types.ModuleType(kwargs["name"])

    monkeypatch.setattr(cpp_extension, "load", fake_load)
    return calls


@pytest.fixture
def fake_toolkit(monkeypatch, tmp_path: Path):
    """A CUDA torch, a toolkit at tmp_path/cuda (nvcc 13.0) and no visible GPU."""
    home = str(tmp_path / "cuda")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(rbuild, "find_cuda_home", lambda: home)
    monkeypatch.setattr(rbuild, "nvcc_version", lambda cuda_home: "Cuda compilation tools, release 13.0, V13.0.88")
    monkeypatch.setattr(rbuild, "visible_cuda_archs", lambda: [])
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    return home


def count_calls(monkeypatch, module, name: str) -> list:
    """Wraps ``module.name`` so that each call appends its arguments to the returned list."""
    calls, real = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("kind", ["cpu", "cuda"])
def test_cached_lookup_does_not_hash_the_sources_again(kind, fresh_loader, fake_toolkit, monkeypatch):
    hashes = count_calls(monkeypatch, rbuild, "_source_hash")
    load = rbuild.load_cpu_extension if kind == "cpu" else rbuild.load_cuda_extension
    module = load()
    assert len(hashes) == 1 and len(fresh_loader) == 1
    for _ in range(100):
        assert load() is module
    assert len(hashes) == 1 and len(fresh_loader) == 1


def test_nvcc_version_runs_once_per_toolkit(monkeypatch):
    runs = []

    def fake_run(command, **kwargs):
        runs.append(command)
        return types.SimpleNamespace(stdout=f"nvcc of {command[0]}", stderr="")

    monkeypatch.setattr(rbuild.subprocess, "run", fake_run)
    rbuild.nvcc_version.cache_clear()
    try:
        assert rbuild.nvcc_version("/a") == rbuild.nvcc_version("/a") == "nvcc of /a/bin/nvcc"
        assert rbuild.nvcc_version("/b") == "nvcc of /b/bin/nvcc"
        assert len(runs) == 2
    finally:
        rbuild.nvcc_version.cache_clear()


@pytest.mark.parametrize("change", [None, "nvcc upgraded", "another toolkit", "archs", "nvcc flag", "host flag", "CC"])
def test_cuda_build_key_covers_the_toolchain_and_every_flag(change, monkeypatch):
    versions = {"/cuda": "release 13.0, V13.0.88", "/cuda-12": "release 12.8, V12.8.93"}
    monkeypatch.setattr(rbuild, "nvcc_version", lambda cuda_home: versions[cuda_home])
    monkeypatch.delenv("CC", raising=False)
    home, archs = "/cuda", "9.0+PTX"
    base = rbuild.cuda_extension_name(home, archs)
    if change == "nvcc upgraded":  # the same folder, a newer toolkit
        versions[home] = "release 13.1, V13.1.20"
    elif change == "another toolkit":
        home = "/cuda-12"
    elif change == "archs":
        archs = "9.0;10.0"
    elif change == "nvcc flag":
        monkeypatch.setattr(rbuild, "CUDA_NVCC_FLAGS", [*rbuild.CUDA_NVCC_FLAGS, "-G"])
    elif change == "host flag":
        monkeypatch.setattr(rbuild, "CUDA_CFLAGS", [*rbuild.CUDA_CFLAGS, "-march=native"])
    elif change == "CC":  # nvcc's host compiler
        monkeypatch.setenv("CC", "gcc-12")
    name = rbuild.cuda_extension_name(home, archs)
    assert name.startswith("fourk4d_peel_cuda_")
    assert (name == base) == (change is None)


def test_host_flags_reach_nvccs_host_compiler(fresh_loader, fake_toolkit):
    rbuild.load_cuda_extension()
    (call,) = fresh_loader
    for flag in rbuild.CUDA_CFLAGS:
        assert f"-Xcompiler={flag}" in call["extra_cuda_cflags"]
    assert "-Xcompiler=-ffp-contract=off" in call["extra_cuda_cflags"]
    # The toolkit and architectures are set for the build only.
    assert call["env"] == {"CUDA_HOME": fake_toolkit, "TORCH_CUDA_ARCH_LIST": rbuild.DEFAULT_CUDA_ARCH_LIST}
    assert "TORCH_CUDA_ARCH_LIST" not in rbuild.os.environ


def test_visible_architectures_are_read_from_the_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i: [(9, 0), (8, 0), (9, 0)][i])
    assert rbuild.visible_cuda_archs() == ["8.0", "9.0"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert rbuild.visible_cuda_archs() == []


@pytest.mark.parametrize(
    "configured, visible, expected",
    [
        (None, [], rbuild.DEFAULT_CUDA_ARCH_LIST),  # nothing to go by: the default
        (None, ["8.0", "9.0"], "8.0;9.0"),  # the visible GPUs
        ("8.6", [], "8.6"),  # what is configured
        ("8.6", ["9.0"], "8.6;9.0"),  # configured, plus the visible GPU that it misses
        ("8.0 8.6", ["8.6"], "8.0;8.6"),  # space-separated, already covered
        ("9.0+PTX", ["9.0", "10.0"], "9.0+PTX;10.0"),  # PTX runs on 10.0, but native code is added
    ],
)
def test_arch_list_always_includes_the_visible_gpus(monkeypatch, configured, visible, expected):
    if configured is None:
        monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    else:
        monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", configured)
    monkeypatch.setattr(rbuild, "visible_cuda_archs", lambda: visible)
    assert rbuild.cuda_arch_list() == expected


def test_missing_nvcc_is_explained_once(fresh_loader, fake_toolkit, monkeypatch):
    lookups = []
    monkeypatch.setattr(rbuild, "find_cuda_home", lambda: lookups.append(1))
    with pytest.raises(ExtensionBuildError, match=r"needs nvcc, which was not found") as first:
        rbuild.load_cuda_extension()
    message = str(first.value)
    assert "install the CUDA toolkit 13.0" in message and "set CUDA_HOME" in message and "--device cpu" in message
    with pytest.raises(ExtensionBuildError) as again:
        rbuild.load_cuda_extension()
    assert again.value is first.value and len(lookups) == 1  # remembered, not looked up again
    assert not fresh_loader


def test_torch_without_cuda_is_explained(fresh_loader, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ExtensionBuildError, match="needs a CUDA build of torch"):
        rbuild.load_cuda_extension()


@pytest.mark.parametrize("kind", ["cpu", "cuda"])
def test_failed_build_is_explained_with_the_compiler_output(kind, fresh_loader, fake_toolkit, monkeypatch):
    output = "FAILED: render.o\nrender.cu(12): error: expected a ';'\nninja: build stopped: subcommand failed."

    def failing_load(**kwargs):
        fresh_loader.append(kwargs)
        raise RuntimeError(f"Error building extension '{kwargs['name']}': {output}")

    monkeypatch.setattr(cpp_extension, "load", failing_load)
    load = rbuild.load_cpu_extension if kind == "cpu" else rbuild.load_cuda_extension
    label = kind.upper()
    with pytest.raises(ExtensionBuildError, match=f"compiling the fourk4d {label} rasterizer with .* failed") as info:
        load()
    message = str(info.value)
    assert "\n" not in message
    fix = "set CXX" if kind == "cpu" else "set CUDA_HOME"
    assert fix in message
    log = Path(re.search(r"\((\S+) has the output\)", message).group(1))
    assert log.name == "build.log" and "expected a ';'" in log.read_text()
    with pytest.raises(ExtensionBuildError) as again:
        load()
    assert again.value is info.value and len(fresh_loader) == 1  # not compiled again


def test_a_build_that_cannot_be_imported_says_so(fresh_loader, monkeypatch):
    name = rbuild.cpu_extension_name()
    folder = rbuild.build_directory(name)
    folder.mkdir(parents=True)
    (folder / f"{name}.so").write_bytes(b"")

    def unloadable(**kwargs):
        raise ImportError("undefined symbol: _ZN3c10")

    monkeypatch.setattr(cpp_extension, "load", unloadable)
    with pytest.raises(ExtensionBuildError, match="was built in .* but could not be loaded: undefined symbol"):
        rbuild.load_cpu_extension()


def test_a_first_compile_is_announced_and_timed(fresh_loader, monkeypatch, capsys):
    rbuild.load_cpu_extension()
    err = capsys.readouterr().err
    assert "compiling the fourk4d CPU rasterizer with" in err and "first use only" in err
    assert "compiled the fourk4d CPU rasterizer in" in err
    # A build already in the cache loads without the notice.
    name = rbuild.cpu_extension_name()
    assert fresh_loader[0]["build_directory"] == str(rbuild.build_directory(name))
    (rbuild.build_directory(name) / f"{name}.so").write_bytes(b"")
    monkeypatch.setattr(rbuild, "_loaded", {})
    rbuild.load_cpu_extension()
    assert capsys.readouterr().err == ""


@dataclass
class FailingBuild(CommandOptions):
    """A command whose kernels cannot be built."""

    def main(self) -> None:
        raise ExtensionBuildError("the fourk4d CUDA rasterizer ... needs nvcc, which was not found: install it")


def test_commands_print_a_build_error_as_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_command(FailingBuild, "fourk4d-test", [])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("fourk4d-test: error: the fourk4d CUDA rasterizer") and err.count("\n") == 1
    with pytest.raises(ExtensionBuildError):
        run_command(FailingBuild, "fourk4d-test", ["--debug"])
