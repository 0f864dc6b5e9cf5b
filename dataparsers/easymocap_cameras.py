"""EasyMocap / EasyVolcap camera files (``intri.yml``, ``extri.yml``) read and written with OpenCV.

Conventions (METHOD.md section 6): OpenCV world-to-camera ``x_cam = R X + T`` (y down, z forward),
distortion in OpenCV order (k1, k2, p1, p2, k3). Both spellings are understood:
EasyMocap writes ``dist_`` (1x5) and ``R_`` (3x1 Rodrigues), EasyVolcap ``D_`` (5x1) and ``Rot_`` (3x3).
``R_`` is preferred; ``H_``/``W_`` are optional (the images give the size); ``ccm_`` (DNA-Rendering's
color curves) is read; ``t_``, ``n_``, ``f_`` and ``bounds_`` are ignored.

Validated: unique names, finite values, positive focal lengths, 3x3 rotations orthonormal with
determinant +1 (``ROTATION_TOLERANCE``), and (``check_cameras_look_at_scene``) cameras that face
what the rig looks at.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from fourk4d_ns.core.camera import camera_center, nearest_point_to_axes, viewing_bounds
from fourk4d_ns.io.atomic import atomic_path
from fourk4d_ns.io.errors import CaptureError

ROTATION_TOLERANCE = 1e-3
"""Largest entry of |R R^T - I| accepted for a rotation given as a 3x3 matrix (rounding in files is far
below; a scaled or sheared matrix is far above)."""
IDENTITY_CURVES = np.array([[0.0, 1.0, 0.0]] * 3)
"""Color curves (rows R, G, B of a x^2 + b x + c) that change nothing."""


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
    color_curves: np.ndarray | None = None
    """DNA-Rendering's ``ccm_`` per camera [C,3,3] (``IDENTITY_CURVES`` where absent); None: none has one."""

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
            color_curves=None if self.color_curves is None else self.color_curves[idx],
        )

    @property
    def has_color_curves(self) -> bool:
        """Whether some camera carries a ``ccm_`` that changes colors."""
        return self.color_curves is not None and not np.allclose(self.color_curves, IDENTITY_CURVES)


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


def _image_size(storage: cv2.FileStorage, path: Path, key: str) -> int:
    """``H_``/``W_`` of a camera: 0 when absent (the size then comes from the images)."""
    value = _matrix(storage, key)
    if value is None:
        return 0
    number = float(value.ravel()[0]) if value.size == 1 else float("nan")
    if not (np.isfinite(number) and number >= 1 and number == round(number)):
        raise CaptureError(path, f"`{key}` must be a positive whole number of pixels, got {value.ravel().tolist()}")
    return int(number)


def _optional(
    storage: cv2.FileStorage, path: Path, name: str, keys: Sequence[str], sizes: Sequence[int]
) -> tuple[str, np.ndarray] | None:
    """The first of ``keys`` present for a camera, checked to hold one of the allowed sizes of finite values."""
    for key in keys:
        value = _matrix(storage, f"{key}{name}")
        if value is not None:
            if value.size not in sizes:
                raise CaptureError(
                    path, f"`{key}{name}` has {value.size} values, expected {' or '.join(map(str, sizes))}"
                )
            if not np.all(np.isfinite(value)):
                raise CaptureError(path, f"`{key}{name}` contains non-finite values")
            return key, value
    return None


def _require(
    storage: cv2.FileStorage, path: Path, name: str, keys: Sequence[str], sizes: Sequence[int]
) -> tuple[str, np.ndarray]:
    """As ``_optional``, for a matrix the camera must have."""
    found = _optional(storage, path, name, keys, sizes)
    if found is None:
        spelled = " or ".join(f"`{k}{name}`" for k in keys)
        raise CaptureError(path, f"camera '{name}' is listed in `names` but has no {spelled}")
    return found


