"""Validation on mixtures: each fold's held-out clips mixed in pairs, the targets the union.

Why: FAT2019's test holds multi-label clips (two sounds at once), but the curated clips the
folds validate on hold none, so out-of-fold lwlrap cannot see what `--mix-clips` is for. Both
clips of a mixture come from the same fold, so that fold's model trained on neither. The mixing
is mix-and-union's (`transforms.mix_logmel`: mel powers added at a relative gain) on whole clips;
the shorter clip is silent past its end. The pairs and gains depend only on the fold's clips,
their labels and the seed, so every run is scored on the same mixtures.
"""
from __future__ import annotations

import numpy as np

from . import transforms

SILENT = (transforms.DB_SCALE - transforms.FLOOR_DB) / transforms.DB_SCALE     # the log-mel floor: -1


def partners(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each clip (a row of 0/1 `labels`), a random other clip sharing none of its labels;
    -1 where there is none."""
    on = np.asarray(labels) > 0
    out = np.full(len(on), -1)
    for i in range(len(on)):
        ok = np.flatnonzero(~(on & on[i]).any(axis=1) & on.any(axis=1))
        if len(ok):
            out[i] = rng.choice(ok)
    return out


def mix_whole(a: np.ndarray, b: np.ndarray, gain_db: float) -> np.ndarray:
    """Two whole log-mel clips (bands, frames) as one recording of both, as long as the longer."""
    n = max(a.shape[1], b.shape[1])
    pad = lambda x: np.pad(x, ((0, 0), (0, n - x.shape[1])), constant_values=SILENT)   # noqa: E731
    return transforms.mix_logmel(pad(a), pad(b), gain_db)


def mixtures(specs, truth: np.ndarray, seed: int, max_gain_db: float) -> tuple[list[np.ndarray], np.ndarray]:
    """(mixed clips, their union targets): clip i with its partner at a gain uniform in
    +-`max_gain_db`, for every clip that has a partner."""
    rng = np.random.default_rng(seed)
    part = partners(truth, rng)
    gains = rng.uniform(-max_gain_db, max_gain_db, len(part))
    keep = [i for i in range(len(part)) if part[i] >= 0]
    mixed = [mix_whole(np.asarray(specs[i]), np.asarray(specs[part[i]]), gains[i]) for i in keep]
    union = np.maximum(truth[keep], truth[part[keep]]) if keep else np.zeros((0, truth.shape[1]))
    return mixed, union


def multi_label_share(label_lists) -> float:
    """The share of clips with more than one label, from comma-separated label strings: what a
    test drawn like the training clips would hold in mixtures."""
    n = [len([s for s in str(x).split(",") if s.strip()]) for x in label_lists]
    return float(np.mean([k > 1 for k in n])) if n else 0.0


def combined(out_of_fold: float, on_mixtures: float, share: float) -> float:
    """One validation score for a test holding `share` mixtures: singles and mixtures weighed by it."""
    return (1.0 - share) * out_of_fold + share * on_mixtures


def break_even(a: tuple[float, float], b: tuple[float, float]) -> float | None:
    """The mixture share at which runs a and b ((out-of-fold, mixtures) each) score the same
    combined; None when one is ahead (or level) at every share in [0, 1]."""
    d_single, d_mix = a[0] - b[0], a[1] - b[1]
    if d_single == d_mix:
        return None
    share = d_single / (d_single - d_mix)
    return share if 0.0 < share < 1.0 else None
