"""Errors that are the user's to fix: bad input files, folders or options.

The project's commands, and ``ns-train fourk4d`` while it sets up, print them as one line and exit
with status 2 (``fourk4d_ns.cli.common``, ``fourk4d_ns.integration.trainer``); every other exception
is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEBUG_VARIABLE = "FOURK4D_DEBUG"
"""Setting this environment variable to 1 keeps the traceback of user errors, in every command, and
turns on the rasterizer's finiteness checks of its inputs (one device sync per tensor on a GPU)."""


class InputError(ValueError):
    """Bad input from the user: a file, a folder or an option; the message says which and why."""


class CaptureError(InputError):
    """A capture on disk is missing something or is malformed; the message names the file."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def debug_requested() -> bool:
    """Whether ``FOURK4D_DEBUG`` asks for tracebacks (and the rasterizer's finiteness checks)."""
    return os.environ.get(DEBUG_VARIABLE, "0") not in ("", "0")


def exit_with_user_error(name: str, error: Exception, hint: str = "--debug shows the traceback") -> None:
    """Prints ``<name>: error: <message> (<hint>)`` as one line on stderr and exits with status 2."""
    message = " ".join(str(error).split())  # one line, whatever the message holds
    print(f"{name}: error: {message} ({hint})", file=sys.stderr)
    raise SystemExit(2) from None
