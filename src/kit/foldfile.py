"""The folds file of a dataset, folds/<dataset>.csv: made once, then only read.

One policy for both competitions: the file is created when missing (under a lock, so two first
runs do not race), and a file that does not fit the data now (samples without a fold, another
fold count) is refused with the command that rebuilds it, never silently extended. Runs record
its content hash; predict and blending trust only runs made on the file the data has now.
"""
from __future__ import annotations

import os
from typing import Callable

import pandas as pd

from . import atomic, lock
from .datadir import file_sha1
from .errors import KitError, list_some

FOLDS_DIR = "folds"


def folds_path(dataset: str) -> str:
    return os.path.join(FOLDS_DIR, f"{dataset}.csv")


def ensure(dataset: str, id_column: str, ids: list[str], n_folds: int, make: Callable[[], pd.DataFrame],
           rebuild: str) -> tuple[pd.Series, str]:
    """({id: fold} for `ids`, the file's sha1). `make()` builds the table when the file is
    missing; `rebuild` is the command that remakes it (named in refusals)."""
    path = folds_path(dataset)
    with lock.exclusive(path + ".lock", f"folds file {path}", wait_s=120):
        if not os.path.exists(path):
            df = make()
            atomic.write_csv(path, df)
            counts = df["fold"].value_counts().sort_index()
            print(f"folds: wrote {path} ({n_folds} folds: " +
                  ", ".join(f"{n}" for n in counts.to_numpy()) + f" {id_column}s)", flush=True)
        folds = pd.read_csv(path, dtype={id_column: str, "fold": int}, keep_default_na=False)
        sha1 = file_sha1(path)
    fold_of = folds.drop_duplicates(id_column).set_index(id_column)["fold"]
    missing = [i for i in ids if i not in fold_of.index]
    if missing:
        raise KitError(f"{path}: {len(missing)} of the {len(ids)} {id_column}s now loaded have no fold "
                       f"({list_some(missing, 5)}); it was made for other data. Rebuild it with {rebuild} "
                       f"(runs trained on the old file then no longer count)")
    k = folds["fold"].nunique()
    if k != n_folds:
        raise KitError(f"{path} has {k} folds but --n-folds is {n_folds}; rebuild it with {rebuild} "
                       f"--n-folds {n_folds} (runs trained on the old file then no longer count)")
    return fold_of.loc[ids], sha1


def write(dataset: str, df: pd.DataFrame) -> str:
    """Replace the folds file (the explicit rebuild command)."""
    path = folds_path(dataset)
    with lock.exclusive(path + ".lock", f"folds file {path}", wait_s=120):
        atomic.write_csv(path, df)
    return path
