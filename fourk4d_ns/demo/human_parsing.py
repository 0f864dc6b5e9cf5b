"""Human-parsing label maps of the demo figure, as SCHP writes them (ZJU-MoCap's and Mobile-Stage's ``schp/``).

SCHP labels every pixel with one of LIP's 20 classes and saves the map as a palette PNG: the pixel
values are the labels, the palette the PASCAL-VOC-style color map (label 0, the background, black).
Read as RGB (OpenCV) a map shows the palette colors; read as indices (Pillow), the labels. Either
way the person is every non-zero pixel.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fourk4d_ns.io.atomic import atomic_write_bytes

LIP_LABELS = (
    "Background",
    "Hat",
    "Hair",
    "Glove",
    "Sunglasses",
    "Upper-clothes",
    "Dress",
    "Coat",
    "Socks",
    "Pants",
    "Jumpsuits",
    "Scarf",
    "Skirt",
    "Face",
    "Left-arm",
    "Right-arm",
    "Left-leg",
    "Right-leg",
    "Left-shoe",
    "Right-shoe",
)
"""LIP's classes in label order."""

PART_LABELS = {
    "pelvis": "Pants",
    "torso": "Upper-clothes",
    "neck": "Face",
    "head": "Face",
    "upper_arm_l": "Left-arm",
    "forearm_l": "Left-arm",
    "hand_l": "Left-arm",
    "upper_arm_r": "Right-arm",
    "forearm_r": "Right-arm",
    "hand_r": "Right-arm",
    "thigh_l": "Pants",
    "shin_l": "Left-leg",
    "foot_l": "Left-shoe",
    "thigh_r": "Pants",
    "shin_r": "Right-leg",
    "foot_r": "Right-shoe",
}
"""The LIP class of each part of the figure (``_l`` is the figure's own left)."""


def label_palette(count: int = 256) -> np.ndarray:
    """The PASCAL VOC color map [count, 3] uint8 that SCHP saves its maps with: the bits of a label,
    taken three at a time, fill the red, green and blue channels from their highest bit down."""
    labels = np.arange(count)
    palette = np.zeros((count, 3), dtype=np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (labels >> (3 * shift + channel)) & 1
            palette[:, channel] |= bit << (7 - shift)
    return palette.astype(np.uint8)


def part_label_map(part: np.ndarray, part_names: Sequence[str]) -> np.ndarray:
    """LIP labels [H,W] uint8 of a map of figure part indices [H,W] (-1: background, label 0)."""
    lookup = np.array([0] + [LIP_LABELS.index(PART_LABELS[name]) for name in part_names], dtype=np.uint8)
    return lookup[part + 1]


def write_label_map(path: Path, labels: np.ndarray) -> None:
    """Save a label map [H,W] uint8 as a palette PNG, atomically."""
    image = Image.fromarray(labels, mode="P")
    image.putpalette(label_palette().reshape(-1).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
