"""The capture doctor behind ``fourk4d-check``: is a capture ready for training?

It reads the capture through the ``easymocap-data`` options (the views ``ns-train`` would get, held-out
cameras included), decodes every image and mask file, measures each mask's coverage, compares every
camera's masks with the visual hull of the other cameras (``carving.consistency``), and draws the rig.
Problems a user must fix before training are errors; oddities training survives are warnings.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dataparsers.easymocap import EasyMocapDataParserConfig
from dataparsers.easymocap_cameras import camera_files
from dataparsers.easymocap_layout import MASKS_LOOKED_FOR, CaptureLayout
from fourk4d_ns.carving.consistency import ConsistencySettings, check_consistency
from fourk4d_ns.carving.visual_hull import CameraSet, mask_distance
from fourk4d_ns.core.camera import scale_intrinsics, viewing_bounds
from fourk4d_ns.integration.rig_picture import RigDrawing, draw_rig
from fourk4d_ns.io import CAPTURE_CACHE_FOLDER
from fourk4d_ns.io.atomic import atomic_write_bytes
from fourk4d_ns.io.errors import CaptureError
from fourk4d_ns.io.images import mask_convention, read_image, read_mask, resize_mask, scaled_size
from fourk4d_ns.io.progress import progress_bar

FULL_COVERAGE = 0.99
"""A mask with at least this fraction of foreground pixels is reported as full."""
PICTURE = f"{CAPTURE_CACHE_FOLDER}/check/rig.png"
"""Where the rig's picture goes inside the capture unless told otherwise."""


@dataclass
class FileProblem:
    """A file training could not use."""

    path: str
    """The file."""
    problem: str
    """What is wrong with it."""


@dataclass
class CameraCheck:
    """What the check found for one camera."""

    name: str
    """Camera name."""
    held_out: bool
    """Held out for evaluation (not trained on)."""
    width: int
    """Image width (the camera files' ``W_``, else the most common decoded width; 0: no decodable image)."""
    height: int
    """Image height."""
    distortion: list[float]
    """OpenCV distortion (k1, k2, p1, p2, k3)."""
    coverage: list[float | None]
    """Per selected frame, the fraction of foreground pixels of the mask (None: no usable mask)."""
    empty_frames: list[str] = field(default_factory=list)
    """Frames whose mask holds no foreground."""
    full_frames: list[str] = field(default_factory=list)
    """Frames whose mask is (nearly) all foreground."""
    iou: float | None = None
    """Mean IoU of the camera's masks with the silhouette of the hull carved from the other cameras."""
    covered: float | None = None
    """Mean fraction of the camera's masks inside that silhouette."""
    flagged: bool = False
    """The other cameras' hull covers far less of its masks than it covers of the others'."""


@dataclass
class CaptureCheck:
    """The whole report (``fourk4d-check --json`` writes it as JSON)."""

    scene: str
    """The capture folder."""
    camera_files: list[str]
    """``intri.yml`` and ``extri.yml`` as read."""
    images: str
    """The image folder."""
    masks: str | None
    """The mask folder, if any."""
    mask_convention: str
    """How mask values are read."""
    frames: list[str]
    """Selected frames."""
    cameras: list[CameraCheck]
    """Selected cameras, training and held-out."""
    files_decoded: int = 0
    """Image and mask files decoded."""
    unreadable: list[FileProblem] = field(default_factory=list)
    """Every file that does not decode completely."""
    wrong_size: list[FileProblem] = field(default_factory=list)
    """Every file whose size differs from its camera's."""
    consistency_frames: list[str] = field(default_factory=list)
    """Frames of the leave-one-out silhouette check."""
    median_covered: float | None = None
    """Median over the cameras of ``CameraCheck.covered``."""
    flag_ratio: float | None = None
    """Cameras whose ``covered`` lies below this fraction of the median are flagged."""
    excluded: list[str] = field(default_factory=list)
    """Cameras left out of the hulls the others are compared with (found bad)."""
    bounds: list[list[float]] | None = None
    """Bounds [[x, y, z] min, max] of the hull's voxel centers over the checked frames."""
    picture: str | None = None
    """The rig's picture."""
    errors: list[str] = field(default_factory=list)
    """Problems to fix before training."""
    warnings: list[str] = field(default_factory=list)
    """Oddities training survives."""
    seconds: float = 0.0
    """Time the check took."""

    @property
    def passed(self) -> bool:
        return not self.errors

    def write_json(self, path: Path) -> None:
        """Writes the report as JSON (with ``passed``), atomically."""
        content = {"passed": self.passed, **dataclasses.asdict(self)}
        atomic_write_bytes(Path(path), json.dumps(content, indent=1).encode())