def _rotation(path: Path, key: str, value: np.ndarray) -> np.ndarray:
    """A world-to-camera rotation from a Rodrigues vector (always a rotation) or a 3x3 matrix, which
    must be orthonormal with determinant +1 within ``ROTATION_TOLERANCE`` (and is then made exactly so)."""
    if value.size == 3:
        return cv2.Rodrigues(value.reshape(3, 1))[0]
    R = value.reshape(3, 3)
    determinant = float(np.linalg.det(R))
    if determinant < 0:
        raise CaptureError(path, f"`{key}` is not a rotation: its determinant is {determinant:.3g} (a reflection)")
    error = float(np.abs(R @ R.T - np.eye(3)).max())
    if error > ROTATION_TOLERANCE:
        raise CaptureError(
            path,
            f"`{key}` is not a rotation: R R^T differs from the identity by {error:.3g} "
            f"(tolerance {ROTATION_TOLERANCE:g}; scaled or sheared)",
        )
    u, _, vt = np.linalg.svd(R)
    return u @ vt  # the nearest rotation: removes rounding in the file


def _distortion(storage: cv2.FileStorage, path: Path, name: str) -> np.ndarray:
    """(k1, k2, p1, p2, k3) from ``dist_`` (1x5) or ``D_`` (5x1); zeros when absent. OpenCV's longer
    forms are accepted while their extra coefficients are zero."""
    found = _optional(storage, path, name, ["dist_", "D_"], [4, 5, 8, 12, 14])
    if found is None:
        return np.zeros(5)
    key, dist = found[0], found[1].ravel()
    if np.any(dist[5:] != 0):
        raise CaptureError(
            path, f"`{key}{name}` uses OpenCV coefficients beyond (k1, k2, p1, p2, k3), which are not supported"
        )
    return np.pad(dist[:5], (0, 5 - min(5, dist.size)))


def _color_curves(storage: cv2.FileStorage, path: Path, name: str) -> np.ndarray:
    """``ccm_`` (DNA-Rendering's per-channel color curves, see ``fourk4d_ns.io.images.apply_color_curves``),
    or identity curves when absent or the identity matrix (the placeholder EasyVolcap writes)."""
    found = _optional(storage, path, name, ["ccm_"], [9])
    if found is None or np.array_equal(found[1].reshape(3, 3), np.eye(3)):
        return IDENTITY_CURVES.copy()
    return found[1].reshape(3, 3)


def _unique_names(names: list[str], path: Path) -> None:
    twice = sorted(name for name, count in Counter(names).items() if count > 1)
    if twice:
        raise CaptureError(path, f"`names` lists camera(s) {twice} more than once")


def read_cameras(intri_path: Path, extri_path: Path) -> CameraRig:
    """Read an EasyMocap/EasyVolcap camera pair; cameras are returned sorted by name.

    Raises ``CaptureError`` naming the file for a missing file, unreadable YAML, a camera listed twice
    or listed in ``names`` without its matrices, ``names`` lists that disagree between the two files,
    non-finite values, non-positive focal lengths, a 3x3 rotation that is not one, or bad ``H_``/``W_``.
    """
    intri_path, extri_path = Path(intri_path), Path(extri_path)
    intri, extri = _open(intri_path), _open(extri_path)
    names = _names(intri, intri_path)
    if not names:
        raise CaptureError(intri_path, "no `names` list of cameras")
    _unique_names(names, intri_path)
    extri_names = _names(extri, extri_path)
    if extri_names is not None:
        _unique_names(extri_names, extri_path)
        if set(extri_names) != set(names):
            only_intri = sorted(set(names) - set(extri_names))
            only_extri = sorted(set(extri_names) - set(names))
            raise CaptureError(
                extri_path,
                f"`names` differs from {intri_path.name}: only in {intri_path.name}: {only_intri}, "
                f"only here: {only_extri}",
            )
    names = sorted(names)

    Ks, dists, Rs, Ts, Hs, Ws, curves = [], [], [], [], [], [], []
    for name in names:
        _, K = _require(intri, intri_path, name, ["K_"], [9])
        K = K.reshape(3, 3)
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CaptureError(intri_path, f"`K_{name}` has non-positive focal lengths")
        key, rot = _require(extri, extri_path, name, ["R_", "Rot_"], [3, 9])
        _, T = _require(extri, extri_path, name, ["T_"], [3])
        Ks.append(K)
        dists.append(_distortion(intri, intri_path, name))
        Rs.append(_rotation(extri_path, f"{key}{name}", rot))
        Ts.append(T.reshape(3))
        Hs.append(_image_size(intri, intri_path, f"H_{name}"))
        Ws.append(_image_size(intri, intri_path, f"W_{name}"))
        curves.append(_color_curves(intri, intri_path, name))
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
        color_curves=np.stack(curves),
    )


