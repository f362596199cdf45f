"""Atomic, durable writes: a killed process never leaves a half-written file that a later run trusts.

Every write goes to a temporary name beside the target (`.NAME.<pid>.<random>.tmp`), is fsynced,
renamed over the target and the folder fsynced, so after a crash or power loss the target is
either the old complete file or the new complete one. Temporary names carry the writer's pid, so
`clean_stale` can remove the leftovers of dead processes without touching a live writer's.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from typing import Any, Iterator

import numpy as np

from .errors import kill_point

_TMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp")


def fsync_path(path: str) -> None:
    """Flush a file or folder to disk (folders: so a rename inside them survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _parent(path: str) -> str:
    return os.path.dirname(os.path.abspath(path))


def temp_name(path: str, suffix: str = "") -> str:
    """A fresh, unused temporary name beside `path`, marked with this process's pid."""
    fd, tmp = tempfile.mkstemp(dir=_parent(path), prefix=f".{os.path.basename(path)}.{os.getpid()}.",
                               suffix=".tmp" + suffix)
    os.close(fd)
    return tmp


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    `suffix` lets writers that insist on an extension (Keras: '.keras', '.weights.h5') work.
    """
    path = os.fspath(path)
    os.makedirs(_parent(path), exist_ok=True)
    tmp = temp_name(path, suffix)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; outputs should read like any file
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(_parent(path))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path: str, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: str, df, **kwargs) -> None:
    """Write a pandas DataFrame atomically (index off unless asked)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)


def save_npy(path: str, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # exists, owned by someone else
        return True
    return True


def clean_stale(folder: str) -> list[str]:
    """Remove temporary files and folders left in `folder` by processes that no longer run."""
    removed = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return removed
    for name in names:
        m = _TMP.match(name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            p = os.path.join(folder, name)
            shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else os.remove(p)
            removed.append(p)
    return removed


def replace_dir(new: str, target: str) -> None:
    """Move the finished folder `new` to `target`, replacing an older `target`.

    POSIX cannot rename a folder over a non-empty one, so the old one is first renamed aside
    (to a pid-marked temporary name that `clean_stale` recognises) and deleted after. A kill
    between the two renames leaves `new` complete and `target` absent: callers finish the move
    on their next start (see fold_runner.FoldRun).
    """
    parent = _parent(target)
    old = None
    if os.path.exists(target):
        old = os.path.join(parent, f".{os.path.basename(target)}.{os.getpid()}.old.tmp")
        os.replace(target, old)
        kill_point("between-renames")
    os.replace(new, target)
    fsync_path(parent)
    if old:
        shutil.rmtree(old, ignore_errors=True)
