"""Frames and times: frame f of F has time f / (F - 1) in [0, 1] (0 for a single frame), as
nerfstudio's time slider and camera paths expect."""

from __future__ import annotations


def frame_time(frame, num_frames: int):
    """Time in [0, 1] of a frame index (an int, or an array or tensor of them)."""
    return frame / max(num_frames - 1, 1)


def frame_at_time(time: float, num_frames: int) -> int:
    """The frame nearest to a time (clamped to [0, 1])."""
    return int(round(min(max(float(time), 0.0), 1.0) * (num_frames - 1)))
