"""Procedural surface colors of the demo figure, evaluated in each part's rest coordinates.

Because the coordinates are the part's own (rest) frame, the patterns move with the surface as the
limbs swing: every frame shows the same material points, which is what multi-view reconstruction
of a dynamic subject relies on. Patterns have 2-5 cm periods so image metrics see fine detail.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Material:
    """How one part is colored."""

    pattern: str
    """One of ``stripes``, ``plaid``, ``rings``, ``dots``, ``face``."""
    base: tuple[float, float, float]
    """Main RGB color in [0, 1]."""
    accent: tuple[float, float, float]
    """Second RGB color of the pattern in [0, 1] (the hair, for ``face``)."""
    period: float
    """Pattern period in metres."""
    variation_phase: float = 0.0
    """Phase of the slow color variation, so parts do not look alike."""


# pattern, base hue/saturation/value, accent hue/saturation/value, period (m)
_STYLE = {
    "pelvis": ("plaid", (0.55, 0.55, 0.35), (0.12, 0.60, 0.85), 0.05),
    "torso": ("stripes", (0.60, 0.65, 0.70), (0.13, 0.15, 0.95), 0.04),
    "neck": ("dots", (0.07, 0.40, 0.85), (0.03, 0.55, 0.60), 0.025),
    "head": ("face", (0.07, 0.38, 0.90), (0.06, 0.70, 0.25), 0.01),
    "upper_arm": ("rings", (0.98, 0.70, 0.75), (0.15, 0.10, 0.95), 0.03),
    "forearm": ("rings", (0.40, 0.60, 0.65), (0.10, 0.70, 0.95), 0.025),
    "hand": ("dots", (0.07, 0.40, 0.85), (0.03, 0.55, 0.60), 0.02),
    "thigh": ("plaid", (0.62, 0.55, 0.45), (0.33, 0.45, 0.80), 0.045),
    "shin": ("stripes", (0.62, 0.50, 0.40), (0.08, 0.75, 0.90), 0.03),
    "foot": ("dots", (0.00, 0.70, 0.55), (0.16, 0.20, 0.95), 0.02),
}


def _rgb(hsv: tuple[float, float, float], hue_shift: float) -> tuple[float, float, float]:
    h, s, v = hsv
    return colorsys.hsv_to_rgb((h + hue_shift) % 1.0, s, v)


def figure_materials(part_names: list[str], rng: np.random.Generator) -> list[Material]:
    """One material per part; the seed shifts hues slightly and sets each part's variation phase."""
    materials = []
    for name in part_names:
        kind = name.removesuffix("_l").removesuffix("_r")
        pattern, base, accent, period = _STYLE[kind]
        hue_shift = rng.uniform(-0.03, 0.03)
        materials.append(
            Material(pattern, _rgb(base, hue_shift), _rgb(accent, hue_shift), period, rng.uniform(0.0, 1.0))
        )
    return materials


def _bands(coordinate: np.ndarray, period: float) -> np.ndarray:
    """Alternating 0/1 bands of the given period with slightly softened edges (in [0, 1])."""
    return 0.5 + 0.5 * np.tanh(4.0 * np.sin(2.0 * np.pi * coordinate / period))


