"""The on-disk format of a baked sequence (METHOD.md section 5).

A bake is a folder::

    manifest.json                 format name and version, frames, cameras, settings (the SH degree
                                  among them), and per frame its file, point count, size in bytes
                                  and SHA-256
    frame_000000.safetensors      one file per frame (safetensors: no pickle, mmap-able)
    ...

Each frame file holds, in half precision: ``xyz`` [N, 3] final positions, ``radius`` [N],
``density`` [N], ``sh`` [N, 3, (d+1)^2] SH coefficients of the manifest's ``sh_degree`` d (0 to 3;
the published 3 gives 16), and ``ibr`` [C, N, 4]: for every baked (training) camera the IBR color
(rgb) and the blend logit of every point. The manifest is written last and the folder is moved
into place only when complete (``write_bake``), so a bake is either whole or absent. Loading
checks each file's size (a truncated file) and, with ``verify="checksum"``, its SHA-256 (a modified
file), and the tensors' names, shapes (``sh`` of the manifest's degree) and dtypes; each failure is
a ``BakeError`` naming the file. A bake of another format version is refused (bake again).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from fourk4d_ns.core.heads import SH_DEGREES, sh_coefficients
from fourk4d_ns.io.atomic import atomic_write_bytes, replace_folder, staging_folder
from fourk4d_ns.io.errors import InputError

Tensor = torch.Tensor

FORMAT_NAME = "fourk4d-bake"
FORMAT_VERSION = 2
"""2: ``sh_degree`` in the manifest and ``sh`` [N, 3, (d+1)^2] (1: always degree 3)."""
MANIFEST = "manifest.json"
BAKE_FOLDER = "bake"
"""A run's bake is this folder next to its config.yml."""
TENSOR_NAMES = ("xyz", "radius", "density", "sh", "ibr")
VERIFY_MODES = ("size", "checksum")


class BakeError(InputError):
    """A bake folder or file is missing, incomplete, modified or of another format."""


def bake_folder_of(run_folder: Path) -> Path:
    """The bake folder of a run (the folder holding its config.yml)."""
    return Path(run_folder) / BAKE_FOLDER


def find_bake(bake: Path | None, load_config: Path | None) -> Path:
    """The complete bake a command is pointed at: ``bake``, or the one of the run of ``load_config``."""
    if (bake is None) == (load_config is None):
        raise InputError("give exactly one of --bake DIR and --load-config CONFIG")
    folder = Path(bake) if bake is not None else bake_folder_of(Path(load_config).parent)
    if not (folder / MANIFEST).is_file():
        hint = f"fourk4d-bake --load-config {load_config}" if load_config is not None else "fourk4d-bake"
        raise BakeError(f"{folder}: no baked sequence there; run {hint} first")
    return folder


@dataclass
class BakedFrame:
    """Everything the fused renderer needs for one frame."""

    xyz: Tensor
    """[N, 3] final positions (after the deformation)."""
    radius: Tensor
    """[N] world radii."""
    density: Tensor
    """[N] opacity scales in (0, 1)."""
    sh: Tensor
    """[N, 3, (d+1)^2] SH coefficients of the color residual, degree d in 0..3."""
    ibr: Tensor
    """[C, N, 4] per baked camera and point: IBR color (rgb) and blend logit."""

    @property
    def num_points(self) -> int:
        return int(self.xyz.shape[0])

    @property
    def num_cameras(self) -> int:
        return int(self.ibr.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors().values())

    def tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in TENSOR_NAMES}

    def to(self, device=None, dtype: torch.dtype | None = None, non_blocking: bool = False) -> BakedFrame:
        return BakedFrame(
            **{k: v.to(device=device, dtype=dtype, non_blocking=non_blocking) for k, v in self.tensors().items()}
        )

    def check(self, where: str = "baked frame", sh_degree: int | None = None) -> None:
        """Raises BakeError unless the shapes agree with each other and ``sh`` holds the coefficients
        of ``sh_degree`` (None: of any degree in SH_DEGREES)."""
        n = self.num_points
        expected = {"xyz": (n, 3), "radius": (n,), "density": (n,), "ibr": (self.num_cameras, n, 4)}
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise BakeError(f"{where}: tensor {name!r} has shape {got}, expected {shape}")
        counts = [sh_coefficients(d) for d in (SH_DEGREES if sh_degree is None else (sh_degree,))]
        got = tuple(self.sh.shape)
        if got not in [(n, 3, count) for count in counts]:
            of_degree = "" if sh_degree is None else f" (SH degree {sh_degree})"
            raise BakeError(
                f"{where}: tensor 'sh' has shape {got}, expected ({n}, 3, {' or '.join(map(str, counts))}){of_degree}"
            )


@dataclass
class BakedCamera:
    """A camera of the capture (OpenCV: x_cam = R x + T)."""

    name: str
    K: list[list[float]]
    R: list[list[float]]
    T: list[float]
    height: int
    width: int
    baked: bool
    """Whether its colors are baked (a training camera); held-out cameras are listed for views only."""


