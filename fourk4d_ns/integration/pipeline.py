"""The fourk4d pipeline: nerfstudio's vanilla pipeline, plus the IBR source bank handed to the model."""

from __future__ import annotations

from dataclasses import dataclass, field

from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig

from fourk4d_ns.integration.datamanager import FourK4DDataManagerConfig
from fourk4d_ns.integration.model import FourK4DModelConfig


@dataclass
class FourK4DPipelineConfig(VanillaPipelineConfig):
    """Datamanager and model of fourk4d."""

    _target: type = field(default_factory=lambda: FourK4DPipeline)
    datamanager: FourK4DDataManagerConfig = field(default_factory=FourK4DDataManagerConfig)
    """Serves cropped training images and the IBR source bank."""
    model: FourK4DModelConfig = field(default_factory=FourK4DModelConfig)
    """The 4K4D model."""


class FourK4DPipeline(VanillaPipeline):
    """Gives the model its IBR sources, so that rendering from cameras alone works everywhere."""

    def __init__(self, config: FourK4DPipelineConfig, device: str, **kwargs):
        super().__init__(config, device, **kwargs)
        self.model.attach_sources(self.datamanager.source_bank())