@dataclass
class DecodedFile:
    """What decoding one file found."""

    height: int = 0
    """Image height in pixels (0 when the file cannot be decoded)."""
    width: int = 0
    """Image width in pixels."""
    problem: str | None = None
    """Why the file cannot be decoded; None when it can."""
    coverage: float | None = None
    """Masks only: the fraction of foreground pixels."""


def mask_reader(layout: CaptureLayout) -> tuple[Callable[[Path], np.ndarray], str]:
    """How this capture's masks are read (path -> boolean foreground) and that convention in words, as
    training reads them (``io.images.mask_convention`` of the mask folder); damaged files are left out
    of the decision (the decoding pass lists them)."""
    candidates = [] if layout.mask_paths is None else [p for per_camera in layout.mask_paths for p in per_camera]
    while candidates:
        try:
            convention = mask_convention(candidates)
        except CaptureError as err:
            candidates = [p for p in candidates if p != err.path]
            continue
        return functools.partial(read_mask, convention=convention), convention.name
    return read_mask, "no readable mask"


def _decode(path: Path, read: Callable[[Path], np.ndarray]) -> DecodedFile:
    """What reading one file with the project's strict reader (``read``) finds; never raises for a bad file."""
    try:
        pixels = read(path)
    except CaptureError as err:
        return DecodedFile(problem=err.problem)
    height, width = pixels.shape[:2]
    return DecodedFile(height, width, None, float(pixels.mean()) if pixels.dtype == bool else None)


def _decode_all(
    layout: CaptureLayout, read: Callable[[Path], np.ndarray], workers: int, progress: bool
) -> tuple[list, list | None]:
    """Every image and mask (read with ``read``) decoded in parallel threads: ``[c][f]`` grids of ``DecodedFile``."""
    jobs = [(path, read_image) for per_camera in layout.image_paths for path in per_camera]
    if layout.mask_paths is not None:
        jobs += [(path, read) for per_camera in layout.mask_paths for path in per_camera]
    results: list[DecodedFile] = []
    with progress_bar("decoding images and masks", len(jobs), enabled=progress) as advance:

        def decode(job: tuple[Path, Callable]) -> DecodedFile:
            decoded = _decode(*job)
            advance()
            return decoded

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(decode, jobs))
    cameras, frames = len(layout.camera_names), layout.num_frames
    grid = [results[c * frames : (c + 1) * frames] for c in range(cameras)]
    masks = None
    if layout.mask_paths is not None:
        offset = cameras * frames
        masks = [results[offset + c * frames : offset + (c + 1) * frames] for c in range(cameras)]
    return grid, masks


def _camera_sizes(layout: CaptureLayout, images: list[list[DecodedFile]]) -> np.ndarray:
    """Per camera (height, width) [C,2]: the camera files' ``H_``/``W_``, else the most common decoded size."""
    sizes = np.zeros((len(images), 2), dtype=np.int64)
    for c, decoded in enumerate(images):
        if layout.rig.height[c] > 0 and layout.rig.width[c] > 0:
            sizes[c] = layout.rig.height[c], layout.rig.width[c]
            continue
        known = Counter((d.height, d.width) for d in decoded if d.problem is None)
        if known:
            sizes[c] = known.most_common(1)[0][0]
    return sizes


