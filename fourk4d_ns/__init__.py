"""fourk4d-ns: 4K4D real-time 4D view synthesis as a nerfstudio method.

Layers, imports running downwards only (checked by the import-linter contracts in pyproject.toml):

- ``cli``: one thin module per ``fourk4d-*`` command;
- ``integration``: the nerfstudio adapters (method config, model, pipeline, datamanager, trainer);
- ``playback`` (bake, fused renderer, export), ``carving`` (visual hulls), ``demo`` (the synthetic
  capture) and the top-level ``dataparsers`` package (capture readers);
- ``core``: the model's math in torch, and the one camera module;
- ``rasterizer``: the depth-peeling index pass (C++/CUDA twins) and differentiable compositing;
- ``io``: low-level file helpers.

Everything below ``integration`` runs where only torch is installed (no nerfstudio).
"""

__version__ = "0.1.0"
