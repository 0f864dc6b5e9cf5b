"""Compiling and caching the C++ (CPU) and CUDA extensions of the rasterizer.

Each backend is its own extension module, built on first use with ``torch.utils.cpp_extension.load``
in ``<root>/<name>``, the root being ``TORCH_EXTENSIONS_DIR`` when set, else torch's extension cache
(``~/.cache/torch_extensions``). The module name carries a hash, the build key, of everything the
build depends on: the backend's sources and every header in ``csrc/``, all compiler flags, where the
sources, torch and Python are, the host compilers (CC, CXX) and, for CUDA, the toolkit's location,
nvcc's version and the architectures. Editing a source or changing the toolchain thus yields a new
module built afresh, unchanged inputs load the cached build, and two checkouts never share (and
keep rebuilding) one build directory.

Lookups are cheap: the loaded module is kept per backend, and the build key (which reads and
hashes every source) is computed only when a backend is first loaded in a process. A first compile
says so on stderr, and how long it took. A failed build is remembered: its error is raised again on
later calls without recompiling.

Floating-point flags: ``-ffp-contract=off`` (host compilers) and ``--fmad=false`` (CUDA device code)
stop the compilers from fusing multiply-adds, which would round differently from the torch reference.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import torch

CSRC = Path(__file__).resolve().parent / "csrc"

CPU_SOURCES = ["peel_cpu.cpp", "render_cpu.cpp", "bindings_cpu.cpp"]
CUDA_SOURCES = ["peel_cuda.cu", "render_cuda.cu", "tile_bins_cuda.cu", "bindings_cuda.cu"]
NO_FP_CONTRACTION = "-ffp-contract=off"
CPU_CFLAGS = ["-O3", "-fopenmp", NO_FP_CONTRACTION]
CPU_LDFLAGS = ["-fopenmp"]
CUDA_CFLAGS = ["-O3", NO_FP_CONTRACTION]
"""Host compiler flags of the CUDA build. torch gives extra_cflags to .cpp sources only: nvcc compiles
the host code of .cu sources (camera center, argument checks) with what -Xcompiler passes on."""
CUDA_NVCC_FLAGS = ["-O3", "--fmad=false", "-lineinfo", *(f"-Xcompiler={flag}" for flag in CUDA_CFLAGS)]

DEFAULT_CUDA_ARCH_LIST = "9.0+PTX"
"""Used when TORCH_CUDA_ARCH_LIST is unset and no GPU is visible to detect one from: native code
for compute capability 9.0 (H100, H200) plus compute_90 PTX that newer GPUs compile at load time.
With a visible GPU and no TORCH_CUDA_ARCH_LIST, the visible devices' capabilities are used."""


class ExtensionBuildError(RuntimeError):
    """A compiled backend could not be built or loaded; the message says why and what to install or set."""


_loaded: dict[str, ModuleType | ExtensionBuildError] = {}
build_seconds: dict[str, float] = {}
"""Wall time of the builds (or cache loads) done in this process, by backend."""


def _source_hash(sources: list[str], extra: list[str]) -> str:
    """Hash of the backend's sources, every header in csrc/, the ``extra`` items (flags, toolchain),
    and where the sources, torch, Python and the host compilers are. The locations matter because
    the build command names them: two checkouts or environments sharing a module name would
    rebuild over each other."""
    digest = hashlib.sha256()
    # sys.prefix (the environment), not sys.executable: `python` and `python3` must share a build.
    for item in (
        str(CSRC),
        str(Path(torch.__file__).resolve().parent),
        sys.prefix,
        sysconfig.get_paths()["include"],
        os.environ.get("CC", ""),  # nvcc's host compiler (-ccbin)
        os.environ.get("CXX", ""),
    ):
        digest.update(item.encode() + b"\0")
    headers = sorted(p.name for p in CSRC.iterdir() if p.suffix in (".h", ".cuh"))
    for name in headers + sorted(sources):
        digest.update(name.encode() + b"\0")
        digest.update((CSRC / name).read_bytes())
    for item in extra:
        digest.update(item.encode() + b"\0")
    digest.update(torch.__version__.encode())
    return digest.hexdigest()[:12]


