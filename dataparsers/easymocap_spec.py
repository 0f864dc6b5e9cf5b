"""Entry point of the ``easymocap-data`` dataparser (``nerfstudio.dataparser_configs``).

Kept apart so that registering the dataparser imports nothing from nerfstudio's datamanagers,
pipelines, models or method configs (which would import the dataparser registry back).
"""

from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from dataparsers.easymocap import EasyMocapDataParserConfig

easymocap_dataparser = DataParserSpecification(
    config=EasyMocapDataParserConfig(),
    description="Multi-view captures in the EasyMocap layout (images/, masks/, intri.yml, extri.yml)",
)
