"""Readers of multi-view capture layouts into nerfstudio ``DataparserOutputs``.

Importing this package does not import nerfstudio: ``easymocap_cameras`` and ``easymocap_layout``
are plain NumPy/OpenCV readers that other tools (the demo generator, fourk4d-orbit-path) reuse.
"""
