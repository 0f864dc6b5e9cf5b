"""``fourk4d-render``: free-viewpoint videos of a baked sequence.

Modes (the views users of 4D methods expect):

- ``orbit``: the camera circles the subject while time runs (one pass through the sequence);
- ``bullet-time``: time frozen at ``--frame`` while the camera circles the subject;
- ``fixed-view``: one capture camera (``--camera``, default the first held-out one) while time runs;
- ``camera-path``: a nerfstudio camera path JSON (from the viewer or ``fourk4d-orbit-path``);
  keyframes with ``render_time`` in [0, 1] pick the frame, others play the sequence in order.

Everything renders from the bake (``fourk4d-bake``; written automatically after training) with the
fused renderer; the mp4 is encoded with PyAV.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Tuple

import numpy as np
import torch
import tyro
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dataparsers.atomic import atomic_path
from fourk4d_ns.bake_cli import bake_folder_of
from fourk4d_ns.camera_path import orbit_keyframes
from fourk4d_ns.playback.bake_format import BakeManifest
from fourk4d_ns.playback.baked_renderer import BakedRenderer

OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


Mode = Literal["orbit", "bullet-time", "fixed-view", "camera-path"]


@dataclass
class View:
    """One video frame: a camera (OpenCV K, R, T), an image size and a sequence frame."""

    K: np.ndarray
    R: np.ndarray
    T: np.ndarray
    height: int
    width: int
    frame: int


def opencv_from_c2w(c2w: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R, T) in OpenCV axes of an OpenGL camera-to-world [3 or 4, 4]."""
    c2w = np.asarray(c2w, dtype=np.float64).reshape(-1, 4)[:3]
    R = (c2w[:, :3] @ OPENGL_TO_OPENCV).T
    return R, -R @ c2w[:, 3]


def intrinsics(fov_degrees: float, height: int, width: int) -> np.ndarray:
    """Pinhole K with the given vertical field of view, square pixels, centred principal point."""
    fy = 0.5 * height / np.tan(np.radians(fov_degrees) / 2)
    return np.array([[fy, 0, width / 2], [0, fy, height / 2], [0, 0, 1]])


def frame_at(time: Optional[float], index: int, count: int, num_frames: int) -> int:
    """Sequence frame of video frame ``index`` of ``count``: from a render time in [0, 1] when given."""
    if time is None:
        time = index / max(count - 1, 1)
    return int(round(min(max(float(time), 0.0), 1.0) * (num_frames - 1)))


def keyframe_views(keyframes: list[dict], height: int, width: int, num_frames: int,
                   frozen: Optional[int] = None) -> list[View]:
    views = []
    for i, key in enumerate(keyframes):
        R, T = opencv_from_c2w(np.asarray(key["camera_to_world"]))
        frame = frozen if frozen is not None else frame_at(key.get("render_time"), i, len(keyframes), num_frames)
        views.append(View(intrinsics(float(key["fov"]), height, width), R, T, height, width, frame))
    return views


def orbit_views(manifest: BakeManifest, count: int, turns: float, height: int, width: int,
                frozen: Optional[int] = None) -> list[View]:
    """An orbit around the subject at the rig's distance and height (time runs unless ``frozen``)."""
    cams = manifest.cameras
    R = np.array([c.R for c in cams])
    T = np.array([c.T for c in cams])
    centers = -np.einsum("cji,cj->ci", R, T)
    fy = np.array([c.K[1][1] for c in cams])
    heights = np.array([c.height for c in cams])
    keys = orbit_keyframes(R, centers, fy, heights, np.asarray(manifest.bounds), count, turns, width / height)
    return keyframe_views(keys, height, width, manifest.num_frames, frozen)


def fixed_views(manifest: BakeManifest, camera: Optional[str], height: Optional[int]) -> list[View]:
    """A capture camera (default: the first held-out one) at every frame, scaled to ``height``."""
    if camera is None:
        held_out = [c for c in manifest.cameras if not c.baked]
        chosen = held_out[0] if held_out else manifest.cameras[0]
    else:
        chosen = manifest.camera_named(camera)
    scale = 1.0 if height is None else height / chosen.height
    K = np.array(chosen.K) * np.array([[scale], [scale], [1.0]])
    h, w = round(chosen.height * scale), round(chosen.width * scale)
    return [View(K, np.array(chosen.R), np.array(chosen.T), h, w, f) for f in range(manifest.num_frames)]


def camera_path_views(path: Path, num_frames: int) -> Tuple[list[View], Optional[float]]:
    """Views of a nerfstudio camera path JSON and its fps."""
    try:
        data = json.loads(Path(path).read_text())
        height, width = int(data["render_height"]), int(data["render_width"])
        keyframes = data["camera_path"]
        if data.get("camera_type", "perspective") != "perspective":
            raise ValueError(f"camera_type {data['camera_type']!r} (only perspective is supported)")
        views = keyframe_views(keyframes, height, width, num_frames)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such camera path file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a usable nerfstudio camera path ({exc})") from None
    return views, data.get("fps")


