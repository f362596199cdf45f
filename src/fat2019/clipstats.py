"""Whole-clip summary statistics of a log-mel (or MFCC) array: the input of the stats model.

Why: a CNN sees 1-second crops; statistics over the whole clip (each band's level and spread,
how fast it changes, the spectral envelope's shape) carry what the crops miss, and a linear model
on them is a strong single-clip baseline and a different blend member. Pure numpy and scipy, in
float64, so a clip's vector is the same at training, in `src.predict` and in a Kaggle kernel.
"""
from __future__ import annotations

import numpy as np
import scipy.fft

PERCENTILES = (10.0, 50.0, 90.0)
N_CEPSTRA = 20          # DCT coefficients over bands (MFCC-like), at most the number of bands
_PER_ROW = 2 + len(PERCENTILES)     # mean, std, then the percentiles


def n_stats(n_bands: int) -> int:
    """Length of clip_stats' vector for `n_bands` bands."""
    return 2 * _PER_ROW * n_bands + 2 * min(N_CEPSTRA, n_bands)


def row_stats(a: np.ndarray) -> np.ndarray:
    """(rows, 2 + len(PERCENTILES)): each row's mean, std and percentiles (linear interpolation);
    zeros for an array without columns."""
    if a.shape[1] == 0:
        return np.zeros((a.shape[0], _PER_ROW))
    pct = np.percentile(a, PERCENTILES, axis=1).T
    return np.column_stack([a.mean(axis=1), a.std(axis=1), pct])


def clip_stats(spec: np.ndarray) -> np.ndarray:
    """The statistics vector of one clip's (bands, frames) array (a trailing channel axis of 1 is
    dropped): per band mean, std and percentiles; the same of the frame-to-frame deltas; mean
    and std of the first N_CEPSTRA DCT-II coefficients over bands (cepstra of the log-mel).
    Laid out block by block, band-major within a block: [band stats | delta stats | cepstra]."""
    s = np.asarray(spec, dtype=np.float64)
    if s.ndim == 3 and s.shape[-1] == 1:
        s = s[..., 0]
    if s.ndim != 2:
        raise ValueError(f"clip_stats: expected a (bands, frames) array, got shape {spec.shape}")
    ceps = scipy.fft.dct(s, type=2, norm="ortho", axis=0)[:min(N_CEPSTRA, s.shape[0])]
    return np.concatenate([row_stats(s).ravel(), row_stats(np.diff(s, axis=1)).ravel(),
                           ceps.mean(axis=1), ceps.std(axis=1)])


def stack(specs) -> np.ndarray:
    """(clips, n_stats) of a sequence of clip arrays (a list, a FeatureSet)."""
    rows = [clip_stats(specs[i]) for i in range(len(specs))]
    return np.stack(rows) if rows else np.zeros((0, 0))
