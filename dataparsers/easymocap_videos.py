"""EasyMocap captures stored as one video per camera, decoded once into a frame cache.

```
<scene>/videos/<cam>.mp4                     EasyMocap's raw form (masks, if any, in masks/<cam>/)
<scene>/videos_libx265/<cam>.mp4             4K4D's minimal datasets
<scene>/videos_libx265/<cam>_N.._FH<fh>.mp4  ... as cropped videos (``video_crops``)
<scene>/videos_masks_libx265/<cam>.mp4       ... with their mask videos
```
The frames land in ``<scene>/fourk4d/frames/{images,masks}/<cam>/<frame:06d>.{jpg,png}``, which the
layout reader then treats exactly like ``images/`` and ``masks/``.

Masks are derived from the image videos (``foreground_masks``) when the capture has no mask folder
and no mask videos and its videos are 4K4D's (a ``videos_*`` folder, or cropped videos): 4K4D ships
mask videos only with full images, so its other videos are the subject on black. A mask folder
given as the image videos' own folder asks for the same with any videos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dataparsers.easymocap_cameras import CameraRig
from dataparsers.video_cache import DecodedVideos, FrameFormat, common_frame_count, decode_videos
from dataparsers.video_crops import camera_video_files, parse_video_name
from dataparsers.video_frames import VIDEO_SUFFIXES, holds_videos
from fourk4d_ns.io.errors import CaptureError

VIDEO_FOLDER_PREFIX = "videos"
MASK_VIDEO_FOLDER_PREFIX = "videos_mask"
RAW_VIDEO_FOLDER = "videos"
"""EasyMocap's raw videos: full frames with their background, never used to derive masks unasked."""


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
    """The video of every camera (``<camera>.mp4`` or a cropped video); a camera without one is an error."""
    videos = camera_video_files(folder)
    missing = [name for name in cameras if name not in videos]
    if missing:
        raise CaptureError(
            folder,
            f"no video for cameras {missing[:5]} (expected <camera>{'|'.join(VIDEO_SUFFIXES)} or a cropped video)",
        )
    return {name: videos[name] for name in cameras}


def derives_masks(image_folder: Path, mask_folder: Path | None, videos: dict[str, Path]) -> bool:
    """Whether masks come from the image videos themselves (see the module notes)."""
    if mask_folder is not None:
        return mask_folder.resolve() == image_folder.resolve()
    if image_folder.name == RAW_VIDEO_FOLDER:
        return False
    cropped = any(parse_video_name(path)[1] is not None for path in videos.values())
    return image_folder.name.startswith(f"{VIDEO_FOLDER_PREFIX}_") or cropped


def decode_capture_videos(
    cache: Path,
    image_folder: Path,
    mask_folder: Path | None,
    rig: CameraRig,
    frame_format: FrameFormat | None = None,
    progress: bool = True,
) -> DecodedCapture:
    """Decode the videos of ``rig``'s cameras in whichever folder holds videos into ``cache/images`` and
    ``cache/masks`` (masks derived from the image videos where ``derives_masks``); folders of images
    are passed through unchanged. Each camera's full frames must have its size in the camera files.

    Videos of different lengths: the common prefix of the image and mask videos is used, with a
    warning naming every camera and its count (see ``common_frame_count``).
    """
    sizes = {name: (int(h), int(w)) for name, h, w in zip(rig.names, rig.height, rig.width)}
    decoded: list[DecodedVideos] = []
    derived = False
    if holds_videos(image_folder):
        videos = camera_videos(image_folder, rig.names)
        images = decode_videos(videos, cache / "images", "image", frame_format, progress=progress, camera_sizes=sizes)
        decoded.append(images)
        derived = derives_masks(image_folder, mask_folder, videos)
        if derived:
            mask_folder = decode_videos(videos, cache / "masks", "derived-mask", progress=progress).root
        image_folder = images.root
    images_decoded = bool(decoded)
    if not derived and mask_folder is not None and holds_videos(mask_folder):
        videos = camera_videos(mask_folder, rig.names)
        masks = decode_videos(videos, cache / "masks", "mask", progress=progress, camera_sizes=sizes)
        decoded.append(masks)
        mask_folder = masks.root
    num_frames = common_frame_count(decoded) if images_decoded else None
    return DecodedCapture(image_folder, mask_folder, num_frames)