def build_directory(name: str) -> Path:
    """Where extension ``name`` is built and cached."""
    from torch.utils import cpp_extension

    root = os.environ.get("TORCH_EXTENSIONS_DIR") or cpp_extension.get_default_build_root()
    return Path(root) / name


def _load(kind: str, build: Callable[[], ModuleType]) -> ModuleType:
    """Backend ``kind``'s module: the one loaded before in this process, else ``build()`` (once)."""
    cached = _loaded.get(kind)
    if isinstance(cached, ModuleType):
        return cached
    if cached is not None:
        raise cached
    start = time.perf_counter()
    try:
        module = build()
    except ExtensionBuildError as error:
        _loaded[kind] = error
        raise
    except Exception as exc:
        error = ExtensionBuildError(f"could not build the fourk4d {kind} rasterizer: {exc}")
        _loaded[kind] = error
        raise error from exc
    build_seconds[kind] = time.perf_counter() - start
    _loaded[kind] = module
    return module


def _compile(label: str, name: str, toolchain: str, fix: str, load: Callable[[str], ModuleType]) -> ModuleType:
    """``load(build_directory)``, announcing a compile (no module built there yet) on stderr and
    turning failures into an ExtensionBuildError that names the toolchain and the fix."""
    folder = build_directory(name)
    folder.mkdir(parents=True, exist_ok=True)
    compiling = not (folder / f"{name}.so").exists()
    what = f"the fourk4d {label} rasterizer"
    if compiling:
        print(
            f"compiling {what} with {toolchain} (first use only; minutes) in {folder} ...", file=sys.stderr, flush=True
        )
    start = time.perf_counter()
    try:
        module = load(str(folder))
    except Exception as exc:
        if isinstance(exc, (ImportError, OSError)) and (folder / f"{name}.so").exists():
            raise ExtensionBuildError(f"{what} was built in {folder} but could not be loaded: {exc}") from exc
        # The compiler's or ninja's failure: torch's message holds their output; keep it in a file.
        log = folder / "build.log"
        log.write_text(f"{exc}\n")
        raise ExtensionBuildError(f"compiling {what} with {toolchain} failed ({log} has the output); {fix}") from exc
    if compiling:
        print(f"compiled {what} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return module


def cpu_extension_name() -> str:
    """Module name of the CPU extension."""
    return "fourk4d_peel_cpu_" + _source_hash(CPU_SOURCES, CPU_CFLAGS + CPU_LDFLAGS)


def _build_cpu(verbose: bool) -> ModuleType:
    from torch.utils import cpp_extension

    name = cpu_extension_name()
    compiler = os.environ.get("CXX") or "c++"

    def load(folder: str) -> ModuleType:
        return cpp_extension.load(
            name=name,
            sources=[str(CSRC / s) for s in CPU_SOURCES],
            extra_cflags=CPU_CFLAGS,
            extra_ldflags=CPU_LDFLAGS,
            extra_include_paths=[str(CSRC)],
            build_directory=folder,
            with_cuda=False,
            verbose=verbose,
        )

    fix = "it needs a C++17 compiler with OpenMP (set CXX to choose one) and ninja"
    return _compile("CPU", name, compiler, fix, load)


def load_cpu_extension(verbose: bool = False) -> ModuleType:
    """Builds (first use) or loads the C++/OpenMP extension; raises ExtensionBuildError."""
    return _load("cpu", lambda: _build_cpu(verbose))


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


@functools.cache
def nvcc_version(cuda_home: str) -> str:
    """``nvcc --version`` of the toolkit at ``cuda_home`` (run once per process and toolkit)."""
    try:
        done = subprocess.run(
            [str(Path(cuda_home) / "bin" / "nvcc"), "--version"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nvcc did not run: {exc}"
    return (done.stdout + done.stderr).strip()


def visible_cuda_archs() -> list[str]:
    """Compute capabilities ("major.minor") of the visible GPUs, sorted; empty without one."""
    if not torch.cuda.is_available():
        return []
    caps = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
    return [f"{major}.{minor}" for major, minor in sorted(caps)]


def cuda_arch_list() -> str:
    """Architectures the CUDA extension is compiled for: TORCH_CUDA_ARCH_LIST (else the visible
    GPUs', else DEFAULT_CUDA_ARCH_LIST), always with every visible GPU's own architecture added, so
    that the first launch cannot fail with "no kernel image is available for execution"."""
    configured = os.environ.get("TORCH_CUDA_ARCH_LIST", "").replace(" ", ";")
    entries = [entry for entry in configured.split(";") if entry]
    visible = visible_cuda_archs()
    if not entries:
        entries = visible or DEFAULT_CUDA_ARCH_LIST.split(";")
    native = {entry.removesuffix("+PTX") for entry in entries}
    return ";".join(entries + [arch for arch in visible if arch not in native])


def cuda_extension_name(cuda_home: str, arch_list: str) -> str:
    """Module name of the CUDA extension built with the toolkit at ``cuda_home`` for ``arch_list``."""
    toolchain = [cuda_home, nvcc_version(cuda_home), arch_list]
    return "fourk4d_peel_cuda_" + _source_hash(CUDA_SOURCES, CUDA_CFLAGS + CUDA_NVCC_FLAGS + toolchain)


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


def _build_cuda(verbose: bool) -> ModuleType:
    from torch.utils import cpp_extension

    cpu_hint = "or use the CPU backend (fourk4d-render --device cpu)"
    if torch.version.cuda is None:
        raise ExtensionBuildError(
            f"the fourk4d CUDA rasterizer needs a CUDA build of torch, and this torch ({torch.__version__}) has "
            f"none: install torch's CUDA build, {cpu_hint}"
        )
    cuda_home = find_cuda_home()
    if cuda_home is None:
        raise ExtensionBuildError(
            "the fourk4d CUDA rasterizer is compiled on first use and needs nvcc, which was not found (looked at "
            f"CUDA_HOME, CUDA_PATH, nvcc on PATH and /usr/local/cuda): install the CUDA toolkit {torch.version.cuda} "
            f"(the CUDA version of this torch) and set CUDA_HOME to its folder, {cpu_hint}"
        )
    arch_list = cuda_arch_list()
    name = cuda_extension_name(cuda_home, arch_list)
    release = next((line for line in nvcc_version(cuda_home).splitlines() if "release" in line), "")
    toolchain = f"{cuda_home}/bin/nvcc ({release.strip() or 'unknown version'}) for {arch_list}"

    def load(folder: str) -> ModuleType:
        with _cuda_build_environment(cuda_home, arch_list):
            return cpp_extension.load(
                name=name,
                sources=[str(CSRC / s) for s in CUDA_SOURCES],
                extra_cflags=CUDA_CFLAGS,
                extra_cuda_cflags=CUDA_NVCC_FLAGS,
                extra_include_paths=[str(CSRC)],
                build_directory=folder,
                with_cuda=True,
                verbose=verbose,
            )

    fix = (
        f"it needs a CUDA toolkit matching torch's CUDA {torch.version.cuda} (set CUDA_HOME to it) and a host compiler "
        f"that nvcc supports (set CC and CXX), {cpu_hint}"
    )
    return _compile("CUDA", name, toolchain, fix, load)


def load_cuda_extension(verbose: bool = False) -> ModuleType:
    """Builds (first use, minutes) or loads the CUDA extension; raises ExtensionBuildError.

    Needs a CUDA build of torch and a CUDA toolkit (nvcc), not a GPU: it also compiles, and imports,
    on a machine without one (for DEFAULT_CUDA_ARCH_LIST unless TORCH_CUDA_ARCH_LIST is set).
    """
    return _load("cuda", lambda: _build_cuda(verbose))


def build_error(kind: str) -> ExtensionBuildError | None:
    """The remembered build failure of backend ``kind`` ("cpu" or "cuda"), if any."""
    cached = _loaded.get(kind)
    return cached if isinstance(cached, ExtensionBuildError) else None
