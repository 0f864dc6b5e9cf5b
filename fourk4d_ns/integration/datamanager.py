"""Full-image datamanager of fourk4d: one (camera, frame) image per training step, cropped to the
mask's box plus a margin and multiplied by the mask; held-out images whole, for evaluation.

It carves the visual hulls of exactly the training views (cached in the capture) that initialize
the model's point clouds, and serves the model's bank of image-based-rendering sources (training
images of a frame), so that rendering from cameras alone (viewer, ns-render, ns-eval) uses IBR too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.configs.dataparser_configs import AnnotatedDataParserUnion, all_dataparsers
from nerfstudio.data.datamanagers.base_datamanager import DataManager
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanagerConfig
from nerfstudio.data.dataparsers.base_dataparser import DataParserConfig, DataparserOutputs
from nerfstudio.data.datasets.base_dataset import InputDataset
from torch.nn import Parameter

from dataparsers.dynerf import DyNeRFDataParserConfig
from dataparsers.easymocap import EasyMocapDataParserConfig
from dataparsers.easymocap_layout import no_masks_error
from fourk4d_ns.carving.visual_hull import CarveSettings
from fourk4d_ns.core.camera import camera_center
from fourk4d_ns.core.ibr import SourceViews
from fourk4d_ns.integration.cameras import crop_camera, opencv_distortion, opencv_from_cameras, pinhole
from fourk4d_ns.integration.carving import carve_training_views
from fourk4d_ns.integration.frame_cache import FrameImageCache, ImageSource, LoadedImage
from fourk4d_ns.io.errors import InputError

NEEDED_METADATA = ("camera_names", "frame_names", "num_frames", "train_cameras", "eval_cameras", "scene_dir")
"""What fourk4d reads from a dataparser's metadata (easymocap-data and dyn3d-data give it)."""


@dataclass
class FourK4DDataManagerConfig(FullImageDatamanagerConfig):
    """Serves whole (cropped) images of random (camera, frame) pairs.

    Derives from nerfstudio's full-image config only because ``ns-render`` accepts no other kind;
    its image-caching options are not used (images load per frame, see cache_gigabytes).
    """

    _target: type = field(default_factory=lambda: FourK4DDataManager)
    dataparser: AnnotatedDataParserUnion = field(default_factory=EasyMocapDataParserConfig)
    """The capture reader (a subcommand, easymocap-data by default): it must give every image its camera,
    frame and foreground mask."""
    carve: CarveSettings = field(default_factory=CarveSettings)
    """Visual-hull settings of the carving that initializes the point clouds (cached in the capture)."""
    crop_margin: float = 0.1
    """Margin around the mask's bounding box, as a fraction of the box's size (at least 8 pixels)."""
    cache_gigabytes: float = 4.0
    """Memory for decoded images (uint8), kept per frame; least recently used frames are dropped."""
    seed: int = 0
    """Seed of the training image order."""


def dataparser_name(config: DataParserConfig) -> str:
    """The subcommand name of a dataparser config (``easymocap-data``), else its class name."""
    return next((name for name, c in all_dataparsers.items() if type(c) is type(config)), type(config).__name__)


def refuse_unsupported_dataparser(config: DataParserConfig) -> None:
    """Dataparsers known not to feed fourk4d, refused before they read (or decode) anything."""
    if isinstance(config, DyNeRFDataParserConfig):
        raise InputError(
            "fourk4d trains on masked foregrounds, and dyn3d-data scenes have no foreground masks (whole "
            "scenes with their background are not supported yet); use easymocap-data captures, which have masks"
        )


def check_dataparser_outputs(outputs: DataparserOutputs, config: DataParserConfig) -> None:
    """``InputError`` (``CaptureError`` for a capture without masks) unless the outputs give what fourk4d
    reads: every image's camera and frame, a mask for every image, and the capture's camera and frame lists."""
    name = dataparser_name(config)
    metadata = outputs.cameras.metadata or {}
    if "camera_index" not in metadata or "frame_index" not in metadata:
        raise InputError(
            f"fourk4d needs the camera and frame of every image (camera metadata `camera_index` and "
            f"`frame_index`, as easymocap-data gives), and the {name} dataparser gives none"
        )
    missing = [key for key in NEEDED_METADATA if key not in outputs.metadata]
    if missing:
        raise InputError(f"fourk4d needs the dataparser metadata {missing}, and the {name} dataparser gives none")
    if outputs.mask_filenames is None:
        if isinstance(config, EasyMocapDataParserConfig):
            raise no_masks_error(outputs.metadata["scene_dir"])
        raise InputError(f"fourk4d needs a foreground mask for every image, and the {name} dataparser gives none")


