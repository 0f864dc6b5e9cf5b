"""The 4K4D model in pure PyTorch (METHOD.md sections 1-4); no nerfstudio import.

- ``CoreConfig``: architecture and rendering settings (published defaults);
- ``FourK4DCore``: per-frame points, 4D feature field, heads, source CNN; ``render`` a view;
- ``SourceViews`` / ``nearest_sources``: the IBR source views the caller supplies;
- ``training``: losses, Adam with the published learning rates, exponential decay;
- ``camera``: camera conventions (center, OpenCV <-> OpenGL, projection, look-at, K scaling);
- ``timeline``: frame <-> time.
"""

from .camera import camera_center
from .config import ADAM_EPS, LR_DECAY, PUBLISHED_LEARNING_RATES, CoreConfig
from .feature_field import SixPlaneField
from .heads import DeformationHead, GeometryHead, SHHead, eval_sh, sh_basis
from .ibr import BlendHead, SourceFeatureNet, SourceViews, nearest_sources
from .point_model import FourK4DCore, PointOutputs
from .training import build_optimizer, image_loss, mask_loss, set_learning_rates

__all__ = [
    "ADAM_EPS",
    "LR_DECAY",
    "PUBLISHED_LEARNING_RATES",
    "BlendHead",
    "CoreConfig",
    "DeformationHead",
    "FourK4DCore",
    "GeometryHead",
    "PointOutputs",
    "SHHead",
    "SixPlaneField",
    "SourceFeatureNet",
    "SourceViews",
    "build_optimizer",
    "camera_center",
    "eval_sh",
    "image_loss",
    "mask_loss",
    "nearest_sources",
    "set_learning_rates",
    "sh_basis",
]
