"""Atomic file writes: write under a temporary name, then rename into place, so an interrupted write
never leaves a half-written file (or folder) under the real name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path, temp_dir: Path | None = None) -> Iterator[Path]:
    """A temporary path (same suffix) to write; renamed to ``path`` if the block succeeds.

    The temporary file is hidden in ``path``'s folder unless ``temp_dir`` (on the same file system)
    is given, for folders whose readers must never see a stray file (nerfstudio's checkpoints).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=temp_dir or path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's files are private; give the usual permissions
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def staging_folder(target: Path, tag: str = "partial") -> Path:
    """A new hidden sibling folder of ``target`` (usual permissions) to build content in before
    ``replace_folder`` moves it into place."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{tag}-", dir=target.parent))
    os.chmod(folder, 0o777 & ~_umask())  # mkdtemp's folders are private
    return folder


def replace_folder(staging: Path, target: Path) -> None:
    """Move a finished staging folder to ``target``, replacing an existing one; at no moment is a
    half-built folder under the real name."""
    import shutil

    target = Path(target)
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, retired / target.name)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)