def cameras_looking_away(R: np.ndarray, T: np.ndarray) -> list[tuple[int, float, str]]:
    """Cameras (index, angle in degrees, what they turn from) whose optical axis points 90 degrees or
    more away from what the rig looks at.

    What a camera should face is the point nearest the optical axes of the other cameras (both of a
    pair's), when it lies in front of at least half of them: the center of a ring or dome, the region
    ahead of a converging forward-facing rig. Axes are lines here, so a flipped camera still passes
    through that point and does not move it. When the axes are (nearly) parallel or diverge, it is
    the direction the rig faces on average instead; a pair looking straight at each other is fine.
    """
    centers, axes = camera_center(R, T), R[:, 2, :]
    count = len(R)
    found = []
    for i in range(count):
        group = [j for j in range(count) if j != i] if count > 2 else list(range(count))
        target = nearest_point_to_axes(centers[group], axes[group]) if count > 1 else None
        if target is not None and np.mean(np.einsum("cj,cj->c", target - centers[group], axes[group]) > 0) >= 0.5:
            direction, what = target - centers[i], f"the point the other cameras look at {np.round(target, 3).tolist()}"
        else:
            direction, what = axes.mean(0), "the direction the rig faces"
            if np.linalg.norm(direction) < 1e-3 and count == 2:  # opposite axes: fine when facing each other
                direction, what = centers[1 - i] - centers[i], "the other camera"
        norm = np.linalg.norm(direction)
        if norm < 1e-9:
            continue
        angle = float(np.degrees(np.arccos(np.clip(axes[i] @ direction / norm, -1.0, 1.0))))
        if angle >= 90:
            found.append((i, angle, what))
    return found


def check_cameras_look_at_scene(rig: CameraRig, extri_path: Path) -> None:
    """``CaptureError`` naming ``extri_path`` and the cameras that look away from the scene
    (``cameras_looking_away``); a camera-to-world matrix stored as world-to-camera is the usual cause."""
    away = cameras_looking_away(rig.R, rig.T)
    if not away:
        return
    index, angle, what = away[0]
    others = [rig.names[i] for i, _, _ in away[1:]]
    also = f" (also: {', '.join(others)})" if others else ""
    raise CaptureError(
        extri_path,
        f"camera '{rig.names[index]}' looks away from the scene{also}: its optical axis is {angle:.0f} degrees "
        f"from {what}. Is its rotation inverted (camera-to-world instead of world-to-camera)? "
        f"Fix its `R_`/`Rot_` and `T_`, or leave the camera out (--cameras)",
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
    extri_extra: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``intri.yml`` and ``extri.yml`` into ``scene`` in either spelling, atomically; the ``extri_extra``
    matrices (e.g. EasyVolcap's ``R_<cam>`` next to ``Rot_<cam>``) are added at the end of extri.yml."""
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
            if rig.color_curves is not None and not np.allclose(rig.color_curves[i], IDENTITY_CURVES):
                storage.write(f"ccm_{name}", rig.color_curves[i].astype(np.float64))

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
