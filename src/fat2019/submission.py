"""Writing submission.csv: exactly sample_submission's rows and columns, checked, atomic."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..kit import atomic


def make_submission(fnames: list[str], labels: list[str], scores: np.ndarray) -> pd.DataFrame:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(fnames), len(labels)):
        raise ValueError(f"scores {scores.shape} do not match {len(fnames)} clips x {len(labels)} labels")
    if not np.isfinite(scores).all():
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} NaN/inf scores; refusing to write")
    if scores.min() < 0 or scores.max() > 1:
        raise ValueError(f"scores outside [0, 1] ({scores.min():.3g} .. {scores.max():.3g})")
    sub = pd.DataFrame(scores, columns=labels)
    sub.insert(0, "fname", fnames)
    return sub


def write_submission(path: str, sample: pd.DataFrame, labels: list[str], scores_by_fname: dict) -> pd.DataFrame:
    """Rows in sample_submission's order; every fname must have scores."""
    fnames = sample["fname"].tolist()
    missing = [f for f in fnames if f not in scores_by_fname]
    if missing:
        raise ValueError(f"no scores for {len(missing)} clip(s), e.g. {missing[:5]}")
    sub = make_submission(fnames, labels, np.stack([scores_by_fname[f] for f in fnames]))
    atomic.write_csv(path, sub, float_format="%.6f")
    return sub
