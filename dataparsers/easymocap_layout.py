"""The EasyMocap capture layout on disk: which cameras, frames, images and masks a scene has.

Plain NumPy/OpenCV/Pillow code (no nerfstudio import), shared by the nerfstudio dataparser,
``fourk4d-orbit-path`` and tests. Every problem found is raised as ``CaptureError`` naming the
file or folder at fault.

Checked up front: the camera files (``read_cameras``), that the selected cameras look at the scene,
every image's and mask's header and end (a truncated file is found here, in about a second for
9,000 files), sizes, and the masks' convention from a sample of them. Image data is decoded, strictly,
only when read: decoding every image of a 60-camera x 150-frame 2K capture takes minutes (the
capture check command does it and lists every failure).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataparsers.easymocap_cameras import CameraRig, camera_files, check_cameras_look_at_scene, read_cameras
from dataparsers.easymocap_videos import decode_capture_videos, find_video_folder
from dataparsers.video_cache import FrameFormat
from fourk4d_ns.io import CAPTURE_CACHE_FOLDER
from fourk4d_ns.io.errors import CaptureError, InputError
from fourk4d_ns.io.images import ImageHeader, MaskConvention, mask_convention, read_image_header

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_FOLDERS = ("images_calib", "images")
"""Image folders looked for, in this order: DNA-Rendering's color-corrected ``images_calib/`` (what
4K4D trains on) before ``images/``."""
MASK_FOLDERS = ("masks", "mask", "msk", "schp", "bgmtv2", "rvm")
"""Mask folders looked for, in this order: binary masks, then human-parsing label maps (SCHP), then
mattes (BackgroundMattingV2, Robust Video Matting)."""
MASKS_LOOKED_FOR = ", ".join(f"{folder}/" for folder in MASK_FOLDERS) + " and videos_masks*/"
"""Where masks are looked for, as error messages list it."""


def no_masks_error(scene: Path) -> CaptureError:
    """The error of a capture without masks, for what needs them (fourk4d's carving and training)."""
    return CaptureError(
        scene,
        f"fourk4d needs a foreground mask for every image; looked for {MASKS_LOOKED_FOR} "
        "and found none (--masks-dir names another folder)",
    )


SPLIT_FILE = "split.json"
FRAMES_FOLDER = f"{CAPTURE_CACHE_FOLDER}/frames"
"""Where frames decoded from a video capture go (``images/<cam>/``, ``masks/<cam>/``)."""


@dataclass
class CaptureLayout:
    """A capture's selected cameras and frames, with the image and mask file of every pair."""

    scene: Path
    """The capture folder."""
    rig: CameraRig
    """Selected cameras, sorted by name, with image sizes filled in from the images."""
    frame_names: list[str]
    """Selected frame names (file stems), sorted as in the folder."""
    frame_indices: list[int]
    """Positions of the selected frames in the capture's full sorted frame list."""
    image_paths: list[list[Path]]
    """``image_paths[c][f]``: image of camera c at selected frame f."""
    mask_paths: list[list[Path]] | None
    """``mask_paths[c][f]``, or None when the capture has no mask folder."""
    capture_camera_names: list[str]
    """Every camera of the camera files, selected or not."""
    image_folder: Path
    """The folder the images come from (``images_calib/``, ``images/``, or decoded videos)."""
    mask_folder: Path | None
    """The folder the masks come from, or None."""
    mask_convention: MaskConvention | None
    """How the mask files mark the foreground (``fourk4d_ns.io.images.mask_convention``), or None."""
    masks_are_plain: bool
    """Every mask file is an 8-bit single-channel PNG holding 0/255, so that readers that take any
    non-zero value (nerfstudio) or values above 127 as foreground agree on it."""

    @property
    def camera_names(self) -> list[str]:
        return self.rig.names

    @property
    def num_frames(self) -> int:
        return len(self.frame_names)

    @property
    def cache_dir(self) -> Path:
        return self.scene / CAPTURE_CACHE_FOLDER


def _image_files(folder: Path) -> dict[str, Path]:
    """Image files of one folder keyed by stem (``.jpg/.jpeg/.png`` in any case)."""
    files: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            if entry.stem in files:
                raise CaptureError(entry, f"two images share the frame name '{entry.stem}' ({files[entry.stem].name})")
            files[entry.stem] = entry
    return files


def find_folder(scene: Path, requested: str | None, candidates: Sequence[str], what: str) -> Path | None:
    """The requested sub-folder (must exist) or the first existing one of ``candidates``."""
    if requested is not None:
        folder = scene / requested
        if not folder.is_dir():
            raise CaptureError(folder, f"{what} folder not found")
        return folder
    for name in candidates:
        if (scene / name).is_dir():
            return scene / name
    return None


def select_indices(
    count: int, explicit: Sequence[int] | None, start: int, stop: int | None, step: int, what: str, scene: Path
) -> list[int]:
    """Indices chosen either explicitly or as ``range(start, stop, step)`` over ``count`` items."""
    if explicit is not None:
        bad = [i for i in explicit if not -count <= i < count]
        if bad:
            raise CaptureError(scene, f"{what} indices {bad} out of range: the capture has {count} {what}s")
        chosen = [i % count for i in explicit]
    else:
        if step < 1:
            raise CaptureError(scene, f"{what} step must be at least 1, got {step}")
        chosen = list(range(count))[start:stop:step]
    if not chosen:
        raise CaptureError(scene, f"the {what} selection is empty (the capture has {count} {what}s)")
    return chosen


def _check_sizes(
    paths: list[list[Path]], names: Sequence[str], expected: np.ndarray, what: str, source: str
) -> tuple[np.ndarray, list[ImageHeader]]:
    """Read every header (checking that each file is complete); every file of a camera must have its
    expected size [C,2] (height, width; 0 where unknown: the camera's first file then sets it).
    ``source`` says where expected sizes come from ("{camera}" and "{size}" are replaced). Returns
    [C,2] and the headers."""
    flat = [p for per_camera in paths for p in per_camera]
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) * 4)) as pool:
        headers = list(pool.map(read_image_header, flat))
    result = np.zeros((len(paths), 2), dtype=np.int64)
    position = 0
    for c, per_camera in enumerate(paths):
        camera_headers = headers[position : position + len(per_camera)]
        position += len(per_camera)
        known = bool(np.all(expected[c] > 0))
        first = tuple(expected[c]) if known else (camera_headers[0].height, camera_headers[0].width)
        camera, size = f"camera '{names[c]}'", f"{first[1]}x{first[0]}"
        if known:
            reason = source.format(camera=camera, size=size)
        else:
            reason = f"the first {what} of {camera} ({per_camera[0].name}) is {size}"
        for path, header in zip(per_camera, camera_headers):
            if (header.height, header.width) != first:
                raise CaptureError(path, f"{what} is {header.width}x{header.height} (WxH) but {reason}")
        result[c] = first
    return result, headers


