"""User-facing errors and warnings: one channel for both competitions.

A `KitError` is an input problem the user can fix: the CLI wrapper prints one line and exits
with its code (2 unless said otherwise), never a traceback. Warnings (a skipped clip, a run left
out of an ensemble) go through `warn`, i.e. Python's warnings machinery with a one-line format,
so tests can catch them and users can filter them.
"""
from __future__ import annotations

import functools
import os
import signal
import sys
import warnings
from typing import Callable


class KitError(Exception):
    """An input problem the user can fix; printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class KitWarning(UserWarning):
    """Something the user should know that does not stop the run."""


_default_format = warnings.formatwarning


def _format(message, category, filename, lineno, line=None) -> str:
    if issubclass(category, KitWarning):
        return f"warning: {message}\n"
    return _default_format(message, category, filename, lineno, line)


warnings.formatwarning = _format
warnings.simplefilter("always", KitWarning)      # every skipped clip is reported, not only the first


def warn(message: str) -> None:
    warnings.warn(message, KitWarning, stacklevel=2)


def list_some(items: list[str], limit: int = 20) -> str:
    """'a, b, c (and 12 more; 15 in all)': long lists stay readable in one message."""
    items = [str(i) for i in items]
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" (and {len(items) - limit} more; {len(items)} in all)"
    return shown


class SimulatedKill(BaseException):
    """Raised by `kill_point` instead of SIGKILL when `SIMULATE_KILLS` is on (tests, in-process).
    A BaseException, so no `except Exception` handler catches it: files stay as a kill leaves them
    (only `with`/`finally` cleanup runs, e.g. the fold's lock is released)."""


SIMULATE_KILLS = False      # tests set it True to kill in-process (raise SimulatedKill) at KIT_KILL_AT


def kill_point(name: str) -> None:
    """Die here, as `kill -9` would, when KIT_KILL_AT names this point: how the tests prove that
    a kill at any step leaves either the old complete outputs or resumable new ones. With
    SIMULATE_KILLS set, raise SimulatedKill instead (no new process needed)."""
    if os.environ.get("KIT_KILL_AT") == name:
        sys.stdout.flush()
        if SIMULATE_KILLS:
            raise SimulatedKill(name)
        os.kill(os.getpid(), signal.SIGKILL)


def cli(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a CLI entry point so KitError exits with its code and a one-line message."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except KitError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            return e.exit_code
        except KeyboardInterrupt:
            print("interrupted: finished files are kept; --resume continues a fold", file=sys.stderr)
            return 130

    return wrapper
