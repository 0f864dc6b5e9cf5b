"""Point rasterizer of 4K4D: K-layer depth peeling of point discs and differentiable compositing.

Pure torch at the Python level (no nerfstudio import), with C++/OpenMP and CUDA kernels compiled
on first use. Entry points:

- ``peel_points``: per pixel, the indices of the L nearest points whose disc covers it;
- ``composite``: differentiable front-to-back alpha compositing of those points;
- ``validate_inputs``: shape and finiteness checks with clear errors.
"""

from .build import ExtensionBuildError
from .compositing import Composited, composite, front_to_back_weights
from .peel import BACKENDS, PeelResult, peel_points
from .projection import DEFAULT_NEAR, EMPTY_DEPTH, EMPTY_INDEX, project_discs
from .reference import peel_points_reference
from .validation import validate_inputs

__all__ = [
    "BACKENDS",
    "DEFAULT_NEAR",
    "EMPTY_DEPTH",
    "EMPTY_INDEX",
    "Composited",
    "ExtensionBuildError",
    "PeelResult",
    "composite",
    "front_to_back_weights",
    "peel_points",
    "peel_points_reference",
    "project_discs",
    "validate_inputs",
]
