"""Building the fourk4d pipeline: carving sees exactly the training views, network initialization
depends on the seed alone, and LPIPS stays out of checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch
from conftest import build_pipeline


def network_state(pipeline) -> dict[str, torch.Tensor]:
    """The model's initialized tensors except the carved points (random generators' states left out)."""
    return {k: v for k, v in pipeline.model.state_dict().items() if ".points." not in k and isinstance(v, torch.Tensor)}


def test_initialization_depends_on_the_seed_not_on_the_carving_cache(tiny_demo_copy: Path):
    first = network_state(build_pipeline(tiny_demo_copy, seed=5))  # carves (cache miss)
    assert (tiny_demo_copy / "fourk4d" / "carve" / "carve.json").is_file()
    again = network_state(build_pipeline(tiny_demo_copy, seed=5))  # reuses the cache
    other = network_state(build_pipeline(tiny_demo_copy, seed=6))
    assert first.keys() == again.keys()
    for key in first:
        assert torch.equal(first[key], again[key]), key
    planes = [k for k in first if ".field." in k]
    assert planes and not all(torch.equal(first[k], other[k]) for k in planes), "--machine.seed must matter"


def test_carving_sees_exactly_the_training_views(tiny_demo_copy: Path):
    # Cameras 05 and 07 are not selected, 06 is held out by the capture's split.json; every other frame.
    pipeline = build_pipeline(tiny_demo_copy, cameras=("00", "01", "02", "03", "04", "06"), frame_step=2)
    carved = pipeline.datamanager.train_dataparser_outputs.metadata["carving"]
    assert carved.summary["cameras"] == ["00", "01", "02", "03", "04"]
    assert carved.frame_names == ["000000", "000002"]
    assert pipeline.model.core.num_frames == 2


def test_lpips_is_not_part_of_the_model_state(tiny_demo_copy: Path, monkeypatch):
    class FakeLpips(torch.nn.Module):
        """Stands in for torchmetrics' LPIPS (whose VGG weights cannot be downloaded here)."""

        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1))

        def forward(self, image, target):
            return self.weight * (image - target).abs().mean()

    import fourk4d_ns.integration.lpips as lpips

    monkeypatch.setattr(lpips, "load_lpips", FakeLpips)
    pipeline = build_pipeline(tiny_demo_copy)
    keys = set(pipeline.model.state_dict())
    camera, batch = pipeline.datamanager.next_train(0)
    pipeline.model.train()
    losses = pipeline.model.get_loss_dict(pipeline.model(camera), batch)
    assert "lpips_loss" in losses  # the metric is in use ...
    assert set(pipeline.model.state_dict()) == keys  # ... and not in the checkpoint
    assert not any("lpips" in key for key in pipeline.state_dict())
