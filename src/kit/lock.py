"""One writer per folder or file: an exclusive lock file holding the owner's pid and command.

Two processes training the same fold, or writing the same folds file, would interleave their
outputs. The second one stops with a message naming the first (pid and command line); a lock
left by a process that died (same host, pid gone) is taken over.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from typing import Iterator

from .atomic import pid_alive
from .errors import KitError


def _holder(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _try_create(path: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                   "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}, f)
    return True


def _acquire(path: str) -> bool:
    if _try_create(path):
        return True
    h = _holder(path)
    if h and h.get("host") == socket.gethostname() and isinstance(h.get("pid"), int) and not pid_alive(h["pid"]):
        try:                                                   # take over a dead process's lock
            os.replace(path, path + f".stale-{os.getpid()}")
            os.remove(path + f".stale-{os.getpid()}")
        except FileNotFoundError:
            pass
        return _try_create(path)
    return False


@contextlib.contextmanager
def exclusive(path: str, what: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold `path` as a lock while the block runs; `what` names the guarded thing in messages.
    With `wait_s`, wait that long for a live holder (short critical sections) before refusing."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    deadline = time.time() + wait_s
    while not _acquire(path):
        if time.time() >= deadline:
            h = _holder(path)
            who = (f"pid {h.get('pid')} on {h.get('host')}, started {h.get('started')}: {h.get('command')}"
                   if h else "a process that left no details")
            raise KitError(f"{what} is in use by another process ({who}). Wait for it to finish or stop it; "
                           f"if it is gone, delete {path}")
        time.sleep(0.2)
    try:
        yield
    finally:
        if _holder(path).get("pid") == os.getpid():
            os.remove(path)
