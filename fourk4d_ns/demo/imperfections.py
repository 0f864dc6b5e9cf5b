"""Camera imperfections the demo can record: lens distortion, color calibration, calibration refinement.

Every draw is deterministic in the capture's seed and independent of the figure's (a stream of its
own), so a capture with and without them shows the same figure seen by the same rig.
"""

from __future__ import annotations

import cv2
import numpy as np

from dataparsers.easymocap_cameras import CameraRig
from fourk4d_ns.io.images import apply_color_curves

LENS_STREAM, COLOR_STREAM, CALIBRATION_STREAM = 1, 2, 3
"""Random streams of ``np.random.default_rng((seed, stream))``."""


def lens_distortion(count: int, seed: int) -> np.ndarray:
    """OpenCV (k1, k2, p1, p2, k3) [count, 5] of plausible barrel lenses, slightly different per camera:
    k1 in [-0.30, -0.18] (the image corners of the demo rig move inwards by 4-7% of their radius),
    k2 in [0.04, 0.12], tangential terms below 1e-3, |k3| below 0.01. Even the worst draw stays
    monotonic up to a normalized radius of 1.15 and maps radii up to 1.2 (the farthest of carving's
    search box) beyond 0.74, outside the images' corners (0.5-0.65): no point folds back into a view."""
    rng = np.random.default_rng((seed, LENS_STREAM))
    return np.stack(
        [
            rng.uniform(-0.30, -0.18, count),
            rng.uniform(0.04, 0.12, count),
            rng.uniform(-1e-3, 1e-3, count),
            rng.uniform(-1e-3, 1e-3, count),
            rng.uniform(-0.01, 0.01, count),
        ],
        axis=1,
    )


def color_calibration(count: int, seed: int) -> np.ndarray:
    """Color curves [count, 3, 3] in DNA-Rendering's ``ccm_`` convention (``io.images.apply_color_curves``:
    row c holds (a, b, c) of ``a v^2 + b v + c`` for channel R, G, B).

    Raw images are flatter than calibrated ones and have a color cast, as from a camera before its
    color correction: each curve maps 0 below 0 (an offset of -2 to -12 levels) and 255 above 255 (by
    5 to 45, different per channel), with a small quadratic term (|a| < 3e-4), so every calibrated
    value is reachable and the curve is increasing (its slope stays above 0.8).
    """
    rng = np.random.default_rng((seed, COLOR_STREAM))
    quadratic = rng.uniform(-3e-4, 3e-4, (count, 3))
    offset = rng.uniform(-12.0, -2.0, (count, 3))
    top = 255.0 + rng.uniform(5.0, 45.0, (count, 3))
    linear = (top - offset - quadratic * 255.0**2) / 255.0
    return np.stack([quadratic, linear, offset], axis=-1)


def uncorrected_image(calibrated: np.ndarray, ccm: np.ndarray) -> np.ndarray:
    """The raw RGB uint8 image whose color correction by ``ccm`` is closest to ``calibrated``: per channel,
    the 8-bit value whose corrected value is nearest (the correction is increasing, so a table search)."""
    values = np.arange(256, dtype=np.uint8)
    table = apply_color_curves(np.repeat(values[:, None], 3, axis=1)[None], ccm)[0].astype(np.int64)  # [256, 3]
    raw = np.empty_like(calibrated)
    for c in range(3):
        target = calibrated[..., c].astype(np.int64)
        above = np.clip(np.searchsorted(table[:, c], target, side="left"), 0, 255)
        below = np.clip(above - 1, 0, 255)
        closer_below = np.abs(table[below, c] - target) <= np.abs(table[above, c] - target)
        raw[..., c] = np.where(closer_below, below, above)
    return raw


def rough_calibration(rig: CameraRig, seed: int) -> CameraRig:
    """The rig as a first calibration would give it, before refinement: rotations off by up to 0.2
    degrees, centers by up to 5 mm, focal lengths by up to 0.5%. (DNA-Rendering ships such files
    next to the refined ones in ``optimized/``, which the images agree with.)"""
    rng = np.random.default_rng((seed, CALIBRATION_STREAM))
    count = len(rig)
    rotations = []
    for R in rig.R:
        axis = rng.normal(size=3)
        tilt = cv2.Rodrigues(axis / np.linalg.norm(axis) * np.radians(rng.uniform(0.05, 0.2)))[0]
        rotations.append(tilt @ R)
    rotations = np.stack(rotations)
    centers = rig.centers + rng.uniform(-0.005, 0.005, (count, 3))
    K = rig.K.copy()
    K[:, :2, :2] *= rng.uniform(0.995, 1.005, (count, 1, 1))
    return CameraRig(
        names=list(rig.names),
        K=K,
        dist=rig.dist.copy(),
        R=rotations,
        T=-np.einsum("cij,cj->ci", rotations, centers),
        height=rig.height.copy(),
        width=rig.width.copy(),
        color_curves=rig.color_curves,
    )
