"""EasyMocap / EasyVolcap camera files (``intri.yml``, ``extri.yml``) read and written with OpenCV.

Conventions (METHOD.md section 6): OpenCV world-to-camera ``x_cam = R X + T`` (y down, z forward),
distortion in OpenCV order (k1, k2, p1, p2, k3). Both spellings are understood:
EasyMocap writes ``dist_`` (1x5) and ``R_`` (3x1 Rodrigues), EasyVolcap ``D_`` (5x1) and ``Rot_`` (3x3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from fourk4d_ns.core.camera import camera_center, viewing_bounds
from fourk4d_ns.io.atomic import atomic_path
from fourk4d_ns.io.errors import CaptureError


@dataclass
class CameraRig:
    """Calibrated cameras, ordered by name (sorted as strings)."""

    names: list[str]
    """Camera names, as in the files' ``names`` list."""
    K: np.ndarray
    """Intrinsics [C,3,3]."""
    dist: np.ndarray
    """OpenCV distortion (k1, k2, p1, p2, k3) [C,5]."""
    R: np.ndarray
    """World-to-camera rotations [C,3,3]."""
    T: np.ndarray
    """World-to-camera translations [C,3]."""
    height: np.ndarray
    """Image heights [C] from ``H_`` (0 where the file has none)."""
    width: np.ndarray
    """Image widths [C] from ``W_`` (0 where the file has none)."""

    def __len__(self) -> int:
        return len(self.names)

    @property
    def centers(self) -> np.ndarray:
        """Camera centers in world coordinates [C,3]."""
        return camera_center(self.R, self.T)

    def viewing_bounds(self) -> np.ndarray:
        """A box [2,3] that every camera frames (``core.camera.viewing_bounds``)."""
        return viewing_bounds(self.K, self.R, self.T, self.height, self.width)

    def select(self, indices: Sequence[int]) -> CameraRig:
        """The sub-rig of the given camera indices, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return CameraRig(
            names=[self.names[i] for i in idx],
            K=self.K[idx],
            dist=self.dist[idx],
            R=self.R[idx],
            T=self.T[idx],
            height=self.height[idx],
            width=self.width[idx],
        )


def camera_files(scene: Path) -> tuple[Path, Path]:
    """The ``intri.yml``/``extri.yml`` pair of a scene, preferring the refined ``optimized/`` ones."""
    optimized = scene / "optimized"
    if (optimized / "intri.yml").is_file() and (optimized / "extri.yml").is_file():
        return optimized / "intri.yml", optimized / "extri.yml"
    return scene / "intri.yml", scene / "extri.yml"


def _open(path: Path) -> cv2.FileStorage:
    if not path.is_file():
        raise CaptureError(path, "camera file not found")
    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except Exception as err:  # OpenCV raises cv2.error or SystemError on YAML it cannot parse
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise CaptureError(path, f"not a readable OpenCV YAML file ({reason})") from None
    if not storage.isOpened():
        raise CaptureError(path, "not a readable OpenCV YAML file")
    return storage


def _names(storage: cv2.FileStorage, path: Path) -> list[str] | None:
    node = storage.getNode("names")
    if node.empty():
        return None
    if not node.isSeq():
        raise CaptureError(path, "`names` must be a list of camera names")
    names = []
    for i in range(node.size()):
        item = node.at(i)
        names.append(item.string() if item.isString() else str(int(item.real())))
    return names


def _matrix(storage: cv2.FileStorage, key: str) -> np.ndarray | None:
    node = storage.getNode(key)
    if node.empty():
        return None
    if node.isInt() or node.isReal():
        return np.array([[node.real()]])
    mat = node.mat()
    return None if mat is None else np.asarray(mat, dtype=np.float64)


def _scalar(storage: cv2.FileStorage, key: str) -> int:
    node = storage.getNode(key)
    if node.empty():
        return 0
    if node.isInt() or node.isReal():
        return int(round(node.real()))
    mat = node.mat()
    return 0 if mat is None else int(round(float(np.asarray(mat).ravel()[0])))


def _require(
    storage: cv2.FileStorage, path: Path, name: str, keys: Sequence[str], shapes: Sequence[int]
) -> tuple[str, np.ndarray]:
    """The first of ``keys`` present for a camera, checked to hold one of the allowed sizes."""
    for key in keys:
        value = _matrix(storage, f"{key}{name}")
        if value is not None:
            if value.size not in shapes:
                raise CaptureError(
                    path, f"`{key}{name}` has {value.size} values, expected {' or '.join(map(str, shapes))}"
                )
            if not np.all(np.isfinite(value)):
                raise CaptureError(path, f"`{key}{name}` contains non-finite values")
            return key, value
    spelled = " or ".join(f"`{k}{name}`" for k in keys)
    raise CaptureError(path, f"camera '{name}' is listed in `names` but has no {spelled}")


def read_cameras(intri_path: Path, extri_path: Path) -> CameraRig:
    """Read an EasyMocap/EasyVolcap camera pair; cameras are returned sorted by name.

    Raises ``CaptureError`` naming the file for a missing file, unreadable YAML, a camera listed in
    ``names`` without its matrices, or ``names`` lists that disagree between the two files.
    """
    intri_path, extri_path = Path(intri_path), Path(extri_path)
    intri, extri = _open(intri_path), _open(extri_path)
    names = _names(intri, intri_path)
    if not names:
        raise CaptureError(intri_path, "no `names` list of cameras")
    extri_names = _names(extri, extri_path)
    if extri_names is not None and sorted(extri_names) != sorted(names):
        only_intri = sorted(set(names) - set(extri_names))
        only_extri = sorted(set(extri_names) - set(names))
        raise CaptureError(
            extri_path,
            f"`names` differs from {intri_path.name}: only in {intri_path.name}: {only_intri}, only here: {only_extri}",
        )
    if len(set(names)) != len(names):
        raise CaptureError(intri_path, "`names` lists a camera more than once")
    names = sorted(names)

    Ks, dists, Rs, Ts, Hs, Ws = [], [], [], [], [], []
    for name in names:
        _, K = _require(intri, intri_path, name, ["K_"], [9])
        K = K.reshape(3, 3)
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CaptureError(intri_path, f"`K_{name}` has non-positive focal lengths")
        dist = _matrix(intri, f"dist_{name}")
        if dist is None:
            dist = _matrix(intri, f"D_{name}")
        dist = np.zeros(5) if dist is None else dist.ravel()
        dist = np.pad(dist[:5], (0, max(0, 5 - dist.size)))
        key, rot = _require(extri, extri_path, name, ["R_", "Rot_"], [3, 9])
        R = cv2.Rodrigues(rot.reshape(3, 1))[0] if rot.size == 3 else rot.reshape(3, 3)
        _, T = _require(extri, extri_path, name, ["T_"], [3])
        Ks.append(K)
        dists.append(dist)
        Rs.append(R)
        Ts.append(T.reshape(3))
        Hs.append(_scalar(intri, f"H_{name}"))
        Ws.append(_scalar(intri, f"W_{name}"))
    intri.release()
    extri.release()
    return CameraRig(
        names=names,
        K=np.stack(Ks),
        dist=np.stack(dists),
        R=np.stack(Rs),
        T=np.stack(Ts),
        height=np.asarray(Hs, dtype=np.int64),
        width=np.asarray(Ws, dtype=np.int64),
    )


def _write_names(storage: cv2.FileStorage, names: Sequence[str]) -> None:
    storage.startWriteStruct("names", cv2.FileNode_SEQ)
    for name in names:
        storage.write("", name)
    storage.endWriteStruct()


def _atomic_yaml(path: Path, write) -> None:
    """Write an OpenCV YAML file atomically (OpenCV picks the format from the ``.yml`` suffix)."""
    with atomic_path(path) as tmp:
        storage = cv2.FileStorage(str(tmp), cv2.FILE_STORAGE_WRITE)
        write(storage)
        storage.release()


def write_cameras(
    scene: Path,
    rig: CameraRig,
    spelling: Literal["easymocap", "easyvolcap"] = "easymocap",
    intri_extra: dict[str, np.ndarray] | None = None,
    extri_extra: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``intri.yml`` and ``extri.yml`` into ``scene`` in either spelling, atomically; the ``*_extra``
    matrices (e.g. ``ccm_<cam>``) are added at the end of their file."""
    scene = Path(scene)

    def write_intri(storage: cv2.FileStorage) -> None:
        _write_names(storage, rig.names)
        for i, name in enumerate(rig.names):
            storage.write(f"K_{name}", rig.K[i].astype(np.float64))
            if spelling == "easymocap":
                storage.write(f"dist_{name}", rig.dist[i].reshape(1, 5).astype(np.float64))
            else:
                storage.write(f"D_{name}", rig.dist[i].reshape(5, 1).astype(np.float64))
            if rig.height[i] > 0 and rig.width[i] > 0:
                storage.write(f"H_{name}", int(rig.height[i]))
                storage.write(f"W_{name}", int(rig.width[i]))
        for key, value in (intri_extra or {}).items():
            storage.write(key, np.asarray(value, dtype=np.float64))

    def write_extri(storage: cv2.FileStorage) -> None:
        _write_names(storage, rig.names)
        for i, name in enumerate(rig.names):
            if spelling == "easymocap":
                storage.write(f"R_{name}", cv2.Rodrigues(rig.R[i].astype(np.float64))[0])
            else:
                storage.write(f"Rot_{name}", rig.R[i].astype(np.float64))
            storage.write(f"T_{name}", rig.T[i].reshape(3, 1).astype(np.float64))
        for key, value in (extri_extra or {}).items():
            storage.write(key, np.asarray(value, dtype=np.float64))

    _atomic_yaml(scene / "intri.yml", write_intri)
    _atomic_yaml(scene / "extri.yml", write_extri)
