"""The datamanager's per-frame image cache."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

import fourk4d_ns.integration.frame_cache as frame_cache
from fourk4d_ns.integration.frame_cache import FrameImageCache, ImageSource, LoadedImage


def test_an_image_loaded_by_two_threads_at_once_is_kept_and_counted_once(monkeypatch):
    both_loading = threading.Barrier(2, timeout=10)

    def slow_load(source: ImageSource) -> LoadedImage:
        both_loading.wait()  # both threads are inside the load before either stores its result
        return LoadedImage(np.zeros((4, 5, 3), np.uint8), np.ones((4, 5), bool))

    monkeypatch.setattr(frame_cache, "load_image", slow_load)
    source = ImageSource(Path("image.png"), None, np.eye(3), np.zeros(5))
    cache = FrameImageCache({(0, 0): source}, budget_bytes=1 << 20)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(0, 0))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] is results[1]
    assert cache.cached_bytes == results[0].nbytes


def test_least_recently_used_frames_are_evicted_beyond_the_budget(monkeypatch):
    image = LoadedImage(np.zeros((10, 10, 3), np.uint8), np.ones((10, 10), bool))
    monkeypatch.setattr(frame_cache, "load_image", lambda source: image)
    size = image.nbytes
    source = ImageSource(Path("image.png"), None, np.eye(3), np.zeros(5))
    sources = {(c, f): source for c in range(2) for f in range(3)}
    cache = FrameImageCache(sources, budget_bytes=2 * 2 * size)  # two frames of two cameras
    for frame in (0, 1, 0, 2):
        for camera in range(2):
            cache.get(camera, frame)
    assert cache.cached_bytes == 4 * size
    assert list(cache._frames) == [0, 2]  # frame 1 was the least recently used
