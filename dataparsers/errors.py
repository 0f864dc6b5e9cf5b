"""The one exception type the capture readers raise for bad input."""

from __future__ import annotations

from pathlib import Path


class CaptureError(ValueError):
    """A capture on disk is missing something or is malformed; the message names the file."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
