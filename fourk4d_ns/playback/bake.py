"""Baking a trained ``FourK4DCore``: per frame, everything a novel view needs except the blend.

The blend logit of a (point, source camera) pair depends on the point's features and the source's
CNN features and color at the point's projection, never on the target view (METHOD.md section 5),
so computing it once for every training camera is exact: at render time, picking S cameras and
softmaxing their baked logits gives what the model computes with those S sources. The same holds
for the visibility test (a property of the point and the source, folded into the baked logit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from fourk4d_ns.core.ibr import SourceViews, sample_sources
from fourk4d_ns.core.point_model import FourK4DCore

from .bake_format import BakedFrame


@torch.no_grad()
def bake_frame(core: FourK4DCore, frame: int, sources: SourceViews, camera_chunk: int = 8) -> BakedFrame:
    """Per-point quantities of ``frame`` in float32, with ``ibr`` [C, N, 4] for the C ``sources``.

    ``sources`` are all baked cameras of this frame, in the order the manifest lists them; the CNN
    runs on ``camera_chunk`` of them at a time to bound memory.
    """
    xyz, _ = core.positions(frame)
    out = core.point_outputs(xyz, core.time_of(frame))
    depth_maps = core.source_depth_maps(frame, xyz, out.radius, sources)
    ibr = []
    for start in range(0, len(sources), max(1, camera_chunk)):
        chunk = sources.select(range(start, min(start + camera_chunk, len(sources))))
        images = chunk.image_list(xyz.device)
        maps = core.source_feature_maps(chunk, train_cnn=False)
        samples = sample_sources(xyz, chunk, images, maps)  # [S, N, 11]
        chunk_depths = None if depth_maps is None else depth_maps[start : start + len(chunk)]
        logits = core.source_logits(xyz, out.features, samples, chunk, chunk_depths)
        ibr.append(torch.cat([samples[..., -3:], logits[..., None]], dim=-1))
    return BakedFrame(xyz=xyz, radius=out.radius, density=out.density, sh=out.sh, ibr=torch.cat(ibr))


def bake_frames(
    core: FourK4DCore,
    sources_of: Callable[[int], SourceViews],
    frames: Sequence[int] | None = None,
    camera_chunk: int = 8,
) -> Iterator[BakedFrame]:
    """Bakes frames one at a time (a generator, for ``write_bake``); ``sources_of(f)`` gives frame
    f's views of every baked camera."""
    for frame in range(core.num_frames) if frames is None else frames:
        yield bake_frame(core, frame, sources_of(frame), camera_chunk)