class SourceBank:
    """The training images and cameras that image-based rendering draws its sources from."""

    def __init__(
        self, images: FrameImageCache, K: torch.Tensor, R: torch.Tensor, T: torch.Tensor, train_cameras: Sequence[int]
    ):
        self.images = images
        self.K, self.R, self.T = K, R, T
        self.centers = camera_center(R, T)
        """Camera centers [C,3] of every selected camera (indexed by ``camera_index``)."""
        self.train_cameras = list(train_cameras)
        """The cameras allowed as sources: training cameras only, never held-out ones."""

    def images_of(
        self, frame: int, cameras: Sequence[int], device: str | torch.device
    ) -> torch.Tensor | list[torch.Tensor]:
        """Masked source images in [0,1] of a frame: [S,3,H,W] when the cameras share one size, else a list of
        [3,H_i,W_i] (DNA-Rendering mixes two camera models; the core samples each source at its own size)."""
        return self._images_and_masks(frame, cameras, device)[0]

    def _images_and_masks(self, frame: int, cameras: Sequence[int], device: str | torch.device):
        loaded = [self.images.get(c, frame) for c in cameras]
        masked = [torch.from_numpy(image.rgb * image.mask[:, :, None]) for image in loaded]
        masks = [torch.from_numpy(image.mask[None]) for image in loaded]
        if len({image.shape for image in masked}) == 1:
            images = torch.stack(masked).to(device).permute(0, 3, 1, 2).float().div_(255.0)
            return images, torch.stack(masks).to(device).float()
        return (
            [image.to(device).permute(2, 0, 1).float().div_(255.0) for image in masked],
            [mask.to(device).float() for mask in masks],
        )

    def views(self, frame: int, cameras: Sequence[int], device: str | torch.device) -> SourceViews:
        """The IBR source views of ``cameras`` at ``frame``: masked images, masks and cameras, keyed by
        (camera, frame) so the core can reuse their CNN features and depth maps."""
        images, masks = self._images_and_masks(frame, cameras, device)
        cameras = list(cameras)
        return SourceViews(
            images=images,
            masks=masks,
            K=self.K[cameras].to(device),
            R=self.R[cameras].to(device),
            T=self.T[cameras].to(device),
            keys=[(c, frame) for c in cameras],
        )


