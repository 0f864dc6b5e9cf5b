"""What every ``fourk4d-*`` command shares: a ``--debug`` option, and user errors (``InputError``:
bad files, folders or options; ``ExtensionBuildError``: a compiler or CUDA toolkit missing or
failing) printed as one line with a non-zero exit instead of a traceback."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import tyro

from fourk4d_ns.io.errors import InputError, debug_requested, exit_with_user_error
from fourk4d_ns.rasterizer import ExtensionBuildError


@dataclass(kw_only=True)
class CommandOptions:
    """Options of every command."""

    debug: bool = False
    """Show the full traceback of errors (also: FOURK4D_DEBUG=1)."""


class Command(Protocol):
    debug: bool

    def main(self) -> Any: ...


C = TypeVar("C", bound=Command)


def run_command(command_type: type[C], name: str, args: Sequence[str] | None = None) -> Any:
    """Parses the command line into ``command_type`` and runs its ``main``.

    An ``InputError`` or ``ExtensionBuildError`` prints as ``<name>: error: <message>`` on stderr
    and exits with status 2; an interruption (Ctrl-C) exits with status 130. With ``--debug`` both
    keep their traceback.
    """
    command = tyro.cli(command_type, args=args)
    debug = command.debug or debug_requested()
    try:
        return command.main()
    except (InputError, ExtensionBuildError) as error:
        if debug:
            raise
        exit_with_user_error(name, error)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{name}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
