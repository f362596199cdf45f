"""Reading the competitions' CSVs strictly: every problem named with its file, before any work.

pandas quietly renames a duplicate column `A` to `A.1` and keeps duplicate rows; a file name
like `../../x` or `/etc/passwd` in a CSV would be joined into a path outside the data folder.
These readers refuse all three with a message naming the file and the offending values.
"""
from __future__ import annotations

import csv
import os

import pandas as pd

from .errors import KitError, list_some


def header(path: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def read_csv(path: str, columns: list[str], what: str = "", id_column: str | None = None) -> pd.DataFrame:
    """All columns as strings; refuses a missing file or column, duplicate columns and, with
    `id_column`, duplicate ids."""
    if not os.path.isfile(path):
        raise KitError(f"{path}: file not found{f' ({what})' if what else ''}")
    try:
        cols = header(path)
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as e:
        raise KitError(f"{path}: cannot be read as CSV ({str(e).strip()[:200]})") from None
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise KitError(f"{path}: duplicate column(s) {list_some(dup)}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KitError(f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(df.columns)}")
    if id_column:
        check_unique(df[id_column].tolist(), path, id_column)
    return df


def check_unique(ids: list[str], path: str, what: str) -> None:
    seen, dup = set(), []
    for i in ids:
        if i in seen:
            dup.append(i)
        seen.add(i)
    if dup:
        raise KitError(f"{path}: {len(dup)} duplicate {what}(s): {list_some(sorted(set(dup)))}")


def is_plain_name(name: str) -> bool:
    """A bare file name: not empty, not '.'/'..', no folder separators, not absolute."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name \
        and os.path.basename(name) == name and not os.path.isabs(name) and "\x00" not in name


def check_plain_names(names: list[str], path: str, what: str = "file name") -> None:
    bad = [n for n in names if not is_plain_name(n)]
    if bad:
        raise KitError(f"{path}: {len(bad)} {what}(s) are not plain file names (absolute, '..' or with "
                       f"folder separators): {list_some([repr(b) for b in bad])}")
