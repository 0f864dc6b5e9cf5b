"""``ns-train fourk4d``: the method's registration with nerfstudio (entry point ``nerfstudio.method_configs``)."""

from __future__ import annotations

from dataclasses import dataclass

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.plugins.types import MethodSpecification

from dataparsers.easymocap import EasyMocapDataParserConfig
from fourk4d_ns.core.config import ADAM_EPS, LR_DECAY, PUBLISHED_LEARNING_RATES, CoreConfig
from fourk4d_ns.integration.datamanager import FourK4DDataManagerConfig
from fourk4d_ns.integration.model import FourK4DModelConfig
from fourk4d_ns.integration.pipeline import FourK4DPipelineConfig
from fourk4d_ns.integration.schedulers import PlainExponentialDecaySchedulerConfig
from fourk4d_ns.integration.trainer import FourK4DTrainerConfig

DEFAULT_ITERATIONS = 100_000
"""``fourk4d``: a GPU-sized run (the published run is 800k steps; users report 400k suffices)."""

SMALL_ITERATIONS = 2500
"""``fourk4d-small``: sized so that the demo capture trains in about 10 minutes on a 2-core CPU."""


@dataclass
class FusedAdamOptimizerConfig(AdamOptimizerConfig):
    """Adam with torch's fused kernel: on CPU it updates the 8M plane parameters ~20x faster."""

    fused: bool = True
    """Use torch's fused Adam implementation."""


SMALL_POINTS_LEARNING_RATE = 2e-3
"""Positions' learning rate of ``fourk4d-small`` (published 1e-5; the published configs range up to
5e-4). In 2,500 steps each of 24 frames is updated ~100 times, too few for 1e-5 to move the carved
points onto the true surface, which IBR needs to read the right texture: on the demo, held-out
foreground PSNR rises with it from 1e-5 through 5e-4 to 2e-3 (scripts/ab_quality.py)."""


def _optimizers(iterations: int, **learning_rates: float) -> dict:
    rates = {**PUBLISHED_LEARNING_RATES, **learning_rates}
    return {
        name: {
            "optimizer": FusedAdamOptimizerConfig(lr=lr, eps=ADAM_EPS),
            "scheduler": PlainExponentialDecaySchedulerConfig(final_fraction=LR_DECAY, max_steps=iterations),
        }
        for name, lr in rates.items()
    }


def _trainer(
    name: str, iterations: int, model: FourK4DModelConfig, steps_per_save: int, optimizers: dict
) -> FourK4DTrainerConfig:
    return FourK4DTrainerConfig(
        method_name=name,
        max_num_iterations=iterations,
        steps_per_eval_batch=0,
        steps_per_eval_image=500,
        steps_per_eval_all_images=iterations,
        steps_per_save=steps_per_save,
        mixed_precision=False,
        pipeline=FourK4DPipelineConfig(
            datamanager=FourK4DDataManagerConfig(dataparser=EasyMocapDataParserConfig()),
            model=model,
        ),
        optimizers=optimizers,
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis="viewer",
    )


def small_model() -> FourK4DModelConfig:
    """The model of ``fourk4d-small``: fewer points and a shorter CNN schedule, for CPUs and small GPUs."""
    return FourK4DModelConfig(
        max_points_per_frame=20_000,
        core=CoreConfig(
            cnn_full_training_steps=200,  # published 1000: the CNN is the costliest part on a CPU
            feature_cache_size=512,  # every source view's CNN features between CNN updates
        ),
    )


fourk4d_method = MethodSpecification(
    config=_trainer("fourk4d", DEFAULT_ITERATIONS, FourK4DModelConfig(), 2000, _optimizers(DEFAULT_ITERATIONS)),
    description="4K4D: real-time 4D view synthesis of multi-view video with per-frame point clouds and IBR",
)

fourk4d_small_method = MethodSpecification(
    config=_trainer(
        "fourk4d-small",
        SMALL_ITERATIONS,
        small_model(),
        500,
        _optimizers(SMALL_ITERATIONS, points=SMALL_POINTS_LEARNING_RATE),
    ),
    description="fourk4d with a short schedule and 20k points per frame: minutes on a CPU (the demo's method)",
)