@dataclass
class BakeManifest:
    """What ``manifest.json`` records."""

    frame_names: list[str]
    cameras: list[BakedCamera]
    bounds: list[list[float]]
    """[2, 3] scene bounds (lower, upper)."""
    sh_weight: float
    sh_degree: int
    """Degree of the SH coefficients ``sh`` of every frame (0 to 3)."""
    layers: int
    near: float
    num_sources: int
    fps: float
    """Capture frame rate, for playback."""
    frames: list[dict] = field(default_factory=list)
    """Per frame: file, points, bytes, sha256."""
    dtype: str = "float16"
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    @property
    def num_frames(self) -> int:
        return len(self.frame_names)

    def baked_cameras(self) -> list[BakedCamera]:
        """The cameras whose colors are in ``ibr``, in that order."""
        return [c for c in self.cameras if c.baked]

    def camera_named(self, name: str) -> BakedCamera:
        """The camera called ``name`` (held-out ones included); ValueError listing the names otherwise."""
        for camera in self.cameras:
            if camera.name == name:
                return camera
        names = ", ".join(c.name for c in self.cameras)
        raise InputError(f"no camera named {name!r} in the bake; cameras: {names}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, where: str) -> BakeManifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BakeError(f"{where}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise BakeError(f"{where}: not a {FORMAT_NAME} manifest")
        if data.get("version") != FORMAT_VERSION:
            raise BakeError(
                f"{where}: format version {data.get('version')} (this build reads {FORMAT_VERSION}); bake again"
            )
        try:
            data["cameras"] = [BakedCamera(**c) for c in data["cameras"]]
            manifest = cls(**data)
        except (KeyError, TypeError) as exc:
            raise BakeError(f"{where}: malformed manifest ({exc})") from None
        for i, record in enumerate(manifest.frames):
            if not _valid_frame_record(record):
                raise BakeError(f"{where}: malformed frame record {i}: {record!r}")
        if type(manifest.sh_degree) is not int or manifest.sh_degree not in SH_DEGREES:
            raise BakeError(f"{where}: malformed manifest (sh_degree {manifest.sh_degree!r}, not one of {SH_DEGREES})")
        if len(manifest.frames) != manifest.num_frames:
            raise BakeError(f"{where}: lists {len(manifest.frames)} frame files for {manifest.num_frames} frames")
        if not manifest.baked_cameras():
            raise BakeError(f"{where}: no baked camera")
        return manifest


def _valid_frame_record(record) -> bool:
    """A frame record names a file inside the bake folder and gives its points, bytes and SHA-256."""
    return (
        isinstance(record, dict)
        and isinstance(record.get("file"), str)
        and Path(record["file"]).name == record["file"]
        and record["file"] not in ("", ".", "..")
        and isinstance(record.get("points"), int)
        and isinstance(record.get("bytes"), int)
        and isinstance(record.get("sha256"), str)
    )


def frame_file_name(frame: int) -> str:
    return f"frame_{frame:06d}.safetensors"


def write_bake(
    folder: Path, manifest: BakeManifest, frames: Iterable[BakedFrame], progress: Callable[[int], None] | None = None
) -> Path:
    """Writes every frame (converted to ``manifest.dtype``) and then the manifest, into a staging
    folder that replaces ``folder`` when complete. ``frames`` may be a generator (one frame in
    memory at a time). Returns ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    dtype = getattr(torch, manifest.dtype)
    staging = staging_folder(folder)
    try:
        records = []
        for index, frame in enumerate(frames):
            frame.check(f"frame {index}", manifest.sh_degree)
            path = staging / frame_file_name(index)
            tensors = {k: v.detach().to(device="cpu", dtype=dtype).contiguous() for k, v in frame.tensors().items()}
            save_file(tensors, str(path), metadata={"format": FORMAT_NAME, "frame": str(index)})
            records.append(
                {"file": path.name, "points": frame.num_points, "bytes": path.stat().st_size, "sha256": _sha256(path)}
            )
            if progress is not None:
                progress(index)
        if len(records) != manifest.num_frames:
            raise ValueError(f"got {len(records)} frames for a manifest of {manifest.num_frames}")
        manifest.frames = records
        atomic_write_bytes(staging / MANIFEST, manifest.to_json().encode())
        replace_folder(staging, folder)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: Path) -> BakeManifest:
    """The manifest of a bake folder; BakeError when missing or malformed, or when a frame file is
    missing or has the wrong size (truncated or replaced)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise BakeError(f"{path}: missing; {folder} is not a complete bake (run fourk4d-bake)")
    manifest = BakeManifest.from_json(path.read_text(), str(path))
    for record in manifest.frames:
        check_frame_size(folder, record)
    return manifest


def check_frame_size(folder: Path, record: dict) -> Path:
    path = Path(folder) / record["file"]
    if not path.is_file():
        raise BakeError(f"{path}: frame file missing")
    size = os.path.getsize(path)
    if size != record["bytes"]:
        raise BakeError(
            f"{path}: {size} bytes, the manifest says {record['bytes']} (truncated or replaced); bake again"
        )
    return path


def read_frame(folder: Path, manifest: BakeManifest, frame: int, verify: str = "checksum") -> BakedFrame:
    """Loads one frame (CPU tensors in the stored dtype), checking it as ``verify`` says."""
    from safetensors import SafetensorError
    from safetensors.torch import load, load_file

    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}, got {verify!r}")
    if not 0 <= frame < manifest.num_frames:
        raise IndexError(f"frame {frame} out of range (the bake has {manifest.num_frames} frames)")
    record = manifest.frames[frame]
    path = check_frame_size(folder, record)
    try:
        if verify == "checksum":
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != record["sha256"]:
                raise BakeError(f"{path}: SHA-256 differs from the manifest (the file was modified); bake again")
            tensors = load(data)
        else:
            tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise BakeError(f"{path}: unreadable ({exc})") from None
    missing = [name for name in TENSOR_NAMES if name not in tensors]
    if missing:
        raise BakeError(f"{path}: tensors {missing} missing")
    baked = BakedFrame(**{name: tensors[name] for name in TENSOR_NAMES})
    baked.check(str(path), manifest.sh_degree)
    if baked.num_points != record["points"] or baked.num_cameras != len(manifest.baked_cameras()):
        raise BakeError(
            f"{path}: {baked.num_points} points x {baked.num_cameras} cameras, the manifest says "
            f"{record['points']} x {len(manifest.baked_cameras())}"
        )
    return baked
