"""A submission is right or absent: exactly sample_submission's rows, once each, in its order,
every value checked, written atomically. One path for both competitions."""
from __future__ import annotations

from typing import Callable

import pandas as pd

from . import atomic
from .errors import KitError, list_some


def in_sample_order(rows: pd.DataFrame, sample_ids: list[str], id_column: str, where: str) -> pd.DataFrame:
    """`rows` re-ordered as `sample_ids`; refuses duplicate, missing or extra ids, naming some."""
    ids = rows[id_column].astype(str)
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise KitError(f"{where}: {len(dup)} {id_column}(s) predicted twice: {list_some(dup, 5)}")
    have, want = set(ids), set(sample_ids)
    missing, extra = [i for i in sample_ids if i not in have], sorted(have - want)
    if missing or extra:
        parts = ([f"{len(missing)} of sample_submission.csv's {id_column}s have no row ({list_some(missing, 5)})"]
                 if missing else []) + ([f"{len(extra)} rows are not in sample_submission.csv ({list_some(extra, 5)})"]
                                        if extra else [])
        raise KitError(f"{where}: " + "; ".join(parts))
    out = rows.assign(**{id_column: ids}).set_index(id_column).loc[sample_ids].reset_index()
    return out


def write(path: str, rows: pd.DataFrame, sample_ids: list[str], id_column: str,
          check: Callable[[pd.DataFrame], None], float_format: str | None = None) -> pd.DataFrame:
    """Order, check (`check` raises on a wrong value), then write `path` atomically; on any
    refusal nothing is written (an older file at `path` is left as it was)."""
    sub = in_sample_order(rows, sample_ids, id_column, path)
    check(sub)
    atomic.write_csv(path, sub, **({"float_format": float_format} if float_format else {}))
    return sub
