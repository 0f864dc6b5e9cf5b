"""``dyn3d-data``: a nerfstudio dataparser for Neural 3D Video (DyNeRF) scenes.

```
<scene>/cam00.mp4 ... <scene>/camNN.mp4      one video per camera (sorted names = rows of poses_bounds)
<scene>/poses_bounds.npy                     LLFF: per camera a 3x5 pose-and-hwf matrix, near, far
```
The videos are decoded once (downscaled as asked) into ``<scene>/fourk4d/frames[_x<factor>]/images/``.
The common protocol is followed: ``cam00`` is held out ("val" and "test"), the other cameras train;
the full frame is used (no masks). If the videos differ in length, every camera's first N frames
are used (N = the shortest video's length) with a warning.

Coordinates: the LLFF world's orientation is kept; it is translated so that the mean camera center
is the origin and scaled so that the nearest bound lies at depth 4/3 (NeRF's LLFF loader does the
same with ``bd_factor=0.75``), unless ``scene_scale`` is given. Near/far (scaled) are in the metadata.

Imports only nerfstudio's base dataparser, cameras and scene box (see the circular-import note in
the project docs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.scene_box import SceneBox

from dataparsers.easymocap_layout import FRAMES_FOLDER, select_indices
from dataparsers.llff_poses import LLFFCameras, read_poses_bounds
from dataparsers.splits import cameras_of_split, split_camera_indices
from dataparsers.video_cache import DecodedVideos, common_frame_count, decode_videos
from dataparsers.video_frames import list_videos
from fourk4d_ns.core.timeline import frame_time
from fourk4d_ns.io.errors import CaptureError

POSES_FILE = "poses_bounds.npy"
NEAR_BOUND_DEPTH = 4.0 / 3.0
"""Depth of the nearest bound after the default scaling (NeRF's LLFF ``bd_factor`` of 0.75)."""


@dataclass
class DyNeRFDataParserConfig(DataParserConfig):
    """Reads a Neural 3D Video (DyNeRF) scene: ``cam*.mp4`` and ``poses_bounds.npy``. Videos of different
    lengths: the first N frames of every camera are used, N being the shortest video's length, with a warning."""

    _target: type = field(default_factory=lambda: DyNeRFDataParser)
    data: Path = Path("data/dynerf/coffee_martini")
    """Scene folder (cam00.mp4 ... and poses_bounds.npy)."""
    downscale_factor: float = 2.0
    """Shrink the decoded frames by this factor (area interpolation); 2 gives the usual 1352x1014 from 2704x2028."""
    frame_start: int = 0
    """First frame index."""
    frame_stop: int | None = None
    """Frame index to stop before; None: all (DyNeRF videos have 300 frames)."""
    frame_step: int = 1
    """Take every this-many-th frame."""
    eval_cameras: tuple[str, ...] = ("cam00",)
    """Held-out cameras (val and test split); the protocol holds out cam00. Empty: none (val, test reuse train)."""
    center_cameras: bool = True
    """Translate the world so that the mean camera center is the origin."""
    scene_scale: float | None = None
    """Multiply world coordinates and bounds by this; None: the nearest bound at depth 4/3 (LLFF's bd_factor 0.75)."""
    frame_format: Literal["jpg", "png"] = "jpg"
    """Format of the decoded frames: jpg (quality 95, smaller) or png (lossless)."""


@dataclass
class DyNeRFScene:
    """A DyNeRF scene's cameras (in nerfstudio's world) and decoded frames."""

    names: list[str]
    """Camera names (video stems, sorted)."""
    cameras: LLFFCameras
    """Cameras after centering and scaling (``camera_to_world`` OpenGL; ``near_far`` scaled)."""
    frames: DecodedVideos
    """Where each camera's frames were decoded."""
    num_frames: int
    """Frames every camera has."""
    offset: np.ndarray
    """[3] translation applied to the LLFF world before scaling."""
    scale: float
    """Scale applied after the translation."""


def frames_folder(factor: float) -> str:
    """Cache folder of decoded frames inside the scene, per downscale factor."""
    return FRAMES_FOLDER if factor == 1 else f"{FRAMES_FOLDER}_x{factor:g}"


def read_dynerf_scene(config: DyNeRFDataParserConfig, progress: bool = True) -> DyNeRFScene:
    """Pair videos with poses, decode the videos (once, with a progress bar), and move the cameras into
    nerfstudio's world."""
    scene = Path(config.data)
    if not scene.is_dir():
        raise CaptureError(scene, "scene folder not found")
    videos = {name: path for name, path in list_videos(scene).items() if name.startswith("cam")}
    if not videos:
        raise CaptureError(scene, "no camera videos (cam00.mp4, cam01.mp4, ...)")
    cameras = read_poses_bounds(scene / POSES_FILE)
    if len(cameras) != len(videos):
        raise CaptureError(
            scene / POSES_FILE,
            f"has {len(cameras)} cameras but the scene has {len(videos)} videos ({', '.join(videos)})",
        )
    if config.downscale_factor <= 0 or (config.scene_scale is not None and config.scene_scale <= 0):
        given = f"downscale factor {config.downscale_factor}, scene scale {config.scene_scale}"
        raise CaptureError(scene, f"the downscale factor and scene scale must be positive ({given})")
    decoded = decode_videos(
        videos,
        scene / frames_folder(config.downscale_factor) / "images",
        "image",
        config.frame_format,
        config.downscale_factor,
        progress,
    )
    for i, (name, info) in enumerate(decoded.videos.items()):
        pose_aspect, video_aspect = cameras.width[i] / cameras.height[i], info.width / info.height
        if abs(pose_aspect / video_aspect - 1) > 0.01:
            raise CaptureError(
                info.path,
                f"is {info.width}x{info.height} but {POSES_FILE} gives {name} "
                f"{cameras.width[i]:g}x{cameras.height[i]:g} (another aspect ratio)",
            )

    centers = cameras.camera_to_world[:, :, 3]
    offset = -centers.mean(axis=0) if config.center_cameras else np.zeros(3)
    scale = (
        config.scene_scale if config.scene_scale is not None else NEAR_BOUND_DEPTH / float(cameras.near_far[:, 0].min())
    )
    cameras.camera_to_world[:, :, 3] = (centers + offset) * scale
    cameras.near_far = cameras.near_far * scale
    return DyNeRFScene(list(videos), cameras, decoded, common_frame_count([decoded]), offset, scale)


def frustum_bounds(cameras: Cameras, near_far: np.ndarray) -> np.ndarray:
    """[2,3] box around every camera's view frustum between its near and far bound."""
    corners = []
    for i in range(len(cameras)):
        w, h = float(cameras.width[i]), float(cameras.height[i])
        uv = torch.tensor([[0.0, 0.0], [0.0, w], [h, 0.0], [h, w]])  # (row, column) image corners
        rays = cameras.generate_rays(camera_indices=i, coords=uv)
        origins, directions = rays.origins.numpy(), rays.directions.numpy()
        # generate_rays returns unit directions; depth is along the optical axis (-z of the camera).
        depth_per_length = directions @ -cameras.camera_to_worlds[i, :, 2].numpy()
        for depth in near_far[i]:
            corners.append(origins + directions * (depth / depth_per_length)[:, None])
    points = np.concatenate(corners)
    return np.stack([points.min(axis=0), points.max(axis=0)])


@dataclass
class DyNeRFDataParser(DataParser):
    """Builds nerfstudio cameras, file lists and splits from a DyNeRF scene."""

    config: DyNeRFDataParserConfig
    includes_time: bool = True

    def __init__(self, config: DyNeRFDataParserConfig):
        super().__init__(config=config)
        self.includes_time = True
        self._scene: DyNeRFScene | None = None

    def scene(self) -> DyNeRFScene:
        """The scene's cameras and decoded frames (read once)."""
        if self._scene is None:
            self._scene = read_dynerf_scene(self.config)
        return self._scene

    def split_cameras(self) -> tuple[list[int], list[int]]:
        """Indices of the training and the held-out cameras."""
        names = self.scene().names
        unknown = [c for c in self.config.eval_cameras if c not in names]
        if unknown:
            raise CaptureError(
                self.config.data, f"evaluation cameras {unknown} are not among the scene's cameras {names}"
            )
        return split_camera_indices(names, self.config.eval_cameras, self.config.data)

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        scene = self.scene()
        train, evaluation = self.split_cameras()
        chosen = cameras_of_split(split, train, evaluation, self.config.data)

        c = self.config
        frame_indices = select_indices(
            scene.num_frames, None, c.frame_start, c.frame_stop, c.frame_step, "frame", c.data
        )
        pairs = [(f, cam) for f in range(len(frame_indices)) for cam in chosen]  # frame by frame
        all_cameras = to_nerfstudio_cameras(scene, list(range(len(scene.names))), [0] * len(scene.names), 1)
        lower, upper = frustum_bounds(all_cameras, scene.cameras.near_far)
        transform = torch.cat([torch.eye(3), torch.as_tensor(scene.offset, dtype=torch.float32)[:, None]], dim=1)
        return DataparserOutputs(
            image_filenames=[scene.frames.frame_path(scene.names[cam], frame_indices[f]) for f, cam in pairs],
            cameras=to_nerfstudio_cameras(scene, [cam for _, cam in pairs], [f for f, _ in pairs], len(frame_indices)),
            scene_box=SceneBox(aabb=torch.tensor(np.stack([lower, upper]), dtype=torch.float32)),
            metadata={
                "camera_names": scene.names,
                "frame_names": [f"{i:06d}" for i in frame_indices],
                "num_frames": len(frame_indices),
                "train_cameras": train,
                "eval_cameras": evaluation,
                "near_far": scene.cameras.near_far.copy(),
                "near": float(scene.cameras.near_far[:, 0].min()),
                "far": float(scene.cameras.near_far[:, 1].max()),
                "scene_dir": Path(c.data),
            },
            dataparser_transform=transform,
            dataparser_scale=scene.scale,
        )


def to_nerfstudio_cameras(
    scene: DyNeRFScene, camera_indices: list[int], frame_indices: list[int], num_frames: int
) -> Cameras:
    """One nerfstudio camera per (camera, frame) pair: focal scaled from the pose resolution to the
    decoded frames, principal point at the image center, time from the frame position."""
    idx = np.asarray(camera_indices, dtype=np.int64)
    sizes = np.array([scene.frames.frame_sizes[scene.names[i]] for i in idx], dtype=np.float64)  # (height, width)
    llff = scene.cameras

    def column(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, dtype=torch.float32).reshape(-1, 1)

    frames = torch.as_tensor(frame_indices, dtype=torch.long).reshape(-1, 1)
    return Cameras(
        camera_to_worlds=torch.as_tensor(llff.camera_to_world[idx], dtype=torch.float32),
        fx=column(llff.focal[idx] * sizes[:, 1] / llff.width[idx]),
        fy=column(llff.focal[idx] * sizes[:, 0] / llff.height[idx]),
        cx=column(sizes[:, 1] / 2),
        cy=column(sizes[:, 0] / 2),
        width=torch.as_tensor(sizes[:, 1], dtype=torch.long).reshape(-1, 1),
        height=torch.as_tensor(sizes[:, 0], dtype=torch.long).reshape(-1, 1),
        camera_type=CameraType.PERSPECTIVE,
        times=frame_time(frames.float(), num_frames),
        metadata={"camera_index": torch.as_tensor(idx).reshape(-1, 1), "frame_index": frames},
    )