def _file_problems(report: CaptureCheck, layout: CaptureLayout, images, masks, sizes: np.ndarray) -> None:
    """Lists every undecodable file and every file whose size is not its camera's."""
    kinds = [("image", layout.image_paths, images)]
    if masks is not None:
        kinds.append(("mask", layout.mask_paths, masks))
    for kind, paths, decoded in kinds:
        for c, name in enumerate(layout.camera_names):
            height, width = (int(x) for x in sizes[c])
            for path, result in zip(paths[c], decoded[c]):
                if result.problem is not None:
                    report.unreadable.append(FileProblem(str(path), result.problem))
                elif (result.height, result.width) != (height, width):
                    problem = f"{kind} is {result.width}x{result.height} (WxH) but camera '{name}' is {width}x{height}"
                    report.wrong_size.append(FileProblem(str(path), problem))
    if report.unreadable:
        report.errors.append(f"{len(report.unreadable)} files do not decode completely")
    if report.wrong_size:
        report.errors.append(f"{len(report.wrong_size)} files differ in size from their camera")


def _usable(mask: DecodedFile, size: np.ndarray) -> bool:
    return mask.problem is None and (mask.height, mask.width) == tuple(int(x) for x in size)


def _coverage(report: CaptureCheck, masks: list[list[DecodedFile]], sizes: np.ndarray) -> None:
    """Per camera and frame the masks' coverage; empty and full masks are warnings, a camera or a
    frame without any foreground an error."""
    frames = report.frames
    for c, camera in enumerate(report.cameras):
        camera.coverage = [m.coverage if _usable(m, sizes[c]) else None for m in masks[c]]
        camera.empty_frames = [f for f, x in zip(frames, camera.coverage) if x == 0]
        camera.full_frames = [f for f, x in zip(frames, camera.coverage) if x is not None and x >= FULL_COVERAGE]
        known = [x for x in camera.coverage if x is not None]
        if known and not any(known):
            report.errors.append(f"camera '{camera.name}': every mask is empty")
        elif camera.empty_frames:
            report.warnings.append(f"camera '{camera.name}': empty masks in frames {_some(camera.empty_frames)}")
        if camera.full_frames:
            report.warnings.append(
                f"camera '{camera.name}': masks at least {FULL_COVERAGE:.0%} foreground in frames "
                f"{_some(camera.full_frames)}"
            )
    for f, frame in enumerate(frames):
        known = [camera.coverage[f] for camera in report.cameras if camera.coverage[f] is not None]
        if known and not any(known):
            report.errors.append(f"frame {frame}: every camera's mask is empty")


