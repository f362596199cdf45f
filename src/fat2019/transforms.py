"""Pure numpy transforms on (features, frames) arrays: crops, windows, SpecAugment, gain, mixup,
mix-and-union."""
from __future__ import annotations

import numpy as np

DB_SCALE = 40.0          # features.logmel maps dB to (dB + 40) / 40: one unit is 40 dB


def fit_length(feat: np.ndarray, n: int, pad: str = "repeat", rng: np.random.Generator | None = None) -> np.ndarray:
    """A clip shorter than `n` frames made `n` long: repeated along time (as audio.pad_to does
    for samples), or placed in silence (the clip's floor value), at a random offset when `rng`
    is given, else at the start."""
    t = feat.shape[1]
    if t >= n:
        return feat
    if pad == "repeat":
        return np.tile(feat, (1, int(np.ceil(n / t))))[:, :n]
    if pad != "silence":
        raise ValueError(f"unknown pad {pad!r}")
    out = np.full((feat.shape[0], n), feat.min(), dtype=feat.dtype)
    start = int(rng.integers(0, n - t + 1)) if rng is not None else 0
    out[:, start:start + t] = feat
    return out


def random_crop(feat: np.ndarray, n: int, rng: np.random.Generator, pad: str = "repeat") -> np.ndarray:
    feat = fit_length(feat, n, pad, rng)
    start = int(rng.integers(0, feat.shape[1] - n + 1))
    return feat[:, start:start + n]


def random_gain(x: np.ndarray, max_db: float, rng: np.random.Generator) -> np.ndarray:
    """Shift a log-mel crop by U(-max_db, max_db) dB. The kit's log-mel is relative to each
    clip's peak, so a gain on the audio would cancel out; a shift of the dB scale is what a
    different recording level looks like to the model."""
    return x + np.float32(rng.uniform(-max_db, max_db) / DB_SCALE)


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


def windows(feat: np.ndarray, n: int, hop: int, tta: int = 1, pad: str = "repeat") -> np.ndarray:
    """(W, features, n) windows covering the clip on `tta` grids shifted by hop / tta."""
    feat = fit_length(feat, n, pad)
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


def aggregate_windows(scores: np.ndarray, owner: np.ndarray, n_clips: int, how: str = "mean") -> np.ndarray:
    """Per-clip scores from window scores (`owner`: each window's clip): the mean, the max
    (a short event inside a long clip), or the average of the two."""
    counts = np.bincount(owner, minlength=n_clips).astype(np.float64)
    mean = np.zeros((n_clips, scores.shape[1]))
    np.add.at(mean, owner, scores)
    mean /= np.maximum(counts, 1)[:, None]
    if how == "mean":
        return mean
    mx = np.full((n_clips, scores.shape[1]), -np.inf)
    np.maximum.at(mx, owner, scores)
    mx[counts == 0] = 0.0
    if how == "max":
        return mx
    if how == "meanmax":
        return (mean + mx) / 2
    raise ValueError(f"unknown window aggregation {how!r}")


def mixup(x: np.ndarray, y: np.ndarray, w: np.ndarray, alpha: float, rng: np.random.Generator):
    """Blend each example with a random partner of the batch: inputs, targets and weights."""
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    perm = rng.permutation(len(x))
    lx = lam.reshape((-1,) + (1,) * (x.ndim - 1))
    return (lx * x + (1 - lx) * x[perm], lam[:, None] * y + (1 - lam[:, None]) * y[perm],
            lam * w + (1 - lam) * w[perm])


FLOOR_DB = 80.0          # features.logmel's floor below the clip's peak


def mix_logmel(a: np.ndarray, b: np.ndarray, gain_db: float) -> np.ndarray:
    """Two log-mel crops as one recording of both sounds: their mel powers added (b raised by
    `gain_db`), then made relative to the mixture's peak with the 80 dB floor, as features.logmel
    makes a clip's. Each input is relative to its own peak, so `gain_db` is the level of b's
    loudest bin against a's."""
    db_a = a.astype(np.float64) * DB_SCALE - DB_SCALE
    db_b = b.astype(np.float64) * DB_SCALE - DB_SCALE + gain_db
    db = 10.0 * np.log10(10.0 ** (db_a / 10.0) + 10.0 ** (db_b / 10.0))
    db = np.maximum(db - db.max(), -FLOOR_DB)
    return ((db + DB_SCALE) / DB_SCALE).astype(a.dtype)


def mix_draws(n: int, p: float, max_gain_db: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mix-and-union's random draws for n examples: which are mixed (probability `p`), each one's
    partner (another example, never itself for n > 1) and relative gain (uniform in
    +-`max_gain_db`). Shared by the networks' batches and the stats model's whole clips."""
    chosen = rng.random(n) < p
    partner = (np.arange(n) + rng.integers(1, max(n, 2), size=n)) % n
    gains = rng.uniform(-max_gain_db, max_gain_db, size=n)
    return chosen, partner, gains


def mix_and_union(x: np.ndarray, y: np.ndarray, w: np.ndarray, p: float, max_gain_db: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """With probability `p` an example becomes the mixture of itself and another example of the
    batch (relative gain uniform in +-`max_gain_db`); its targets are the union of both clips'
    (the test's multi-label clips are such mixtures) and its loss weight the lower of the two
    (a mixture is no more trustworthy than its noisier part). x: (B, features, frames); y: 0/1
    targets (B, C); w: (B,)."""
    n = len(x)
    chosen, partner, gains = mix_draws(n, p, max_gain_db, rng)
    if n < 2 or not chosen.any():
        return x, y, w
    mx, my, mw = x.copy(), y.copy(), w.copy()       # partners are read from the unmixed batch
    for i in np.flatnonzero(chosen):
        j = partner[i]
        mx[i] = mix_logmel(x[i], x[j], gains[i])
        my[i] = np.maximum(y[i], y[j])
        mw[i] = min(w[i], w[j])
    return mx, my, mw