def mask_box(mask: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the mask's bounding box grown by ``margin`` of its size; the whole image
    when the mask is empty."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0, 0, width, height
    pad_x = max(8, int(margin * (xs.max() - xs.min() + 1)))
    pad_y = max(8, int(margin * (ys.max() - ys.min() + 1)))
    return (
        max(0, xs.min() - pad_x),
        max(0, ys.min() - pad_y),
        min(width, xs.max() + 1 + pad_x),
        min(height, ys.max() + 1 + pad_y),
    )


class EvalImages:
    """The held-out images as a lazy sequence of (camera, batch), loaded when iterated."""

    def __init__(self, manager: FourK4DDataManager):
        self.manager = manager

    def __len__(self) -> int:
        return len(self.manager.eval_dataset)

    def __getitem__(self, index: int) -> tuple[Cameras, dict]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.manager.eval_item(index)

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class FourK4DDataManager(DataManager):
    """See the module docstring."""

    config: FourK4DDataManagerConfig

    def __init__(
        self,
        config: FourK4DDataManagerConfig,
        device: torch.device | str = "cpu",
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        **kwargs,
    ):
        self.config = config
        self.device = device
        self.world_size = world_size
        self.local_rank = local_rank
        self.test_mode = test_mode
        self.test_split = "test" if test_mode in ("test", "inference") else "val"
        if self.config.data is not None:
            self.config.dataparser.data = self.config.data
        refuse_unsupported_dataparser(self.config.dataparser)
        self.dataparser = self.config.dataparser.setup()
        self.includes_time = True
        self.train_dataparser_outputs = self.dataparser.get_dataparser_outputs(split="train")
        check_dataparser_outputs(self.train_dataparser_outputs, self.config.dataparser)
        self.eval_dataparser_outputs = self.dataparser.get_dataparser_outputs(split=self.test_split)
        # The model's initial points: exactly the training views are carved (cached after the first run).
        self.train_dataparser_outputs.metadata["carving"] = carve_training_views(
            self.train_dataparser_outputs, self.config.carve
        )
        self.train_dataset = InputDataset(self.train_dataparser_outputs)
        self.eval_dataset = InputDataset(self.eval_dataparser_outputs)
        self.images = FrameImageCache(self._image_sources(), int(self.config.cache_gigabytes * 2**30))
        self._train_random = random.Random(self.config.seed)
        # Evaluation draws from its own generator, so that evaluating leaves the training order alone.
        self._eval_random = random.Random(f"eval {self.config.seed}")
        self._train_order: list[int] = []
        super().__init__()

    def _image_sources(self) -> dict[tuple[int, int], ImageSource]:
        sources = {}
        for outputs in (self.train_dataparser_outputs, self.eval_dataparser_outputs):
            cams = outputs.cameras
            K, _, _ = opencv_from_cameras(cams)
            opencv_dist = opencv_distortion(cams)
            curves = outputs.metadata.get("color_curves")
            for i in range(len(cams)):
                key = (int(cams.metadata["camera_index"][i]), int(cams.metadata["frame_index"][i]))
                mask = None if outputs.mask_filenames is None else outputs.mask_filenames[i]
                sources[key] = ImageSource(
                    outputs.image_filenames[i],
                    mask,
                    K[i].numpy().astype(np.float64),
                    opencv_dist[i].numpy().astype(np.float64),
                    None if curves is None else curves[key[0]],
                )
        return sources

    @property
    def num_frames(self) -> int:
        return int(self.train_dataparser_outputs.metadata["num_frames"])

    def source_bank(self) -> SourceBank:
        """Every selected camera's pinhole parameters, and the training images to draw sources from."""
        count = len(self.train_dataparser_outputs.metadata["camera_names"])
        K, R, T = torch.zeros(count, 3, 3), torch.zeros(count, 3, 3), torch.zeros(count, 3)
        for outputs in (self.train_dataparser_outputs, self.eval_dataparser_outputs):
            k, r, t = opencv_from_cameras(outputs.cameras)
            index = outputs.cameras.metadata["camera_index"].reshape(-1)
            K[index], R[index], T[index] = k, r, t
        return SourceBank(self.images, K, R, T, self.train_dataparser_outputs.metadata["train_cameras"])

    def _batch(self, dataset: InputDataset, index: int, crop: bool) -> tuple[Cameras, dict]:
        camera = pinhole(dataset.cameras[index : index + 1].to("cpu"))
        camera_index = int(camera.metadata["camera_index"].reshape(-1)[0])
        frame_index = int(camera.metadata["frame_index"].reshape(-1)[0])
        loaded: LoadedImage = self.images.get(camera_index, frame_index)
        rgb, mask = loaded.rgb, loaded.mask
        if crop:
            x0, y0, x1, y1 = mask_box(mask, self.config.crop_margin)
            rgb, mask = rgb[y0:y1, x0:x1], mask[y0:y1, x0:x1]
            camera = crop_camera(camera, x0, y0, x1 - x0, y1 - y0)
        image = torch.from_numpy(rgb * mask[:, :, None]).float().div_(255.0)
        batch = {
            "image": image.to(self.device),
            "mask": torch.from_numpy(mask)[:, :, None].to(self.device),
            "image_idx": index,
            "camera_index": camera_index,
            "frame_index": frame_index,
        }
        return camera.to(self.device), batch

    def next_train(self, step: int) -> tuple[Cameras, dict]:
        """A random training image (each once per epoch), cropped around its mask."""
        if not self._train_order:
            self._train_order = list(range(len(self.train_dataset)))
            self._train_random.shuffle(self._train_order)
        self.train_count += 1
        return self._batch(self.train_dataset, self._train_order.pop(), crop=True)

    def eval_item(self, index: int) -> tuple[Cameras, dict]:
        """Held-out image ``index`` whole (the published protocol: full frame, masked, black background)."""
        return self._batch(self.eval_dataset, index, crop=False)

    def next_eval(self, step: int) -> tuple[Cameras, dict]:
        return self.next_eval_image(step)

    def next_eval_image(self, step: int) -> tuple[Cameras, dict]:
        self.eval_count += 1
        return self.eval_item(self._eval_random.randrange(len(self.eval_dataset)))

    def get_extra_state(self) -> dict:
        """The generators and the rest of the epoch's order, saved in checkpoints so that resuming continues them.

        Plain Python values only: checkpoints are loaded with ``torch.load(weights_only=True)``.
        """
        return {
            "train_random": self._train_random.getstate(),
            "train_order": list(self._train_order),
            "eval_random": self._eval_random.getstate(),
        }

    def set_extra_state(self, state: dict) -> None:
        self._train_random.setstate(state["train_random"])
        self._train_order = list(state["train_order"])
        self._eval_random.setstate(state["eval_random"])

    @property
    def fixed_indices_eval_dataloader(self) -> EvalImages:
        return EvalImages(self)

    def get_train_rays_per_batch(self) -> int:
        cameras = self.train_dataset.cameras
        return int(cameras.width[0]) * int(cameras.height[0])

    def get_eval_rays_per_batch(self) -> int:
        return self.get_train_rays_per_batch()

    def get_datapath(self):
        return self.config.dataparser.data

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        return {}

    def setup_train(self):
        """Nothing to set up: images load on demand."""

    def setup_eval(self):
        """Nothing to set up: images load on demand."""
