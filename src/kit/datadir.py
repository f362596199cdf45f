"""Where the data lives, and what identifies it: the same code runs locally, in CI and on Kaggle.

The dataset name keys everything derived from the data (folds/<name>.csv, cache/<name>/,
work/<name>/), so it must change whenever the data does: it is the folder's base name plus a
short hash of the resolved path and of the files that define the training data. Two folders
called `fat` get two names; an edited train CSV gets a new one (and with it fresh folds, features
and runs). The built-in demo is hashed on its contents only, so its committed folds file holds in
any checkout.
"""
from __future__ import annotations

import hashlib
import os
from typing import Callable, Iterable

from .errors import KitError

KAGGLE_INPUT = "/kaggle/input"


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:8]


def file_sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dataset_name(path: str, identity: Callable[[str], list[bytes]], with_path: bool = True) -> str:
    """'<base>-<hash>': `identity(path)` gives the bytes that define the data (CSV contents,
    a listing of file names and sizes, ...)."""
    base = os.path.basename(os.path.abspath(path).rstrip("/"))
    parts = ([os.path.abspath(path).encode()] if with_path else []) + identity(path)
    return f"{base}-{_digest(parts)}"


def resolve_data_dir(data_dir: str | None, competition: str, make_demo: Callable[[str], str],
                     demo_dir: str, what: str, identity: Callable[[str], list[bytes]]) -> tuple[str, str]:
    """Pick the data folder and its dataset name; print one line saying which.

    Order: --data-dir, Kaggle's input folder, ./data/<competition>, else the built-in demo
    (generated into `demo_dir` on first use).
    """
    if data_dir:
        path = os.path.abspath(data_dir)
        if not os.path.isdir(path):
            raise KitError(f"--data-dir {path}: no such folder")
        source = "--data-dir"
    elif os.path.isdir(os.path.join(KAGGLE_INPUT, competition)):
        path, source = os.path.join(KAGGLE_INPUT, competition), "Kaggle input"
    elif os.path.isdir(os.path.join("data", competition)):
        path, source = os.path.abspath(os.path.join("data", competition)), "./data"
    else:
        path = make_demo(demo_dir)
        name = dataset_name(path, identity, with_path=False)
        print(f"data: no {what} data given (--data-dir), none in {KAGGLE_INPUT}/{competition} "
              f"or ./data/{competition}: using the built-in demo dataset in {path} ('{name}')", flush=True)
        return path, name
    name = dataset_name(path, identity)
    print(f"data: {path} ({source}), dataset name '{name}'", flush=True)
    return path, name
