"""fourk4d-ns: 4K4D real-time 4D view synthesis as a nerfstudio method.

The core modules (``rasterizer``, ``visual_hull``) import only torch and NumPy; the nerfstudio
integration lives in separate modules so that the core runs where nerfstudio is not installed.
"""

__version__ = "0.1.0"
