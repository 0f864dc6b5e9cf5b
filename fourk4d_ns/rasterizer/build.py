"""Compiling and caching the C++ (CPU) and CUDA extensions of the rasterizer.

Each backend is its own extension module, built on first use with
``torch.utils.cpp_extension.load`` into torch's extension cache (``TORCH_EXTENSIONS_DIR`` when
set, else ``~/.cache/torch_extensions/...``). The module name carries a hash of the backend's
sources, of every header in ``csrc/``, of the compiler flags, of the CUDA architectures and of
the source and torch locations, so editing a source or the shared header yields a new module that
is built afresh, unchanged sources load the cached build, and two checkouts never share (and keep
rebuilding) one build directory.

Floating-point flags: ``-ffp-contract=off`` (C++) and ``--fmad=false`` (CUDA) stop the compilers
from fusing multiply-adds, which would round differently from the torch reference.

A failed build is remembered: the error is raised again on later calls without recompiling.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

logger = logging.getLogger(__name__)

CSRC = Path(__file__).resolve().parent / "csrc"

CPU_SOURCES = ["peel_cpu.cpp", "render_cpu.cpp", "bindings_cpu.cpp"]
CUDA_SOURCES = ["peel_cuda.cu", "render_cuda.cu", "tile_bins_cuda.cu", "bindings_cuda.cu"]
CPU_CFLAGS = ["-O3", "-fopenmp", "-ffp-contract=off"]
CPU_LDFLAGS = ["-fopenmp"]
CUDA_CFLAGS = ["-O3", "-ffp-contract=off"]
CUDA_NVCC_FLAGS = ["-O3", "--fmad=false", "-lineinfo"]

DEFAULT_CUDA_ARCH_LIST = "9.0+PTX"
"""Used when TORCH_CUDA_ARCH_LIST is unset and no GPU is visible to detect one from: native code
for compute capability 9.0 (H100, H200) plus compute_90 PTX that newer GPUs compile at load time.
With a visible GPU and no TORCH_CUDA_ARCH_LIST, the visible devices' capabilities are used."""


class ExtensionBuildError(RuntimeError):
    """A compiled backend could not be built or loaded."""


_loaded: dict[str, ModuleType | ExtensionBuildError] = {}
build_seconds: dict[str, float] = {}
"""Wall time of the builds (or cache loads) done in this process, by backend."""


def _source_hash(sources: list[str], extra: list[str]) -> str:
    """Hash of the backend's sources, every header in csrc/, the flags, and where the sources,
    torch, Python and the compiler are. The locations matter because the build command names
    them: two checkouts or environments sharing a module name would rebuild over each other."""
    digest = hashlib.sha256()
    # sys.prefix (the environment), not sys.executable: `python` and `python3` must share a build.
    for item in (
        str(CSRC),
        str(Path(torch.__file__).resolve().parent),
        sys.prefix,
        sysconfig.get_paths()["include"],
        os.environ.get("CXX", ""),
    ):
        digest.update(item.encode())
    headers = sorted(p.name for p in CSRC.iterdir() if p.suffix in (".h", ".cuh"))
    for name in headers + sorted(sources):
        digest.update(name.encode())
        digest.update((CSRC / name).read_bytes())
    for item in extra:
        digest.update(item.encode())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()[:12]


def _load(kind: str, name: str, builder) -> ModuleType:
    cached = _loaded.get(kind)
    if isinstance(cached, ExtensionBuildError):
        raise cached
    if cached is not None:
        return cached
    start = time.perf_counter()
    try:
        module = builder(name)
    except Exception as exc:  # compiler missing, compile error, linker error, ...
        error = ExtensionBuildError(f"could not build the {kind} rasterizer extension: {exc}")
        error.__cause__ = exc
        _loaded[kind] = error
        raise error from exc
    build_seconds[kind] = time.perf_counter() - start
    _loaded[kind] = module
    return module


