"""EasyMocap captures stored as one video per camera, decoded once into a frame cache.

```
<scene>/videos/<cam>.mp4                     EasyMocap's raw form (masks, if any, in masks/<cam>/)
<scene>/videos_libx265/<cam>.mp4             4K4D's minimal datasets
<scene>/videos_masks_libx265/<cam>.mp4       ... with their mask videos
```
The frames land in ``<scene>/fourk4d/frames/{images,masks}/<cam>/<frame:06d>.{jpg,png}``, which the
layout reader then treats exactly like ``images/`` and ``masks/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dataparsers.video_cache import DecodedVideos, FrameFormat, common_frame_count, decode_videos
from dataparsers.video_frames import VIDEO_SUFFIXES, holds_videos, list_videos
from fourk4d_ns.io.errors import CaptureError

VIDEO_FOLDER_PREFIX = "videos"
MASK_VIDEO_FOLDER_PREFIX = "videos_mask"


@dataclass(frozen=True)
class DecodedCapture:
    """Image and mask folders to read after decoding whichever of them were videos."""

    images: Path
    """Image folder (``<cam>/<frame>`` files)."""
    masks: Path | None
    """Mask folder, or None when the capture has none."""
    num_frames: int | None
    """When the images came from videos: the frames every camera has (the shortest video's length)."""


def find_video_folder(scene: Path, masks: bool) -> Path | None:
    """The capture's folder of image videos (``videos/`` first, then other ``videos*/`` by name) or,
    with ``masks``, of mask videos (``videos_masks/`` first, then other ``videos_mask*/``)."""
    folders = [p for p in sorted(Path(scene).iterdir()) if p.is_dir() and p.name.startswith(VIDEO_FOLDER_PREFIX)]
    folders = [p for p in folders if p.name.startswith(MASK_VIDEO_FOLDER_PREFIX) == masks]
    folders.sort(key=lambda p: p.name not in ("videos", "videos_masks"))  # stable: then by name
    return next((p for p in folders if holds_videos(p)), None)


def camera_videos(folder: Path, cameras: Sequence[str]) -> dict[str, Path]:
    """The video of every camera (file stem = camera name); a camera without one is an error."""
    videos = list_videos(folder)
    missing = [name for name in cameras if name not in videos]
    if missing:
        raise CaptureError(folder, f"no video for cameras {missing[:5]} (expected <camera>{'|'.join(VIDEO_SUFFIXES)})")
    return {name: videos[name] for name in cameras}


def decode_capture_videos(
    cache: Path,
    image_folder: Path,
    mask_folder: Path | None,
    cameras: Sequence[str],
    frame_format: FrameFormat | None = None,
    progress: bool = True,
) -> DecodedCapture:
    """Decode the selected cameras' videos of whichever folder holds videos into ``cache/images`` and
    ``cache/masks``; folders of images are passed through unchanged.

    Videos of different lengths: the common prefix of the image and mask videos is used, with a
    warning naming every camera and its count (see ``common_frame_count``).
    """
    decoded: list[DecodedVideos] = []
    if holds_videos(image_folder):
        images = decode_videos(
            camera_videos(image_folder, cameras), cache / "images", "image", frame_format, progress=progress
        )
        decoded.append(images)
        image_folder = images.root
    images_decoded = bool(decoded)
    if mask_folder is not None and holds_videos(mask_folder):
        masks = decode_videos(camera_videos(mask_folder, cameras), cache / "masks", "mask", progress=progress)
        decoded.append(masks)
        mask_folder = masks.root
    num_frames = common_frame_count(decoded) if images_decoded else None
    return DecodedCapture(image_folder, mask_folder, num_frames)
