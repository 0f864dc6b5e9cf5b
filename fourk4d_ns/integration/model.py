"""The nerfstudio model of fourk4d: adapts ``FourK4DCore`` to cameras, losses, metrics and the viewer.

Rendering needs image-based-rendering sources, which the pipeline installs with ``attach_sources``;
with them, any camera (training, held-out, viewer, ns-render) is rendered from the S nearest
training cameras of the same frame, never from the target camera itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils.colormaps import ColormapOptions, apply_colormap
from nerfstudio.viewer.viewer_elements import ViewerButton, ViewerCheckbox, ViewerRGB, ViewerSlider
from pytorch_msssim import SSIM
from torch.nn import Parameter

from fourk4d_ns.carving.capture import CarvedCapture
from fourk4d_ns.core.camera import camera_center
from fourk4d_ns.core.config import CoreConfig
from fourk4d_ns.core.ibr import SourceViews, nearest_sources
from fourk4d_ns.core.metrics import coverage, error_magnitude, masked_psnr
from fourk4d_ns.core.point_model import FourK4DCore
from fourk4d_ns.core.sampling import SubsetKind, surface_subset, typical_spacing
from fourk4d_ns.core.timeline import frame_at_time
from fourk4d_ns.core.training import image_loss, mask_loss
from fourk4d_ns.integration.baking import bake_pipeline
from fourk4d_ns.integration.cameras import opencv_from_cameras
from fourk4d_ns.integration.datamanager import SourceBank
from fourk4d_ns.integration.lpips import Lpips
from fourk4d_ns.integration.viewer_start import StartAtTrainingCamera
from fourk4d_ns.io.errors import CaptureError
from fourk4d_ns.rasterizer import ExtensionBuildError


@dataclass
class FourK4DModelConfig(ModelConfig):
    """4K4D: per-frame point clouds, a 4D feature field, IBR + SH appearance, depth-peeled points."""

    _target: type = field(default_factory=lambda: FourK4DModel)
    enable_collider: bool = False
    """Point rendering needs no ray collider."""
    core: CoreConfig = field(default_factory=CoreConfig)
    """Architecture and rendering settings."""
    max_points_per_frame: int | None = None
    """Keep at most this many carved surface points per frame; None keeps all."""
    point_subset: SubsetKind = "even"
    """How max_points_per_frame are chosen: "even" (one per cell of a voxel grid, so no gaps) or
    "random" (uniform, as published)."""
    start_radius_from_spacing: bool = True
    """Start point radii at start_radius_spacings times the carved points' typical spacing (so discs
    tile the surface whatever the point count) instead of the published near-minimum radius."""
    start_radius_spacings: float = 1.0
    """Starting radius in typical spacings (1.5 on the demo: radii settle back within the run, and the
    holes with them; scripts/ab_quality.py)."""
    image_loss: str = "huber"
    """"huber" (delta 1 on [0,1] colors, i.e. 0.5 MSE; published) or "mse"."""
    lpips_loss_weight: float = 1e-3
    """Weight of the LPIPS-VGG loss (published 1e-3), used when the VGG weights are on this machine."""
    mask_loss_weight: float = 1e-3
    """Weight of 1 - IoU(accumulation, mask) (published 1e-3)."""
    prune_every: int = 0
    """Every this many steps, drop points whose density fell below prune_density, unless that would
    remove half of a frame's points or more (0: never prune)."""
    prune_density: float = 0.01
    """Density below which points are pruned."""
    seed: int = 0
    """Seed of the point subsets and random backgrounds."""
    playback_fps: float = 30.0
    """Frame rate of the capture: the viewer's play control and baked playback step at this rate."""
    bake_after_training: bool = True
    """Bake the sequence into bake_folder when training finishes (fourk4d-bake does it later too)."""
    bake_folder: Path | None = None
    """Baked sequence the viewer plays (set to the run's bake/ folder by the fourk4d trainer config)."""


def is_dataset_camera(camera: Cameras) -> bool:
    """Whether a camera is one of the capture's (training, evaluation, ns-render dataset); the viewer's
    cameras carry only {"cam_idx": ...} and camera paths none."""
    return camera.metadata is not None and "camera_index" in camera.metadata


