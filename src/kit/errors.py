"""User-facing errors: a clear message and exit code 2, never a traceback."""
from __future__ import annotations

import functools
import sys
from typing import Callable


class KitError(Exception):
    """An input problem the user can fix; printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def list_some(items: list[str], limit: int = 20) -> str:
    """'a, b, c (and 12 more; 15 in all)': long lists stay readable in one message."""
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" (and {len(items) - limit} more; {len(items)} in all)"
    return shown


def cli(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a CLI entry point so KitError exits with its code and a one-line message."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except KitError as e:
            print(f"error: {e}", file=sys.stderr)
            return e.exit_code

    return wrapper
