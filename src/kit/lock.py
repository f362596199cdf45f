"""One writer per folder or file: an exclusive lock file holding the owner's pid and command.

Two processes training the same fold, or writing the same folds file, would interleave their
outputs. The second one stops with a message naming the first (pid and command line). The lock
is the operating system's (`fcntl.flock` on the lock file), so it dies with its holder: a lock
file left by a killed process is free to take, and of several processes taking it at once
exactly one wins (no check-then-act between reading a dead pid and writing a new one).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from typing import Iterator

from .errors import KitError


def _holder(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _acquire(path: str) -> int | None:
    """An open descriptor holding the lock on the file now at `path`, or None if another holds it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:                        # the holder before us may have removed the file after we opened it
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return _acquire(path)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return fd


@contextlib.contextmanager
def exclusive(path: str, what: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold `path` as a lock while the block runs; `what` names the guarded thing in messages.
    With `wait_s`, wait that long for a live holder (short critical sections) before refusing."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    deadline = time.time() + wait_s
    while (fd := _acquire(path)) is None:
        if time.time() >= deadline:
            h = _holder(path)
            who = (f"pid {h.get('pid')} on {h.get('host')}, started {h.get('started')}: {h.get('command')}"
                   if h else "a process that left no details")
            raise KitError(f"{what} is in use by another process ({who}). Wait for it to finish or stop it")
        time.sleep(0.2)
    try:
        yield
    finally:
        os.remove(path)             # while still holding it: a waiter that opened it retries on the new file
        os.close(fd)