def viewer_depth(camera: Cameras, depth: torch.Tensor, accumulation: torch.Tensor) -> torch.Tensor:
    """Depth as nerfstudio's viewer reads it ("Composite depth"): distance along the ray, far where empty.

    The core's depth is the weighted camera z, 0 where nothing was hit, which would make the empty
    background the nearest thing on screen and hide the scene's other objects (camera frustums).
    """
    height, width = accumulation.shape[:2]
    device = accumulation.device
    v, u = torch.meshgrid(
        torch.arange(height, device=device) + 0.5, torch.arange(width, device=device) + 0.5, indexing="ij"
    )
    fx, fy, cx, cy = (float(x.reshape(-1)[0]) for x in (camera.fx, camera.fy, camera.cx, camera.cy))
    stretch = torch.sqrt(1 + ((u - cx) / fx) ** 2 + ((v - cy) / fy) ** 2)[..., None]  # ray length per unit z
    distance = depth / accumulation.clamp_min(1e-6) * stretch
    return torch.where(accumulation > 1e-3, distance, torch.full_like(distance, 1e4))  # viser clips to its far plane


class FourK4DModel(Model):
    """See the module docstring."""

    config: FourK4DModelConfig

    def populate_modules(self):
        super().populate_modules()
        metadata = self.kwargs["metadata"]
        carved: CarvedCapture | None = metadata.get("carving")
        if carved is None:
            raise RuntimeError("the fourk4d model needs the carved training views: build it through FourK4DDataManager")
        self.frame_names: list[str] = list(metadata["frame_names"])
        limit, kind, seed = self.config.max_points_per_frame, self.config.point_subset, self.config.seed
        initial = [
            torch.from_numpy(surface_subset(carved.surface(name), limit, seed + f, kind))
            for f, name in enumerate(self.frame_names)
        ]
        empty = [name for name, points in zip(self.frame_names, initial) if len(points) == 0]
        if empty:
            raise CaptureError(carved.folder, f"carving kept no points in frames {empty}; check their masks")
        bounds = torch.as_tensor(carved.bounds, dtype=torch.float32)
        self.core = FourK4DCore(self.config.core, initial, bounds, len(self.frame_names))
        if self.config.start_radius_from_spacing:
            spacing = typical_spacing([p.numpy() for p in initial])
            self.core.geometry_head.start_radius_at(self.config.start_radius_spacings * spacing)
        self.sources: SourceBank | None = None
        self.step = 0
        self.ssim = SSIM(data_range=1.0, size_average=True, channel=3)
        self.lpips = Lpips()
        self._generator = torch.Generator().manual_seed(self.config.seed)

        last = len(self.frame_names) - 1
        self.viewer_frame = ViewerSlider(
            "Frame (-1: time slider)", -1, -1, last, 1, hint="Frame to show; -1 follows the time slider"
        )
        self.viewer_sources = ViewerSlider(
            "IBR sources",
            self.config.core.num_sources,
            1,
            max(1, len(metadata["train_cameras"])),
            1,
            hint="Training views blended per rendered view",
        )
        self.viewer_background = ViewerRGB("Background", (0, 0, 0), hint="Background color of the viewer's renders")
        self.viewer_play = ViewerButton("Play / pause", self._toggle_playback)
        self.viewer_use_bake = ViewerCheckbox(
            "Render from the bake", True, hint="Use the baked sequence (real time) when the run has one"
        )
        self.viewer_start = StartAtTrainingCamera(self._first_training_camera, carved.bounds)
        self._playing: threading.Event | None = None
        self._baked = None
        self._baked_checked = False

    # ----------------------------------------------------------------- wiring
    def attach_sources(self, sources: SourceBank) -> None:
        """Install the bank of training images and cameras that IBR draws from."""
        self.sources = sources

    def _first_training_camera(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(R, T) of the first training camera, where the viewer starts."""
        if self.sources is None or not self.sources.train_cameras:
            return None
        first = self.sources.train_cameras[0]
        return self.sources.R[first], self.sources.T[first]

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        return self.core.param_groups()

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        def remember_step(step: int) -> None:
            self.step = step

        callbacks = [TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], remember_step)]
        if self.config.bake_after_training and self.config.bake_folder is not None:
            pipeline = training_callback_attributes.pipeline

            def bake(step: int) -> None:
                bake_pipeline(pipeline, self.config.bake_folder)
                print(f"Baked sequence: {self.config.bake_folder}")

            callbacks.append(TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN], bake))
        if self.config.prune_every > 0:
            optimizers = training_callback_attributes.optimizers

            def prune(step: int) -> None:
                if step == 0:
                    return
                for frame in range(len(self.frame_names)):
                    keep = ~self.core.low_density_mask(frame, self.config.prune_density)
                    # A frame that would lose most of its points is still being fitted: leave it.
                    if keep.sum() >= 0.5 * keep.numel():
                        self.core.prune_(frame, keep, optimizers.optimizers.get("points"))

            callbacks.append(
                TrainingCallback(
                    [TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                    prune,
                    update_every_num_iters=self.config.prune_every,
                )
            )
        return callbacks

    def get_extra_state(self) -> dict:
        """The random backgrounds' generator, saved in checkpoints so that resuming continues its draws."""
        return {"background_generator": self._generator.get_state()}

    def set_extra_state(self, state: dict) -> None:
        self._generator.set_state(state["background_generator"])

    # ----------------------------------------------------------------- playback
    def _toggle_playback(self, _button=None) -> None:
        """Starts or stops stepping the frame control at ``playback_fps``."""
        if self._playing is not None:
            self._playing.set()
            self._playing = None
            return
        stop = self._playing = threading.Event()
        count = len(self.frame_names)

        def play() -> None:
            period = 1.0 / max(self.config.playback_fps, 1e-3)
            frame = max(int(self.viewer_frame.value), 0)
            while not stop.wait(period):
                frame = (frame + 1) % count
                self.viewer_frame.value = frame  # triggers a re-render of the viewer

        threading.Thread(target=play, name="fourk4d-play", daemon=True).start()

    def baked_renderer(self):
        """The renderer of the run's bake, when there is one (looked up once)."""
        if not self._baked_checked:
            self._baked_checked = True
            folder = self.config.bake_folder
            if folder is not None and (Path(folder) / "manifest.json").is_file():
                from fourk4d_ns.playback.baked_renderer import BakedRenderer

                try:
                    self._baked = BakedRenderer(folder, self.device)
                except ExtensionBuildError as error:  # said once; the model renders instead
                    print(f"Not rendering from the bake: {error}")
        return self._baked

    def render_baked(self, camera: Cameras) -> dict[str, torch.Tensor] | None:
        """Renders a viewer or camera-path camera from the bake; None when the model should render.

        Used outside training only (the bake is of the finished model, not of one being trained).
        """
        if self.training or self.step > 0 or not self.viewer_use_bake.value or is_dataset_camera(camera):
            return None
        baked = self.baked_renderer()
        if baked is None or baked.num_frames != len(self.frame_names):
            return None
        K, R, T = (x[0] for x in opencv_from_cameras(camera))
        background = None
        if tuple(self.viewer_background.value) != (0, 0, 0):
            background = torch.tensor(self.viewer_background.value, dtype=torch.float32) / 255.0
        out = baked.render(
            self.frame_of(camera),
            K,
            R,
            T,
            int(camera.height.reshape(-1)[0]),
            int(camera.width.reshape(-1)[0]),
            num_sources=int(self.viewer_sources.value),
            background=background,
        )
        return {"rgb": out.rgb, "accumulation": out.accumulation, "depth": out.depth}

    # ----------------------------------------------------------------- rendering
    def frame_of(self, camera: Cameras) -> int:
        """The frame a camera looks at: its dataset frame, else the viewer's frame control, else its time."""
        last = len(self.frame_names) - 1
        if camera.metadata is not None and "frame_index" in camera.metadata:
            return int(camera.metadata["frame_index"].reshape(-1)[0])
        if not self.training and int(self.viewer_frame.value) >= 0:
            return min(int(self.viewer_frame.value), last)
        if camera.times is not None:
            return frame_at_time(float(camera.times.reshape(-1)[0]), len(self.frame_names))
        return 0

    def source_views(self, frame: int, center: torch.Tensor, target: int | None, count: int) -> SourceViews:
        """The ``count`` training views of ``frame`` nearest to ``center``, never the target camera."""
        if self.sources is None:
            raise RuntimeError("no IBR sources attached: build the model through FourK4DPipeline")
        allowed = torch.as_tensor(self.sources.train_cameras)
        exclude = [i for i, c in enumerate(self.sources.train_cameras) if c == target]
        chosen = allowed[
            nearest_sources(center, self.sources.centers[allowed], count, exclude=exclude or None)
        ].tolist()
        return self.sources.views(frame, chosen, self.device)

    def get_outputs(self, camera: Cameras) -> dict[str, torch.Tensor]:
        assert camera.shape[0] == 1, "renders one camera at a time"
        K, R, T = (x[0].to(self.device) for x in opencv_from_cameras(camera))
        frame = self.frame_of(camera)
        target = None
        if camera.metadata is not None and "camera_index" in camera.metadata:
            target = int(camera.metadata["camera_index"].reshape(-1)[0])
        count = self.config.core.num_sources if self.training else int(self.viewer_sources.value)
        sources = self.source_views(frame, camera_center(R, T), target, count)
        if self.training:
            background = self.core.pick_background(self._generator)
        elif tuple(self.viewer_background.value) != (0, 0, 0) and target is None:  # viewer, camera paths
            background = torch.tensor(self.viewer_background.value, dtype=torch.float32, device=self.device) / 255.0
        else:
            background = None  # evaluation: black, as the masked ground truth
        outputs = self.core.render(
            frame,
            K,
            R,
            T,
            int(camera.height.reshape(-1)[0]),
            int(camera.width.reshape(-1)[0]),
            sources,
            background=background,
            train_cnn=self.training and self.config.core.cnn_trains_at(self.step),
        )
        outputs["frame"] = frame
        outputs["background"] = background
        return outputs

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box=None) -> dict[str, torch.Tensor]:
        outputs = self.render_baked(camera)
        if outputs is None:
            outputs = self.get_outputs(camera.to(self.device))
            outputs = {
                key: value for key, value in outputs.items() if isinstance(value, torch.Tensor) and value.dim() == 3
            }
        if camera.metadata is not None and "cam_idx" in camera.metadata:  # nerfstudio's viewer
            outputs["depth"] = viewer_depth(camera, outputs["depth"], outputs["accumulation"])
        return outputs

    def get_rgba_image(self, outputs: dict[str, torch.Tensor], output_name: str = "rgb") -> torch.Tensor:
        return torch.cat([outputs[output_name], outputs["accumulation"]], dim=-1)

    # ----------------------------------------------------------------- losses and metrics
    @staticmethod
    def _target(outputs: dict, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground truth [H,W,3] on the render's background, and the mask [H,W,1] as float."""
        mask = batch["mask"].float()
        image = batch["image"]
        background = outputs.get("background")
        if background is not None:
            image = image + (1 - mask) * background
        return image, mask

    def get_metrics_dict(self, outputs, batch) -> dict[str, torch.Tensor]:
        image, _ = self._target(outputs, batch)
        mse = F.mse_loss(outputs["rgb"].detach(), image)
        return {
            "psnr": -10 * torch.log10(mse.clamp_min(1e-10)),
            "num_points": torch.tensor(float(sum(self.core.point_counts()))),
        }

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, torch.Tensor]:
        image, mask = self._target(outputs, batch)
        rgb = outputs["rgb"]
        losses = {
            "image_loss": image_loss(rgb, image, self.config.image_loss),
            "mask_loss": self.config.mask_loss_weight * mask_loss(outputs["accumulation"], mask),
        }
        if "deformation_loss" in outputs:
            losses["deformation_loss"] = self.config.core.deformation_loss_weight * outputs["deformation_loss"]
        if self.config.lpips_loss_weight > 0 and min(rgb.shape[:2]) >= 32 and self.lpips.available:
            losses["lpips_loss"] = self.config.lpips_loss_weight * self.lpips(rgb, image)
        return losses

    @torch.no_grad()
    def get_image_metrics_and_images(self, outputs, batch) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        image, mask = self._target(outputs, batch)
        rgb = outputs["rgb"].clamp(0, 1)
        mse = F.mse_loss(rgb, image)
        metrics = {
            "psnr": float(-10 * torch.log10(mse.clamp_min(1e-10))),
            "psnr_foreground": masked_psnr(rgb, image, mask),
            "ssim": float(self.ssim(image.permute(2, 0, 1)[None], rgb.permute(2, 0, 1)[None])),
            "coverage": coverage(outputs["accumulation"], mask),
        }
        if self.lpips.available:
            metrics["lpips"] = float(self.lpips(rgb, image))
        error = apply_colormap(error_magnitude(rgb, image), ColormapOptions(colormap="turbo"))
        images = {
            # ground truth | render | error (turbo: 0 to 0.25 mean absolute error), as ns-eval writes them
            "img": torch.cat([image, rgb, error.to(rgb)], dim=1),
            "accumulation": torch.cat([mask, outputs["accumulation"]], dim=1).expand(-1, -1, 3),
        }
        return metrics, images