def read_split_cameras(scene: Path, capture_names: Sequence[str]) -> list[str] | None:
    """Held-out camera names from the scene's ``split.json`` (``{"test_cameras": [...]}``), if any.

    Every name in it (``test_cameras`` and, when present, ``train_cameras``) must be a camera of the
    capture: a split written for another capture must not silently hold out nothing.
    """
    path = scene / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text())
        names = content["test_cameras"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CaptureError(path, f"expected JSON with a `test_cameras` list ({err})") from None
    for key in ("test_cameras", "train_cameras"):
        listed = content.get(key, [])
        if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
            raise CaptureError(path, f"`{key}` must be a list of camera names")
        unknown = [n for n in listed if n not in capture_names]
        if unknown:
            raise CaptureError(
                path, f"`{key}` names cameras the capture does not have: {unknown} (it has {', '.join(capture_names)})"
            )
    return names


def eval_camera_names(
    scene: Path, names: Sequence[str], explicit: Sequence[str] | None, interval: int, capture_names: Sequence[str]
) -> list[str]:
    """Held-out cameras among the selected ``names``: the explicit list (``--eval-cameras``), else the
    scene's ``split.json``, else every ``interval``-th camera starting from the first (none when
    ``interval`` is 0). ``capture_names`` are all cameras of the capture.

    A name that is not a camera of the capture is an error. A camera of ``split.json`` that the camera
    selection left out is simply not there; one named by ``--eval-cameras`` is an error (select it too).
    """
    if explicit is not None:
        unknown = [c for c in explicit if c not in capture_names]
        if unknown:
            raise InputError(
                f"--eval-cameras names cameras the capture {scene} does not have: {unknown} "
                f"(it has {', '.join(capture_names)})"
            )
        unselected = [c for c in explicit if c not in names]
        if unselected:
            raise InputError(
                f"--eval-cameras {unselected} are not among the selected cameras ({', '.join(names)}): select them too"
            )
        return [c for c in names if c in explicit]
    from_file = read_split_cameras(scene, capture_names)
    if from_file is not None:
        return [c for c in names if c in from_file]
    if interval <= 0:
        return []
    return [c for i, c in enumerate(names) if i % interval == 0]


def read_layout(
    scene: Path,
    images_dir: str | None = None,
    masks_dir: str | None = None,
    cameras: Sequence[str] | None = None,
    camera_range: tuple[int, int | None, int] = (0, None, 1),
    frames: Sequence[int] | None = None,
    frame_range: tuple[int, int | None, int] = (0, None, 1),
    frame_format: FrameFormat | None = None,
    progress: bool = True,
    check_sizes: bool = True,
) -> CaptureLayout:
    """Read a capture's cameras and file lists, select cameras and frames, and validate everything.

    ``cameras`` are explicit names (else ``camera_range`` = start, stop, step over the sorted names);
    ``frames`` are explicit positions in the sorted frame list (else ``frame_range``).
    A capture with a mask folder must have a mask for every selected image.

    A capture without an image folder but with ``videos*/`` (and maybe ``videos_masks*/``) is decoded
    once into ``FRAMES_FOLDER`` (``frame_format``: see ``decode_videos``; ``progress`` shows a bar) and
    read from there; when its videos differ in length, every camera's first N frames are used, N being
    the shortest video's length (with a warning).

    ``check_sizes=False`` opens no image or mask file (``fourk4d-check`` decodes them all itself); the
    rig then keeps the camera files' ``H_``/``W_``, 0 where absent.
    """
    scene = Path(scene)
    if not scene.is_dir():
        raise CaptureError(scene, "capture folder not found")
    intri_path, extri_path = camera_files(scene)
    rig = read_cameras(intri_path, extri_path)
    capture_names = list(rig.names)

    if cameras is not None:
        unknown = [c for c in cameras if c not in rig.names]
        if unknown:
            raise CaptureError(intri_path, f"selected cameras {unknown} are not in `names`")
        chosen = sorted(rig.names.index(c) for c in cameras)
    else:
        chosen = select_indices(len(rig), None, *camera_range, what="camera", scene=scene)
    rig = rig.select(chosen)
    check_cameras_look_at_scene(rig, extri_path)

    image_root = find_folder(scene, images_dir, IMAGE_FOLDERS, "images") or find_video_folder(scene, masks=False)
    if image_root is None:
        raise CaptureError(
            scene, f"no image folder: expected one of {', '.join(IMAGE_FOLDERS)}/, or videos in videos*/"
        )
    mask_root = find_folder(scene, masks_dir, MASK_FOLDERS, "masks") or find_video_folder(scene, masks=True)
    decoded = decode_capture_videos(scene / FRAMES_FOLDER, image_root, mask_root, rig, frame_format, progress)
    image_root, mask_root = decoded.images, decoded.masks
    per_camera_images = []
    for name in rig.names:
        folder = image_root / name
        if not folder.is_dir():
            raise CaptureError(
                folder, f"images of camera '{name}' not found (the camera is listed in the camera files)"
            )
        files = _image_files(folder)
        if not files:
            raise CaptureError(folder, f"no .jpg/.jpeg/.png images for camera '{name}'")
        if decoded.num_frames is not None:  # decoded videos: the frames every camera has
            files = dict(sorted(files.items())[: decoded.num_frames])
        per_camera_images.append(files)

    all_frames = sorted(per_camera_images[0])
    for name, files in zip(rig.names, per_camera_images):
        if sorted(files) != all_frames:
            missing = sorted(set(all_frames) - set(files))[:5]
            extra = sorted(set(files) - set(all_frames))[:5]
            raise CaptureError(
                image_root / name,
                f"camera '{name}' has different frames from camera '{rig.names[0]}' (missing {missing}, extra {extra})",
            )
    frame_indices = select_indices(len(all_frames), frames, *frame_range, what="frame", scene=scene)
    frame_names = [all_frames[i] for i in frame_indices]
    image_paths = [[files[f] for f in frame_names] for files in per_camera_images]

    mask_paths = None
    if mask_root is not None:
        mask_paths = []
        for name in rig.names:
            folder = mask_root / name
            files = _image_files(folder) if folder.is_dir() else {}
            missing = [f for f in frame_names if f not in files]
            if not files:
                raise CaptureError(folder, f"mask folder of camera '{name}' is missing or empty")
            if missing:
                raise CaptureError(folder, f"no mask for frames {missing[:5]} of camera '{name}'")
            mask_paths.append([files[f] for f in frame_names])

    convention, plain = None, False
    if check_sizes:  # else no file is opened: fourk4d-check reads them all itself and lists every problem
        expected = np.stack([rig.height, rig.width], axis=1)
        sizes, _ = _check_sizes(
            image_paths, rig.names, expected, "image", f"{{camera}} is {{size}} in {intri_path.name} (W_, H_)"
        )
        if mask_paths is not None:
            _, headers = _check_sizes(mask_paths, rig.names, sizes, "mask", "the images of {camera} are {size}")
            convention = mask_convention([p for per_camera in mask_paths for p in per_camera])
            plain = convention.name == "0/255" and all(h.format == "PNG" and h.mode == "L" for h in headers)
        rig.height, rig.width = sizes[:, 0].copy(), sizes[:, 1].copy()
    return CaptureLayout(
        scene=scene,
        rig=rig,
        frame_names=frame_names,
        frame_indices=frame_indices,
        image_paths=image_paths,
        mask_paths=mask_paths,
        capture_camera_names=capture_names,
        image_folder=image_root,
        mask_folder=mask_root,
        mask_convention=convention,
        masks_are_plain=plain,
    )
