"""Entry point of the ``dyn3d-data`` dataparser (``nerfstudio.dataparser_configs``).

Kept apart so that registering the dataparser imports nothing from nerfstudio's datamanagers,
pipelines, models or method configs (which would import the dataparser registry back).
"""

from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from dataparsers.dynerf import DyNeRFDataParserConfig

dynerf_dataparser = DataParserSpecification(
    config=DyNeRFDataParserConfig(),
    description="Neural 3D Video (DyNeRF) scenes: cam00.mp4 ... camNN.mp4 and LLFF poses_bounds.npy",
)
