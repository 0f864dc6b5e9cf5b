"""The demo capture written the way public captures are (``--flavor``), from the same renders.

```
easymocap      images/<cam>/<frame>.png         masks/<cam>/<frame>.png 0/255
               intri.yml: K_, dist_ (1x5), H_, W_; extri.yml: R_ (Rodrigues), T_
dna-rendering  images_calib/<cam>/<frame>.jpg   the color-corrected images
               images/<cam>/<frame>.jpg         the raw ones: ccm_<cam> applied to them gives images_calib/
               masks/<cam>/<frame>.jpg          one channel, 0/255 with soft (anti-aliased) edges
               two image sizes: every 4th camera (03, 07, ...) larger, at DNA-Rendering's 12 MP aspect
               intri.yml: K_, D_ (5x1), H_, W_, ccm_ (3x3); extri.yml: R_ and Rot_ (both, as EasyVolcap), T_
               the refined cameras in optimized/, a rough calibration (off by <= 0.2 degree, 5 mm) at the top
zju-mocap      images/<cam>/<frame>.jpg         mask/<cam>/<frame>.png 0/1
               schp/<cam>/<frame>.png           palette PNG of LIP labels (non-zero: the person)
               intri.yml without H_/W_ (EasyMocap spelling: dist_, R_)
nhr            images/<cam>/<frame>.jpg         mask/<cam>/<frame>.jpg three channels, 0/255
```
Every flavour keeps the demo's ``split.json`` and ``demo.json``. JPEGs are written at quality 95
with OpenCV's default 4:2:0 chroma, as cameras and conversion scripts write them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from dataparsers.easymocap_cameras import CameraRig, write_cameras
from fourk4d_ns.demo.human_parsing import part_label_map, write_label_map
from fourk4d_ns.demo.imperfections import color_calibration, rough_calibration, uncorrected_image
from fourk4d_ns.demo.render import RenderedView
from fourk4d_ns.demo.rig import RigLayout
from fourk4d_ns.io.images import apply_color_curves, read_image, write_image_atomic

Flavor = Literal["easymocap", "dna-rendering", "zju-mocap", "nhr"]
FLAVORS: tuple[str, ...] = ("easymocap", "dna-rendering", "zju-mocap", "nhr")

FOLDERS: dict[str, tuple[str, ...]] = {
    "easymocap": ("images", "masks"),
    "dna-rendering": ("images", "images_calib", "masks"),
    "zju-mocap": ("images", "mask", "schp"),
    "nhr": ("images", "mask"),
}
"""The per-camera folders each flavour writes."""

JPEG_PARAMS = (cv2.IMWRITE_JPEG_QUALITY, 95)
LARGE_CAMERA_EVERY = 4
"""In the dna-rendering flavour, cameras 03, 07, 11, ... are the larger ones (training and held-out alike)."""
DNA_RENDERING_ASPECTS = ((2048, 2448), (3000, 4096))
"""(height, width) of DNA-Rendering's 5 MP and 12 MP cameras; the demo keeps their aspect ratios."""


def camera_sizes(flavor: Flavor, layout: RigLayout) -> np.ndarray | None:
    """(height, width) [C,2] of every camera when the flavour has its own sizes, else None (the layout's).

    dna-rendering: most cameras at the layout's height with the 5 MP cameras' aspect ratio, every
    ``LARGE_CAMERA_EVERY``-th camera larger by DNA-Rendering's 3000/2048 with the 12 MP aspect ratio.
    """
    if flavor != "dna-rendering":
        return None
    (small_h, small_w), (large_h, large_w) = DNA_RENDERING_ASPECTS
    height = layout.height
    small = (height, round(height * small_w / small_h))
    large = (round(height * large_h / small_h), round(height * large_w / small_h))
    count = layout.train_cameras + layout.test_cameras
    return np.array([large if i % LARGE_CAMERA_EVERY == LARGE_CAMERA_EVERY - 1 else small for i in range(count)])


class FlavorWriter:
    """Writes one flavour's camera files and, view by view, its image and mask files into a capture folder."""

    def __init__(self, scene: Path, flavor: Flavor, rig: CameraRig, part_names: list[str], seed: int):
        if flavor not in FOLDERS:
            raise ValueError(f"unknown flavor {flavor!r}; choose one of {', '.join(FLAVORS)}")
        self.scene = Path(scene)
        self.flavor = flavor
        self.rig = rig
        self.part_names = part_names
        self.seed = seed
        self.ccm = color_calibration(len(rig), seed) if flavor == "dna-rendering" else None
        self._camera_index = {name: i for i, name in enumerate(rig.names)}
        for folder in FOLDERS[flavor]:
            for name in rig.names:
                (self.scene / folder / name).mkdir(parents=True)

    def write_cameras(self) -> None:
        """intri.yml and extri.yml (and optimized/) in the flavour's spelling."""
        rig = self.rig
        if self.flavor == "zju-mocap":
            unsized = rig.select(range(len(rig)))
            unsized.height, unsized.width = np.zeros_like(rig.height), np.zeros_like(rig.width)
            write_cameras(self.scene, unsized)
        elif self.flavor == "dna-rendering":
            rig = dataclasses.replace(rig, color_curves=self.ccm)
            for folder, cameras in ((self.scene, rough_calibration(rig, self.seed)), (self.scene / "optimized", rig)):
                folder.mkdir(exist_ok=True)
                write_cameras(
                    folder,
                    cameras,
                    spelling="easyvolcap",
                    extri_extra={f"R_{n}": cv2.Rodrigues(cameras.R[i])[0] for i, n in enumerate(rig.names)},
                )
        else:
            write_cameras(self.scene, rig)

    def write_view(self, camera: str, frame: str, view: RenderedView) -> None:
        """The files of one camera at one frame."""
        scene, flavor = self.scene, self.flavor
        if flavor == "easymocap":
            write_image_atomic(scene / "images" / camera / f"{frame}.png", view.rgb)
            write_image_atomic(scene / "masks" / camera / f"{frame}.png", view.mask)
        elif flavor == "dna-rendering":
            ccm = self.ccm[self._camera_index[camera]]
            raw_path = scene / "images" / camera / f"{frame}.jpg"
            write_image_atomic(raw_path, uncorrected_image(view.rgb, ccm), JPEG_PARAMS)
            # As the dataset's conversion does: the calibrated image is computed from the raw file's pixels.
            calibrated = apply_color_curves(read_image(raw_path), ccm)
            write_image_atomic(scene / "images_calib" / camera / f"{frame}.jpg", calibrated, JPEG_PARAMS)
            matte = np.round(view.coverage * 255.0).astype(np.uint8)
            write_image_atomic(scene / "masks" / camera / f"{frame}.jpg", matte, JPEG_PARAMS)
        elif flavor == "zju-mocap":
            write_image_atomic(scene / "images" / camera / f"{frame}.jpg", view.rgb, JPEG_PARAMS)
            write_image_atomic(scene / "mask" / camera / f"{frame}.png", (view.mask > 0).astype(np.uint8))
            write_label_map(scene / "schp" / camera / f"{frame}.png", part_label_map(view.part, self.part_names))
        elif flavor == "nhr":
            write_image_atomic(scene / "images" / camera / f"{frame}.jpg", view.rgb, JPEG_PARAMS)
            mask = np.repeat(view.mask[:, :, None], 3, axis=2)
            write_image_atomic(scene / "mask" / camera / f"{frame}.jpg", mask, JPEG_PARAMS)
