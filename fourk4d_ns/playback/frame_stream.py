"""Frames of a baked sequence streamed from disk through a bounded cache.

``FrameStream.get(f)`` returns frame f on the target device. At most ``capacity`` frames are held
(least recently used evicted first), and after each request the next ``prefetch`` frames (in
playback order, wrapping at the end) are loaded by a background thread, so playing forward rarely
waits on the disk and a sequence larger than memory still plays.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from .bake_format import BakedFrame, BakeManifest, read_frame, read_manifest


class FrameStream:
    """A bounded, prefetching cache of the frames of one bake folder."""

    def __init__(
        self,
        folder: Path,
        device: torch.device | str = "cpu",
        capacity: int = 8,
        prefetch: int = 2,
        verify: str = "checksum",
        manifest: BakeManifest | None = None,
    ) -> None:
        """
        Args:
            folder: the bake folder.
            device: where frames are returned.
            capacity: most frames held at once (cached and in flight), at least 1.
            prefetch: frames to load ahead of each request (kept below ``capacity``).
            verify: "checksum" (SHA-256 of every frame file read) or "size" (sizes only; faster).
        """
        self.folder = Path(folder)
        self.manifest = manifest if manifest is not None else read_manifest(self.folder)
        self.device = torch.device(device)
        self.capacity = max(1, int(capacity))
        self.prefetch = max(0, min(int(prefetch), self.capacity - 1))
        self.verify = verify
        self._frames: OrderedDict[int, Future] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fourk4d-frames")
        self.loads = 0
        """Frames read from disk so far."""

    @property
    def num_frames(self) -> int:
        return self.manifest.num_frames

    def _load(self, frame: int) -> BakedFrame:
        baked = read_frame(self.folder, self.manifest, frame, self.verify)
        self.loads += 1
        if self.device.type == "cuda":
            return baked.to(self.device, non_blocking=False)
        return baked

    def _request(self, frame: int) -> Future:
        """The frame's future, queued if absent; evicts least recently used frames beyond capacity."""
        with self._lock:
            future = self._frames.get(frame)
            if future is None:
                future = self._pool.submit(self._load, frame)
                self._frames[frame] = future
            self._frames.move_to_end(frame)
            while len(self._frames) > self.capacity:
                self._frames.popitem(last=False)
            return future

    def get(self, frame: int) -> BakedFrame:
        """Frame ``frame`` (waits for it if needed) and queues the next ones."""
        frame = int(frame)
        if not 0 <= frame < self.num_frames:
            raise IndexError(f"frame {frame} out of range (the bake has {self.num_frames} frames)")
        future = self._request(frame)
        for ahead in range(1, self.prefetch + 1):
            self._request((frame + ahead) % self.num_frames)
        with self._lock:  # the requested frame is the most recent again
            if frame in self._frames:
                self._frames.move_to_end(frame)
        try:
            return future.result()
        except BaseException:
            with self._lock:
                if self._frames.get(frame) is future:
                    del self._frames[frame]
            raise

    def cached_frames(self) -> list[int]:
        """Frames held or in flight, least recently used first."""
        with self._lock:
            return list(self._frames)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._frames.clear()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
