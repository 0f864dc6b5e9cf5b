"""Errors that are the user's to fix: bad input files, folders or options.

The project's commands print them as one line and exit non-zero (``fourk4d_ns.cli.common``); every
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input from the user: a file, a folder or an option; the message says which and why."""


class CaptureError(InputError):
    """A capture on disk is missing something or is malformed; the message names the file."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