def load_cpu_extension(verbose: bool = False) -> ModuleType:
    """Builds (first use) or loads the C++/OpenMP extension; raises ExtensionBuildError."""
    from torch.utils import cpp_extension

    def build(name: str) -> ModuleType:
        logger.info("Compiling the CPU rasterizer extension %s (first use only)", name)
        return cpp_extension.load(
            name=name,
            sources=[str(CSRC / s) for s in CPU_SOURCES],
            extra_cflags=CPU_CFLAGS,
            extra_ldflags=CPU_LDFLAGS,
            extra_include_paths=[str(CSRC)],
            with_cuda=False,
            verbose=verbose,
        )

    name = "fourk4d_peel_cpu_" + _source_hash(CPU_SOURCES, CPU_CFLAGS + CPU_LDFLAGS)
    return _load("cpu", name, build)


def find_cuda_home() -> str | None:
    """A CUDA toolkit root holding bin/nvcc and include/cuda_runtime.h, or None.

    Tries CUDA_HOME, CUDA_PATH, the real location of ``nvcc`` on PATH and /usr/local/cuda. (torch
    derives the root from the directory of ``nvcc``, which is wrong when ``nvcc`` on PATH is a
    wrapper script or a link outside the toolkit.)
    """
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    candidates.append("/usr/local/cuda")
    for root in candidates:
        if root and (Path(root) / "bin" / "nvcc").is_file() and (Path(root) / "include" / "cuda_runtime.h").is_file():
            return root
    return None


def cuda_arch_list() -> str:
    """Architectures the CUDA extension is compiled for (see DEFAULT_CUDA_ARCH_LIST)."""
    env = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if env:
        return env
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        caps = sorted({torch.cuda.get_device_capability(i) for i in range(count)})
        return ";".join(f"{major}.{minor}" for major, minor in caps)
    return DEFAULT_CUDA_ARCH_LIST


@contextlib.contextmanager
def _cuda_build_environment(cuda_home: str, arch_list: str) -> Iterator[None]:
    """Points torch's extension builder at the toolkit and architectures for the build only."""
    from torch.utils import cpp_extension

    saved_env = {k: os.environ.get(k) for k in ("CUDA_HOME", "TORCH_CUDA_ARCH_LIST")}
    saved_home = cpp_extension.CUDA_HOME
    os.environ["CUDA_HOME"] = cuda_home
    os.environ["TORCH_CUDA_ARCH_LIST"] = arch_list
    # cpp_extension resolves CUDA_HOME once at import; update its module-level copy too.
    cpp_extension.CUDA_HOME = cuda_home
    try:
        yield
    finally:
        cpp_extension.CUDA_HOME = saved_home
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_cuda_extension(verbose: bool = False) -> ModuleType:
    """Builds (first use, minutes) or loads the CUDA extension; raises ExtensionBuildError.

    Needs a CUDA build of torch and a CUDA toolkit (nvcc), not a GPU: it also compiles on a
    machine without one (for DEFAULT_CUDA_ARCH_LIST unless TORCH_CUDA_ARCH_LIST is set).
    """
    from torch.utils import cpp_extension

    arch_list = cuda_arch_list()

    def build(name: str) -> ModuleType:
        if torch.version.cuda is None:
            raise RuntimeError("this torch build has no CUDA support (torch.version.cuda is None)")
        cuda_home = find_cuda_home()
        if cuda_home is None:
            raise RuntimeError("no CUDA toolkit found (nvcc): set CUDA_HOME or put nvcc on PATH")
        logger.info("Compiling the CUDA rasterizer extension %s for %s (first use only)", name, arch_list)
        with _cuda_build_environment(cuda_home, arch_list):
            return cpp_extension.load(
                name=name,
                sources=[str(CSRC / s) for s in CUDA_SOURCES],
                extra_cflags=CUDA_CFLAGS,
                extra_cuda_cflags=CUDA_NVCC_FLAGS,
                extra_include_paths=[str(CSRC)],
                with_cuda=True,
                verbose=verbose,
            )

    name = "fourk4d_peel_cuda_" + _source_hash(CUDA_SOURCES, CUDA_CFLAGS + CUDA_NVCC_FLAGS + [arch_list])
    return _load("cuda", name, build)


def build_error(kind: str) -> ExtensionBuildError | None:
    """The remembered build failure of backend ``kind`` ("cpu" or "cuda"), if any."""
    cached = _loaded.get(kind)
    return cached if isinstance(cached, ExtensionBuildError) else None
