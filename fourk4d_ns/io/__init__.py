"""Low-level file helpers every layer uses: atomic writes, user errors, images and masks, PLY files,
video writing and progress bars. Nothing here knows about the model, nerfstudio or capture layouts."""

CAPTURE_CACHE_FOLDER = "fourk4d"
"""Everything the project derives from a capture (decoded frames, resized images, carving) lives in
this sub-folder of the capture."""