def _some(names: list[str], shown: int = 8) -> str:
    """A list of names, shortened with a count when long."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _consistency(
    report: CaptureCheck,
    layout: CaptureLayout,
    read: Callable[[Path], np.ndarray],
    sizes: np.ndarray,
    settings: ConsistencySettings,
    workers: int,
    progress: bool,
) -> list[np.ndarray]:
    """The leave-one-out silhouette check on a few frames; returns the hulls it carved."""
    rig = layout.rig
    factors = np.maximum(1.0, sizes.max(axis=1) / settings.silhouette_size)
    small = np.array([scaled_size(int(h), int(w), f) for (h, w), f in zip(sizes, factors)])
    known = sizes[:, 0] > 0
    if known.sum() < 3:
        report.warnings.append("fewer than 3 cameras with readable images: silhouettes not compared")
        return []
    safe = np.where(known[:, None], sizes, 1)  # cameras without any size take part in nothing
    K = scale_intrinsics(rig.K, small[:, 1] / safe[:, 1], small[:, 0] / safe[:, 0])
    cameras = CameraSet(*(torch.from_numpy(np.asarray(a)).float() for a in (K, rig.R, rig.T, rig.dist)))
    search = torch.from_numpy(viewing_bounds(K[known], rig.R[known], rig.T[known], small[known, 0], small[known, 1]))

    chosen = sorted({int(i) for i in np.linspace(0, layout.num_frames - 1, max(settings.frames, 1)).round()})
    frames = []
    for f in chosen:
        masks: list[np.ndarray | None] = []
        for c, camera in enumerate(report.cameras):
            if camera.coverage[f] is None or not camera.coverage[f]:
                masks.append(None)  # unreadable, wrong size or empty
                continue
            masks.append(resize_mask(read(layout.mask_paths[c][f]), tuple(small[c])) > 0)
        frames.append((masks, [None if m is None else mask_distance(torch.from_numpy(m)) for m in masks]))
    result = check_consistency(frames, cameras, search.float(), settings, workers, progress)

    report.consistency_frames = [layout.frame_names[f] for f in chosen]
    report.median_covered = result.median_covered
    report.excluded = [layout.camera_names[c] for c in result.excluded]
    for c, camera in enumerate(report.cameras):
        camera.iou, camera.covered, camera.flagged = result.ious[c], result.covered[c], result.flagged[c]
        if camera.flagged:
            report.errors.append(
                f"camera '{camera.name}': the other cameras' hull covers {camera.covered:.0%} of its masks "
                f"(median {result.median_covered:.0%}): likely miscalibrated or mis-synchronised"
            )
    unmeasured = [camera.name for camera in report.cameras if camera.covered is None]
    if unmeasured:
        report.warnings.append(f"cameras {_some(unmeasured)}: no usable mask in the checked frames")
    hulls = [h for h in result.hulls if len(h)]
    if hulls:
        points = np.concatenate(hulls)
        report.bounds = [points.min(axis=0).tolist(), points.max(axis=0).tolist()]
    else:
        report.errors.append("the hull of all cameras is empty in every checked frame: check masks and camera files")
    return hulls


def check_capture(
    capture: EasyMocapDataParserConfig,
    settings: ConsistencySettings | None = None,
    picture: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> CaptureCheck:
    """Checks a capture (the cameras and frames ``capture`` selects) and draws its rig to ``picture``
    (default: ``<scene>/fourk4d/check/rig.png``). Bad camera files or options raise ``CaptureError``."""
    start = time.perf_counter()
    settings = settings or ConsistencySettings()
    parser = capture.setup()
    layout = parser.layout(check_sizes=False)
    _, held_out = parser.split_cameras()
    rig = layout.rig
    read, convention = mask_reader(layout)
    report = CaptureCheck(
        scene=str(layout.scene),
        camera_files=[str(p) for p in camera_files(layout.scene)],
        images=str(layout.image_paths[0][0].parent.parent),
        masks=None if layout.mask_paths is None else str(layout.mask_paths[0][0].parent.parent),
        mask_convention=convention,
        flag_ratio=settings.flag_ratio,
        frames=list(layout.frame_names),
        cameras=[
            CameraCheck(name, c in held_out, 0, 0, rig.dist[c].tolist(), [None] * layout.num_frames)
            for c, name in enumerate(layout.camera_names)
        ],
    )
    workers = workers or os.cpu_count() or 1
    images, masks = _decode_all(layout, read, workers, progress)
    report.files_decoded = sum(map(len, images)) + (sum(map(len, masks)) if masks is not None else 0)
    sizes = _camera_sizes(layout, images)
    for camera, (height, width) in zip(report.cameras, sizes):
        camera.height, camera.width = int(height), int(width)
    _file_problems(report, layout, images, masks, sizes)

    hulls: list[np.ndarray] = []
    if masks is None:
        report.errors.append(f"no mask folder (looked for {MASKS_LOOKED_FOR}): fourk4d needs masks")
    else:
        _coverage(report, masks, sizes)
        hulls = _consistency(report, layout, read, sizes, settings, workers, progress)

    roles = ["flagged" if c.flagged else "held-out" if c.held_out else "train" for c in report.cameras]
    drawing = RigDrawing(
        names=layout.camera_names,
        K=rig.K,
        R=rig.R,
        T=rig.T,
        height=np.where(sizes[:, 0] > 0, sizes[:, 0], 2 * rig.K[:, 1, 2]),
        width=np.where(sizes[:, 1] > 0, sizes[:, 1], 2 * rig.K[:, 0, 2]),
        roles=roles,
        bounds=None if report.bounds is None else np.asarray(report.bounds),
        points=np.concatenate(hulls) if hulls else None,
        title=f"{layout.scene.name}: {len(roles)} cameras, {roles.count('flagged')} flagged",
    )
    report.picture = str(draw_rig(drawing, Path(picture) if picture else layout.scene / PICTURE))
    report.seconds = time.perf_counter() - start
    return report