def write_video(path: Path, frames, count: int, fps: float, quiet: bool = False) -> None:
    """Encodes [H, W, 3] uint8 frames as H.264 mp4 (atomically), with a progress bar."""
    import av

    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = None
        with Progress(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      disable=quiet) as progress:
            task = progress.add_task("render", total=count)
            for image in frames:
                if stream is None:
                    stream = container.add_stream("libx264", rate=round(fps))
                    stream.height, stream.width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
                    stream.pix_fmt = "yuv420p"
                frame = av.VideoFrame.from_ndarray(image[: stream.height, : stream.width], format="rgb24")
                container.mux(stream.encode(frame))
                progress.advance(task)
        if stream is not None:
            container.mux(stream.encode())


@dataclass
class RenderCommand:
    """Render a free-viewpoint video (orbit, bullet time, fixed view or a camera path) of a baked run."""

    mode: Mode = "orbit"
    """orbit, bullet-time, fixed-view or camera-path."""
    load_config: Optional[Path] = None
    """config.yml of the run (its bake is bake/ next to it)."""
    bake: Optional[Path] = None
    """Bake folder (instead of --load-config)."""
    output: Optional[Path] = None
    """mp4 to write (default: renders/<mode>.mp4 next to the bake)."""
    camera_path_filename: Optional[Path] = None
    """nerfstudio camera path JSON (camera-path mode)."""
    camera: Optional[str] = None
    """Capture camera of fixed-view mode (default: the first held-out camera)."""
    frame: int = 0
    """Frozen frame of bullet-time mode."""
    frames: Optional[int] = None
    """Video frames of orbit / bullet-time (default: the sequence's frame count, at least 60 for bullet time)."""
    turns: float = 1.0
    """Turns around the subject (orbit, bullet-time)."""
    height: Optional[int] = None
    """Image height (default 512 for orbits; the camera's own for fixed-view)."""
    aspect: float = 1.0
    """Width / height of orbit and bullet-time videos."""
    fps: Optional[float] = None
    """Video frame rate (default: the capture's, from the bake)."""
    background: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Background colour, RGB in [0, 1]."""
    num_sources: Optional[int] = None
    """Baked cameras blended per view (default: as trained)."""
    device: str = "auto"
    """cpu, cuda or auto."""
    verify: str = "checksum"
    """Check frame files by "checksum" (SHA-256) or "size"."""

    def bake_folder(self) -> Path:
        if (self.bake is None) == (self.load_config is None):
            raise ValueError("give exactly one of --bake and --load-config")
        folder = self.bake if self.bake is not None else bake_folder_of(self.load_config)
        if not (folder / "manifest.json").is_file():
            hint = f"fourk4d-bake --load-config {self.load_config}" if self.load_config else "fourk4d-bake"
            raise ValueError(f"{folder}: no baked sequence there; run {hint} first")
        return folder

    def views(self, manifest: BakeManifest) -> Tuple[list[View], float]:
        fps = self.fps or manifest.fps
        square = self.height or 512
        width = int(round(square * self.aspect / 2)) * 2
        if self.mode == "orbit":
            return orbit_views(manifest, self.frames or manifest.num_frames, self.turns, square, width), fps
        if self.mode == "bullet-time":
            if not 0 <= self.frame < manifest.num_frames:
                raise ValueError(f"--frame {self.frame} out of range (0 to {manifest.num_frames - 1})")
            count = self.frames or max(60, manifest.num_frames)
            return orbit_views(manifest, count, self.turns, square, width, frozen=self.frame), fps
        if self.mode == "fixed-view":
            return fixed_views(manifest, self.camera, self.height), fps
        if self.camera_path_filename is None:
            raise ValueError("camera-path mode needs --camera-path-filename")
        views, path_fps = camera_path_views(self.camera_path_filename, manifest.num_frames)
        return views, self.fps or path_fps or manifest.fps

    def main(self) -> Path:
        folder = self.bake_folder()
        device = self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        renderer = BakedRenderer(folder, device, verify=self.verify)
        try:
            views, fps = self.views(renderer.manifest)
            background = torch.tensor(self.background, dtype=torch.float32)
            output = self.output or folder.parent / "renders" / f"{self.mode}.mp4"

            def images():
                for view in views:
                    out = renderer.render(view.frame, torch.from_numpy(view.K), torch.from_numpy(view.R),
                                          torch.from_numpy(view.T), view.height, view.width,
                                          num_sources=self.num_sources, background=background)
                    yield (out.rgb.clamp(0, 1) * 255).round().byte().cpu().numpy()

            write_video(output, images(), len(views), fps)
        finally:
            renderer.close()
        print(f"wrote {output} ({len(views)} frames at {fps:g} fps)")
        return output


def entrypoint() -> None:
    """Console script entry point."""
    tyro.cli(RenderCommand).main()


if __name__ == "__main__":
    entrypoint()
