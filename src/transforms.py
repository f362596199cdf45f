"""Pure numpy transforms on (features, frames) arrays: crops, windows, SpecAugment, mixup."""
from __future__ import annotations

import numpy as np


def fit_length(feat: np.ndarray, n: int) -> np.ndarray:
    """Repeat a clip shorter than `n` frames along time (as audio.pad_to does for samples)."""
    t = feat.shape[1]
    if t >= n:
        return feat
    return np.tile(feat, (1, int(np.ceil(n / t))))[:, :n]


def random_crop(feat: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    feat = fit_length(feat, n)
    start = int(rng.integers(0, feat.shape[1] - n + 1))
    return feat[:, start:start + n]


def window_starts(t: int, n: int, hop: int, offset: int = 0) -> list[int]:
    """Starts of `n`-frame windows every `hop` frames from `offset`, the last one flush with the
    end, so every frame of the clip is scored at least once."""
    if t <= n:
        return [0]
    last = t - n
    starts = list(range(min(offset, last), last + 1, max(hop, 1)))
    if starts[-1] != last:
        starts.append(last)
    return starts


def windows(feat: np.ndarray, n: int, hop: int, tta: int = 1) -> np.ndarray:
    """(W, features, n) windows covering the clip on `tta` grids shifted by hop / tta."""
    feat = fit_length(feat, n)
    starts = sorted({s for k in range(max(tta, 1))
                     for s in window_starts(feat.shape[1], n, hop, offset=round(k * hop / max(tta, 1)))})
    return np.stack([feat[:, s:s + n] for s in starts])


def spec_augment(x: np.ndarray, rng: np.random.Generator, n_masks: int = 2,
                 max_freq: float = 0.15, max_time: float = 0.15) -> np.ndarray:
    """SpecAugment masks on a (features, frames) crop, filled with the crop's mean."""
    x = x.copy()
    f, t = x.shape
    fill = x.mean()
    for _ in range(n_masks):
        w = int(rng.integers(0, int(max_freq * f) + 1))
        s = int(rng.integers(0, f - w + 1))
        x[s:s + w, :] = fill
        w = int(rng.integers(0, int(max_time * t) + 1))
        s = int(rng.integers(0, t - w + 1))
        x[:, s:s + w] = fill
    return x


def mixup(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float, rng: np.random.Generator):
    """Blend each example with a random partner of the batch: inputs, targets and weights."""
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    perm = rng.permutation(len(x))
    lx = lam.reshape((-1,) + (1,) * (x.ndim - 1))
    return (lx * x + (1 - lx) * x[perm], lam[:, None] * y + (1 - lam[:, None]) * y[perm],
            lam * w + (1 - lam) * w[perm])
