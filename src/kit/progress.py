"""One progress helper for every long loop: tqdm on a terminal, plain lines in a log.

tqdm redraws its bar with carriage returns; in a Kaggle kernel's log or a `> log 2>&1` file every
redraw is kept, so the log fills with thousands of half-overwritten frames that nobody can read.
`progress` draws tqdm's bar only when its stream is a terminal; anywhere else it prints one plain,
flushed line each time the work crosses another `every_fraction` of its total or `every_seconds`
have passed since the last line, and one `done` line at the end. Empty work prints nothing.

    for clip in progress(clips, desc="features", unit="clip"):
        ...
    with progress(total=len(x), desc="predicting") as bar:
        bar.update(k)
"""
from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol, TextIO

from tqdm import tqdm


class Bar(Protocol):
    """The part of tqdm's interface the kit uses (tqdm's own bar satisfies it)."""

    n: Any

    def __iter__(self) -> Iterator[Any]: ...

    def update(self, n: int = 1) -> Any: ...

    def close(self) -> None: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: Any) -> Any: ...


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _seconds(s: float) -> str:
    return f"{s:.1f}" if s < 100 else f"{s:.0f}"


def units(n: float, unit: str) -> str:
    """'1 clip', '2 clips', '345 categories' in the plain lines; tqdm's own 'it' stays as it is."""
    if n == 1 or unit == "it":
        return unit
    return unit[:-1] + "ies" if unit.endswith("y") and unit[-2:-1] not in "aeiou" else unit + "s"


class PlainProgress:
    """Progress as plain lines (no carriage returns): see the module docstring."""

    def __init__(self, iterable: Optional[Iterable[Any]], total: Optional[float], desc: str, unit: str,
                 stream: TextIO, every_fraction: Optional[float], every_seconds: Optional[float],
                 disable: bool, clock: Callable[[], float], min_seconds: float = 0.0):
        self.iterable = iterable
        self.total = total
        self.desc = desc or ""
        self.unit = unit
        self.stream = stream
        self.every_fraction = every_fraction if every_fraction and every_fraction > 0 else None
        self.every_seconds = every_seconds
        self.min_seconds = min_seconds
        self.disable = disable
        self.clock = clock
        self.n = 0
        self.postfix = ""
        self.closed = False
        self.start = self.last_line = clock()
        self._step = 0  # how many `every_fraction` steps of the total the last line had reached

    def _prefix(self) -> str:
        return f"{self.desc}: " if self.desc else ""

    def _print(self, text: str) -> None:
        self.stream.write(self._prefix() + text + (f" {self.postfix}" if self.postfix else "") + "\n")
        self.stream.flush()

    def _line(self, now: float) -> None:
        elapsed = _seconds(now - self.start)
        if self.total is not None and self.total > 0:
            pct = math.floor(100 * self.n / self.total)
            self._print(f"{self.n}/{self.total} {units(self.total, self.unit)} ({pct}%) {elapsed}s")
        else:
            self._print(f"{self.n} {units(self.n, self.unit)} {elapsed}s")
        self.last_line = now

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.disable or self.closed or n == 0:
            return
        now = self.clock()
        due = self.every_seconds is not None and now - self.last_line >= self.every_seconds
        if self.every_fraction is not None and self.total is not None and self.total > 0:
            step = math.floor(self.n / (self.total * self.every_fraction) + 1e-9)
            if step > self._step and now - self.last_line >= self.min_seconds:
                self._step = step
                due = True
        if due:
            self._line(now)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = str(s)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.disable or self.n == 0 or (self.total is not None and self.total <= 0):
            return
        self._print(f"done, {self.n} {units(self.n, self.unit)} in {_seconds(self.clock() - self.start)}s")

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("progress() was given no iterable to iterate over")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(iterable: Optional[Iterable[Any]] = None, *, total: Optional[float] = None, desc: str = "",
             unit: str = "it", stream: Optional[TextIO] = None, plain: Optional[bool] = None,
             every_fraction: Optional[float] = 0.1, every_seconds: Optional[float] = 30.0,
             disable: bool = False, clock: Optional[Callable[[], float]] = None, min_seconds: float = 1.0) -> Bar:
    """A progress bar over `iterable` (or driven by `.update(n)`) writing to `stream` (default
    sys.stderr). `plain=None` draws tqdm's bar when the stream is a terminal and plain lines
    otherwise; True forces plain lines, False forces tqdm. `disable` prints nothing at all.
    `total` defaults to len(iterable) when it has one. `min_seconds`: plain lines at least this far
    apart (short work prints its `done` line only). `clock` (default time.monotonic) is for tests."""
    if stream is None:
        stream = sys.stderr
    if total is None and iterable is not None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except (TypeError, AttributeError):
            total = None
    desc = desc or ""
    if plain is None:
        plain = not _isatty(stream)
    if plain or disable:
        return PlainProgress(iterable, total, desc, unit, stream, every_fraction, every_seconds, disable,
                             clock or time.monotonic, min_seconds)

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, leave=False)