def _mix(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return a + (b - a) * weight[:, None]


def _pattern_weight(pattern: str, p: np.ndarray, period: float) -> np.ndarray:
    """Accent weight in [0, 1] of a geometric pattern at part-frame points ``p`` [N,3]."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    if pattern == "stripes":
        # Bands along the part's axis with a thin pinstripe between them.
        return np.clip(_bands(z, period) + 0.5 * _bands(z + period / 4, period / 2) * _bands(x, 2 * period), 0, 1)
    if pattern == "plaid":
        return 0.5 * _bands(x + 0.3 * y, period) + 0.5 * _bands(z, period)
    if pattern == "rings":
        # Checks on a cylinder: rings along the axis crossed with angular sectors.
        sectors = np.arctan2(y, x) * 8.0 / (2.0 * np.pi)
        rings, wedges = _bands(z, period), _bands(sectors, 1.0)
        return rings * (1.0 - wedges) + wedges * (1.0 - rings)
    if pattern == "dots":
        offset = p / period - np.round(p / period)
        distance = np.linalg.norm(offset, axis=1)
        return np.clip((0.32 - distance) / 0.06, 0.0, 1.0)
    raise ValueError(f"unknown pattern {pattern!r}")


def _face(p: np.ndarray, skin: np.ndarray, hair: np.ndarray) -> np.ndarray:
    """Skin with eyes, brows, mouth and cheeks on the front (-y) and striped hair on top and back."""
    u = p / np.linalg.norm(p, axis=1, keepdims=True)
    ux, uy, uz = u[:, 0], u[:, 1], u[:, 2]
    color = np.broadcast_to(skin, p.shape).copy()
    color *= (0.94 + 0.06 * _bands(p[:, 0] + p[:, 2], 0.02))[:, None]  # fine skin grain

    cheeks = np.exp(-(((np.abs(ux) - 0.45) / 0.18) ** 2 + ((uz + 0.15) / 0.15) ** 2)) * (uy < 0)
    color = _mix(color, np.array([0.85, 0.45, 0.45]), 0.5 * cheeks)
    mouth = (uy < -0.6) & (np.abs(ux) < 0.28) & (np.abs(uz + 0.42 + 0.25 * ux**2) < 0.06)
    color[mouth] = (0.55, 0.12, 0.15)
    for side in (-1.0, 1.0):
        eye = np.array([0.36 * side, -0.88, 0.22])
        eye /= np.linalg.norm(eye)
        distance = np.linalg.norm(u - eye, axis=1)
        color[distance < 0.15] = (0.95, 0.95, 0.92)
        color[distance < 0.07] = (0.10, 0.20, 0.35)
        brow = (uy < -0.5) & (np.abs(ux - 0.36 * side) < 0.16) & (np.abs(uz - 0.42) < 0.035)
        color[brow] = (0.20, 0.12, 0.08)
    nose = np.exp(-((ux / 0.08) ** 2 + ((uz + 0.08) / 0.12) ** 2)) * (uy < 0)
    color *= (1.0 - 0.25 * nose)[:, None]

    hairline = uz > 0.5 - 0.9 * np.maximum(uy, 0.0)
    strands = 0.75 + 0.25 * _bands(np.arctan2(ux, uy) * 5.0, 1.0)  # ~2 cm strands
    color[hairline] = hair * strands[hairline, None]
    return color


def albedo(texture_coords: np.ndarray, part_index: np.ndarray, materials: list[Material]) -> np.ndarray:
    """Surface color [N,3] in [0, 1] at part-frame points ``texture_coords`` [N,3] of parts ``part_index`` [N]."""
    color = np.zeros((len(texture_coords), 3))
    for index, material in enumerate(materials):
        selected = part_index == index
        if not selected.any():
            continue
        p = texture_coords[selected]
        base, accent = np.asarray(material.base), np.asarray(material.accent)
        if material.pattern == "face":
            part_color = _face(p, base, accent)
        else:
            part_color = _mix(
                np.broadcast_to(base, p.shape), accent, _pattern_weight(material.pattern, p, material.period)
            )
        # Slow, smooth color drift over the part (tens of centimetres), different per channel.
        phase = 2.0 * np.pi * material.variation_phase
        drift = np.stack(
            [
                np.sin(p @ np.array([9.0, 4.0, 6.0]) + phase),
                np.sin(p @ np.array([-5.0, 8.0, 7.0]) + 2.0 * phase),
                np.sin(p @ np.array([6.0, -7.0, 5.0]) + 3.0 * phase),
            ],
            axis=1,
        )
        color[selected] = part_color * (1.0 + 0.12 * drift)
    return np.clip(color, 0.0, 1.0)
