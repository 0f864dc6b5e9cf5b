"""Masks of foreground-only frames (the subject on black), for captures that ship no masks.

4K4D's extractor takes ``rgb.sum > 12`` as the mask. That threshold is kept as the first step: the
codec brings flat black back within a few levels, so a channel sum above 12 (over 4 levels per
channel) is the subject. On its own it leaves holes where clothing is nearly black, and keeps specks
of codec noise on the background. Two steps fix that:

- Specks: connected pieces smaller than 1% of the largest piece are dropped (codec noise makes
  pieces of a few pixels: measured on the demo, hundreds per capture at CRF 12, thousands at CRF 25).
- Holes: a region enclosed by the subject is filled unless it is background showing through (a gap
  closed by an arm on the hip, or between the legs). Background comes back at black, fabric sits
  above it: a hole stays open when at least 30% of its pixels have a channel sum <= 3 after the
  codec (measured on the demo at CRF 12 and 25: 32-85% of a gap's pixels, 9-17% of black clothing's
  at 1-4 levels; holes of a few pixels vary more).

Dark regions open to the background (black clothing at the silhouette's edge) and clothing at
exactly the black level cannot be told from background by color, and stay out of the mask.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

LIT_THRESHOLD = 12
"""Channel sum above which a pixel is the subject (4K4D's rule; 8-bit RGB)."""
BLACK_LEVEL = 3
"""Channel sum at or below which a pixel is background black after the codec."""
MAX_BLACK_FRACTION = 0.3
"""A hole with at least this fraction of black pixels is background and stays unfilled."""
MIN_PIECE_FRACTION = 0.01
"""Pieces smaller than this fraction of the largest piece are codec specks."""
RULE = f"sum>{LIT_THRESHOLD}, pieces>={MIN_PIECE_FRACTION:g}, holes<{MAX_BLACK_FRACTION:g} at <={BLACK_LEVEL}"
"""The derivation's settings, recorded with derived masks so that a change re-derives them."""


def lit_pixels(rgb: np.ndarray) -> np.ndarray:
    """4K4D's published mask of a foreground-only RGB frame: channel sum above ``LIT_THRESHOLD``."""
    return rgb.astype(np.int32).sum(axis=-1) > LIT_THRESHOLD


def foreground_mask(rgb: np.ndarray) -> np.ndarray:
    """The subject's mask [H,W] (bool) in a foreground-only RGB uint8 frame [H,W,3] (see the module notes)."""
    brightness = rgb.astype(np.int32).sum(axis=-1)
    pieces, count = ndimage.label(brightness > LIT_THRESHOLD)
    if count == 0:
        return np.zeros(brightness.shape, dtype=bool)
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0
    mask = (sizes >= MIN_PIECE_FRACTION * sizes.max())[pieces]
    holes, count = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
    if count:
        black = np.asarray(ndimage.mean(brightness <= BLACK_LEVEL, holes, np.arange(1, count + 1)))
        mask |= np.concatenate([[False], black < MAX_BLACK_FRACTION])[holes]
    return mask
