"""Training and held-out cameras, and which of them each nerfstudio split ("train", "val", "test") gets."""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from pathlib import Path

from fourk4d_ns.io.errors import CaptureError


def split_camera_indices(names: Sequence[str], held_out: Collection[str], scene: Path) -> tuple[list[int], list[int]]:
    """Indices of the training cameras and of the held-out ones; at least one camera must train."""
    train = [i for i, name in enumerate(names) if name not in held_out]
    evaluation = [i for i, name in enumerate(names) if name in held_out]
    if not train:
        raise CaptureError(scene, "every selected camera is held out for evaluation: none is left for training")
    return train, evaluation


def cameras_of_split(split: str, train: list[int], evaluation: list[int], scene: Path) -> list[int]:
    """The cameras of a nerfstudio split: "val" and "test" are the held-out cameras (the training
    cameras, with a warning, when none is held out)."""
    if split == "train":
        return train
    if split in ("val", "test"):
        if not evaluation:
            warnings.warn(f"{scene}: no held-out cameras; the {split} split reuses the training cameras", stacklevel=2)
            return train
        return evaluation
    raise ValueError(f"unknown split '{split}': expected train, val or test")
