"""``easymocap-data``: a nerfstudio dataparser for multi-view captures in the EasyMocap layout.

One nerfstudio camera per (camera, frame) image, ordered frame by frame. Training cameras form the
"train" split; held-out cameras form "val" and "test" (the same images). Coordinates are kept in
the capture's own world frame and units (no re-centering or scaling), so carved hulls, bounds and
camera files all agree.

A capture stored as videos (``videos*/<cam>.mp4``, masks in ``videos_masks*/`` or ``masks/``) is
decoded once into ``<data>/fourk4d/frames/`` and read from there; if its videos differ in length,
every camera's first N frames are used (N = the shortest video's length) with a warning.

Imports only nerfstudio's base dataparser, cameras and scene box (see the circular-import note in
the project docs): the method configs import this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from nerfstudio.cameras import camera_utils
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.utils.rich_utils import CONSOLE

from dataparsers.easymocap_cameras import CameraRig, camera_files
from dataparsers.easymocap_layout import MASK_FOLDERS, CaptureLayout, eval_camera_names, read_layout
from dataparsers.easymocap_resize import prepare_files
from dataparsers.splits import cameras_of_split, split_camera_indices
from fourk4d_ns.carving.capture import read_carved_bounds
from fourk4d_ns.core.camera import opencv_to_opengl, scale_intrinsics
from fourk4d_ns.core.timeline import frame_time
from fourk4d_ns.io.errors import CaptureError, InputError
from fourk4d_ns.io.images import color_curves_problem, scaled_size


@dataclass
class EasyMocapDataParserConfig(DataParserConfig):
    """Reads ``images_calib/`` or ``images/`` (or ``videos*/``), a mask folder (``masks/``, ``mask/``, ``msk/``,
    ``schp/``, ``bgmtv2/``, ``rvm/`` or ``videos_masks*/``, in any of the public captures' encodings),
    ``intri.yml`` and ``extri.yml`` of an EasyMocap capture. Videos of different lengths: the first N
    frames of every camera are used, N being the shortest video's length, with a warning."""

    _target: type = field(default_factory=lambda: EasyMocapDataParser)
    data: Path = Path("data/demo")
    """Capture folder."""
    images_dir: str | None = None
    """Image folder (or folder of per-camera videos) name; None: images_calib/, images/, else videos/, videos*/."""
    masks_dir: str | None = None
    """Mask folder (or video folder) name; None: masks/, mask/, msk/, schp/, bgmtv2/, rvm/, else videos_masks*/."""
    apply_color_correction: bool = False
    """Apply the cameras' ccm_ (DNA-Rendering's per-channel color curves) to images as they are decoded
    (fourk4d only); off: images are used as stored (images_calib/ and 4K4D's videos are corrected already)."""
    frame_format: Literal["jpg", "png"] = "jpg"
    """Format of frames decoded from videos into <data>/fourk4d/frames/: jpg (quality 95, smaller) or png (lossless)."""
    cameras: tuple[str, ...] | None = None
    """Explicit camera names to use; None: camera_start/stop/step over the sorted names."""
    camera_start: int = 0
    """First camera index (sorted names)."""
    camera_stop: int | None = None
    """Camera index to stop before; None: all."""
    camera_step: int = 1
    """Take every this-many-th camera."""
    frames: tuple[int, ...] | None = None
    """Explicit frame indices (positions in the sorted frame list); None: frame_start/stop/step."""
    frame_start: int = 0
    """First frame index."""
    frame_stop: int | None = None
    """Frame index to stop before; None: all."""
    frame_step: int = 1
    """Take every this-many-th frame."""
    eval_cameras: tuple[str, ...] | None = None
    """Held-out cameras; None: the scene's split.json ("test_cameras"), else every eval_camera_interval-th camera."""
    eval_camera_interval: int = 8
    """Without a list or split.json, cameras 0, 8, 16, ... are held out (0: none, then val/test reuse train)."""
    downscale_factor: float = 1.0
    """Shrink images by this factor (area interpolation, cached under <data>/fourk4d/); K is scaled to match."""
    scene_box_margin: float = 0.05
    """Margin added around the scene box on each side, as a fraction of its size."""


@dataclass
class EasyMocapDataParser(DataParser):
    """Builds nerfstudio cameras, file lists and splits from an EasyMocap capture."""

    config: EasyMocapDataParserConfig
    includes_time: bool = True

    def __init__(self, config: EasyMocapDataParserConfig):
        super().__init__(config=config)
        self.includes_time = True
        self._layout: CaptureLayout | None = None

    def layout(self, check_sizes: bool = True) -> CaptureLayout:
        """The capture's validated layout, read once, by the first call (``check_sizes``: see ``read_layout``)."""
        if self._layout is None:
            c = self.config
            self._layout = read_layout(
                c.data,
                images_dir=c.images_dir,
                masks_dir=c.masks_dir,
                cameras=c.cameras,
                camera_range=(c.camera_start, c.camera_stop, c.camera_step),
                frames=c.frames,
                frame_range=(c.frame_start, c.frame_stop, c.frame_step),
                frame_format=c.frame_format,
                check_sizes=check_sizes,
            )
            self._describe(self._layout)
            self._check_color_correction(self._layout)
        return self._layout

    def _describe(self, layout: CaptureLayout) -> None:
        """One line on where images and masks come from and how masks are read."""
        scene = layout.scene
        masks = "none"
        if layout.mask_folder is not None:
            masks = f"{_relative(layout.mask_folder, scene)}/"
            if layout.mask_convention is not None:  # None: the files were not opened (check_sizes=False)
                masks += f" ({layout.mask_convention.name})"
            others = [n for n in MASK_FOLDERS if (scene / n).is_dir() and scene / n != layout.mask_folder]
            if others and self.config.masks_dir is None:
                masks += f"; also there: {', '.join(others)} (--masks-dir to choose)"
        CONSOLE.print(f"easymocap-data: images {_relative(layout.image_folder, scene)}/, masks {masks}")
        if layout.mask_convention is not None and layout.mask_convention.name == "all background":
            CONSOLE.print(f"[yellow]easymocap-data: the sampled masks of {layout.mask_folder} are all background")

    def _check_color_correction(self, layout: CaptureLayout) -> None:
        """Refuse to correct corrected images or to apply curves that are not curves; otherwise note
        when images/ may want the cameras' curves."""
        if self.config.apply_color_correction:
            if layout.image_folder.name.startswith("images_calib"):
                raise InputError(
                    f"--apply-color-correction with {layout.image_folder}: those images are color-corrected "
                    "already; correcting them again would distort their colors"
                )
            if not layout.rig.has_color_curves:
                CONSOLE.print("easymocap-data: --apply-color-correction: no camera carries a ccm_; nothing to apply")
            for i, curves in enumerate(layout.rig.color_curves if layout.rig.has_color_curves else []):
                problem = color_curves_problem(curves)
                if problem is not None:
                    raise CaptureError(
                        camera_files(layout.scene)[0],
                        f"`ccm_{layout.camera_names[i]}` is not a set of per-channel color curves: {problem}; "
                        "leave --apply-color-correction off to use the images as stored",
                    )
        elif layout.rig.has_color_curves and layout.image_folder.name == "images":
            CONSOLE.print(
                "easymocap-data: the cameras carry ccm_ color curves and the images come from images/; if those "
                "are not color-corrected (no images_calib/), --apply-color-correction applies the curves"
            )

    def split_cameras(self) -> tuple[list[int], list[int]]:
        """Indices (into the selected cameras) of the training and the held-out cameras."""
        layout = self.layout()
        names = layout.camera_names
        held_out = eval_camera_names(
            self.config.data,
            names,
            self.config.eval_cameras,
            self.config.eval_camera_interval,
            layout.capture_camera_names,
        )
        return split_camera_indices(names, held_out, self.config.data)

    def _corrects_colors(self) -> bool:
        return self.config.apply_color_correction and self.layout().rig.has_color_curves

    def scene_bounds(self) -> tuple[np.ndarray, str]:
        """The scene box [2,3] and where it came from: the carved hull if present, else the cameras."""
        carved = read_carved_bounds(self.config.data)
        if carved is not None:
            return carved, "carved visual hull"
        return self.layout().rig.viewing_bounds(), "camera layout"

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        layout = self.layout()
        train, evaluation = self.split_cameras()
        chosen = cameras_of_split(split, train, evaluation, self.config.data)

        image_paths, mask_paths = prepare_files(layout, self.config.downscale_factor)
        num_frames = layout.num_frames
        pairs = [(f, c) for f in range(num_frames) for c in chosen]  # frame by frame
        cameras = to_nerfstudio_cameras(
            layout.rig, self.config.downscale_factor, [c for _, c in pairs], [f for f, _ in pairs], num_frames
        )

        lower, upper = self.scene_bounds()[0]
        margin = self.config.scene_box_margin * (upper - lower)
        scene_box = SceneBox(aabb=torch.tensor(np.stack([lower - margin, upper + margin]), dtype=torch.float32))
        metadata = {
            "camera_names": layout.camera_names,
            "frame_names": layout.frame_names,
            "num_frames": num_frames,
            "train_cameras": train,
            "eval_cameras": evaluation,
            "scene_dir": Path(self.config.data),
            # per selected camera, for fourk4d's image decoding; None: images are used as stored
            "color_curves": layout.rig.color_curves if self._corrects_colors() else None,
        }
        return DataparserOutputs(
            image_filenames=[image_paths[c][f] for f, c in pairs],
            cameras=cameras,
            scene_box=scene_box,
            mask_filenames=None if mask_paths is None else [mask_paths[c][f] for f, c in pairs],
            metadata=metadata,
        )


def _relative(folder: Path, scene: Path) -> str:
    try:
        return folder.relative_to(scene).as_posix()
    except ValueError:
        return str(folder)


def to_nerfstudio_cameras(
    rig: CameraRig, downscale_factor: float, camera_indices: list[int], frame_indices: list[int], num_frames: int
) -> Cameras:
    """One nerfstudio camera per (camera, frame) pair: OpenCV world-to-camera to OpenGL camera-to-world,
    K scaled to the downscaled size, OpenCV distortion in nerfstudio's order, time from the frame."""
    idx = np.asarray(camera_indices, dtype=np.int64)
    c2w = opencv_to_opengl(rig.R[idx], rig.T[idx])
    sizes = np.array([scaled_size(int(rig.height[i]), int(rig.width[i]), downscale_factor) for i in idx])
    K = scale_intrinsics(rig.K[idx], sizes[:, 1] / rig.width[idx], sizes[:, 0] / rig.height[idx])
    distortion = torch.stack(
        [camera_utils.get_distortion_params(k1=d[0], k2=d[1], k3=d[4], p1=d[2], p2=d[3]) for d in rig.dist[idx]]
    )

    def column(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.float32).reshape(-1, 1)

    frames = torch.as_tensor(frame_indices, dtype=torch.long).reshape(-1, 1)
    return Cameras(
        camera_to_worlds=torch.as_tensor(c2w, dtype=torch.float32),
        fx=column(K[:, 0, 0]),
        fy=column(K[:, 1, 1]),
        cx=column(K[:, 0, 2]),
        cy=column(K[:, 1, 2]),
        width=torch.as_tensor(sizes[:, 1], dtype=torch.long).reshape(-1, 1),
        height=torch.as_tensor(sizes[:, 0], dtype=torch.long).reshape(-1, 1),
        distortion_params=distortion.float(),
        camera_type=CameraType.PERSPECTIVE,
        times=frame_time(frames.float(), num_frames),
        metadata={"camera_index": torch.as_tensor(idx).reshape(-1, 1), "frame_index": frames},
    )
