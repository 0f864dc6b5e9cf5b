"""``fourk4d-render``: free-viewpoint videos of a baked sequence.

Modes (the views users of 4D methods expect):

- ``orbit``: the camera circles the subject while time runs (one pass through the sequence);
- ``bullet-time``: time frozen at ``--frame`` while the camera circles the subject;
- ``fixed-view``: one capture camera (``--camera``, default the first held-out one) while time runs;
- ``camera-path``: a nerfstudio camera path JSON (from the viewer or ``fourk4d-orbit-path``);
  when every keyframe has a ``render_time`` in [0, 1] it picks the frame, else the sequence plays in order.

Everything renders from the bake (``fourk4d-bake``; written automatically after training) with the
fused renderer; the mp4 is encoded with PyAV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from fourk4d_ns.cli.common import CommandOptions, run_command
from fourk4d_ns.io.errors import InputError
from fourk4d_ns.io.progress import track
from fourk4d_ns.io.video import write_video
from fourk4d_ns.playback.bake_format import BakeManifest, find_bake
from fourk4d_ns.playback.baked_renderer import BakedRenderer
from fourk4d_ns.playback.views import View, fixed_views, orbit_views

Mode = Literal["orbit", "bullet-time", "fixed-view", "camera-path"]


@dataclass
class RenderCommand(CommandOptions):
    """Render a free-viewpoint video (orbit, bullet time, fixed view or a camera path) of a baked run."""

    mode: Mode = "orbit"
    """orbit, bullet-time, fixed-view or camera-path."""
    load_config: Path | None = None
    """config.yml of the run (its bake is bake/ next to it)."""
    bake: Path | None = None
    """Bake folder (instead of --load-config)."""
    output: Path | None = None
    """mp4 to write (default: renders/<mode>.mp4 next to the bake)."""
    camera_path_filename: Path | None = None
    """nerfstudio camera path JSON (camera-path mode)."""
    camera: str | None = None
    """Capture camera of fixed-view mode (default: the first held-out camera)."""
    frame: int = 0
    """Frozen frame of bullet-time mode."""
    frames: int | None = None
    """Video frames of orbit / bullet-time (default: the sequence's frame count, at least 60 for bullet time)."""
    turns: float = 1.0
    """Turns around the subject (orbit, bullet-time)."""
    height: int | None = None
    """Image height (default 512 for orbits; the camera's own for fixed-view)."""
    aspect: float = 1.0
    """Width / height of orbit and bullet-time videos."""
    fps: float | None = None
    """Video frame rate (default: the capture's, from the bake)."""
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Background color, RGB in [0, 1]."""
    num_sources: int | None = None
    """Baked cameras blended per view (default: as trained)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """cpu, cuda or auto."""
    verify: Literal["checksum", "size"] = "checksum"
    """Check frame files by "checksum" (SHA-256) or "size"."""

    def views(self, manifest: BakeManifest) -> tuple[list[View], float]:
        fps = self.fps or manifest.fps
        square = self.height or 512
        width = int(round(square * self.aspect / 2)) * 2
        if self.mode == "orbit":
            return orbit_views(manifest, self.frames or manifest.num_frames, self.turns, square, width), fps
        if self.mode == "bullet-time":
            if not 0 <= self.frame < manifest.num_frames:
                raise InputError(f"--frame {self.frame} out of range (0 to {manifest.num_frames - 1})")
            count = self.frames or max(60, manifest.num_frames)
            return orbit_views(manifest, count, self.turns, square, width, frozen=self.frame), fps
        if self.mode == "fixed-view":
            return fixed_views(manifest, self.camera, self.height), fps
        if self.camera_path_filename is None:
            raise InputError("camera-path mode needs --camera-path-filename")
        from fourk4d_ns.integration.camera_paths import camera_path_views  # nerfstudio's reader, for this mode only

        views, path_fps = camera_path_views(self.camera_path_filename, manifest.num_frames)
        return views, self.fps or path_fps or manifest.fps

    def main(self) -> Path:
        folder = find_bake(self.bake, self.load_config)
        device = self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        renderer = BakedRenderer(folder, device, verify=self.verify)
        try:
            views, fps = self.views(renderer.manifest)
            background = torch.tensor(self.background, dtype=torch.float32)
            output = self.output or folder.parent / "renders" / f"{self.mode}.mp4"

            def images():
                for view in views:
                    out = renderer.render(
                        view.frame,
                        torch.from_numpy(view.K),
                        torch.from_numpy(view.R),
                        torch.from_numpy(view.T),
                        view.height,
                        view.width,
                        num_sources=self.num_sources,
                        background=background,
                    )
                    yield (out.rgb.clamp(0, 1) * 255).round().byte().cpu().numpy()

            write_video(output, track(images(), "rendering", total=len(views)), fps)
        finally:
            renderer.close()
        print(f"wrote {output} ({len(views)} frames at {fps:g} fps)")
        return output


def entrypoint(argv: Sequence[str] | None = None) -> None:
    """Console script entry point."""
    run_command(RenderCommand, "fourk4d-render", argv)


if __name__ == "__main__":
    entrypoint()
