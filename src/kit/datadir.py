"""Where data and outputs live: the same code runs locally, in CI and in a Kaggle kernel."""
from __future__ import annotations

import os
from typing import Callable

KAGGLE_INPUT = "/kaggle/input"


def resolve_data_dir(data_dir: str | None, competition: str, make_demo: Callable[[str], str],
                     demo_dir: str, what: str) -> tuple[str, str]:
    """Pick the data folder and a short dataset name; print one line saying which.

    Order: --data-dir, Kaggle's input folder, ./data/<competition>, else the built-in demo
    (generated into `demo_dir` on first use).
    """
    if data_dir:
        path = os.path.abspath(data_dir)
        if not os.path.isdir(path):
            from .errors import KitError
            raise KitError(f"--data-dir {path}: no such folder")
        source = "--data-dir"
    elif os.path.isdir(os.path.join(KAGGLE_INPUT, competition)):
        path, source = os.path.join(KAGGLE_INPUT, competition), "Kaggle input"
    elif os.path.isdir(os.path.join("data", competition)):
        path, source = os.path.abspath(os.path.join("data", competition)), "./data"
    else:
        path = make_demo(demo_dir)
        print(f"data: no {what} data given (--data-dir), none in {KAGGLE_INPUT}/{competition} "
              f"or ./data/{competition}: using the built-in demo dataset in {path}", flush=True)
        return path, "demo"
    name = os.path.basename(path.rstrip("/"))
    print(f"data: {path} ({source}), dataset name '{name}'", flush=True)
    return path, name
