"""tf.data input pipelines: random training crops, and whole-clip windows for scoring."""
from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np

from . import transforms
from .config import FatConfig
from .features import FeatureSet
from ..kit.batches import generator_dataset


def crop(feats: FeatureSet, j: int, n: int, rng: np.random.Generator, pad: str) -> np.ndarray:
    """A random `n`-frame crop of clip j, reading only the crop when the clip is long enough."""
    t = int(feats.frames[j])
    if t >= n:
        start = int(rng.integers(0, t - n + 1))
        return feats.crop(j, start, n)
    return transforms.random_crop(feats[j], n, rng, pad)


def epoch_batches(pool: np.ndarray, steps: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """(steps, batch_size) indices: `pool` shuffled, each index once per pass, passes repeated
    (each freshly shuffled) until `steps` batches are full."""
    need = steps * batch_size
    passes = [rng.permutation(pool) for _ in range(-(-need // max(len(pool), 1)))]
    return np.concatenate(passes)[:need].reshape(steps, batch_size)


def training_batches(feats: FeatureSet, y: np.ndarray, weights: np.ndarray, noisy: np.ndarray, cfg: FatConfig,
                     seed: int, start_epoch: int, steps: int, curated_only_from: int | None = None,
                     start_step: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Endless (x, y, w) batches, `steps` per epoch from `start_epoch` on, each epoch drawn from
    its own seed (so a resumed fold sees what an uninterrupted one would have; `start_step` batches
    of the first epoch are drawn and dropped, for a checkpoint inside it). From epoch
    `curated_only_from` on only curated clips are drawn (--noisy finetune).

    x: (B, features, crop_frames, 1); y: (B, labels + 1), the last column saying how noisy the
    example is (mixup mixes it too), for the noise-robust losses; w: per-example loss weight.
    """
    bs, n = cfg.batch_size, cfg.crop_frames
    target = np.concatenate([y, noisy[:, None].astype(np.float32)], axis=1)
    everyone, curated = np.arange(len(feats)), np.flatnonzero(noisy == 0)
    for epoch in itertools.count(start_epoch):
        rng = np.random.default_rng([seed, epoch])
        late = curated_only_from is not None and epoch >= curated_only_from
        for i, idx in enumerate(epoch_batches(curated if late else everyone, steps, bs, rng)):
            x = np.stack([crop(feats, j, n, rng, cfg.pad).astype(np.float32) for j in idx])
            yb, wb = target[idx], weights[idx]
            if cfg.mix_clips > 0:           # the noisy column joins the union: a mixture with a noisy clip is noisy
                x, yb, wb = transforms.mix_and_union(x, yb, wb, cfg.mix_clips, cfg.mix_gain_db, rng)
            if cfg.spec_augment:
                x = np.stack([transforms.spec_augment(c, rng) for c in x])
            if cfg.gain_db > 0 and cfg.feature == "logmel":
                x = np.stack([transforms.random_gain(c, cfg.gain_db, rng) for c in x])
            if cfg.mixup_alpha > 0:
                x, yb, wb = transforms.mixup(x, yb, wb, cfg.mixup_alpha, rng)
            if epoch == start_epoch and i < start_step:
                continue                # drawn all the same: the epoch's random stream stays in step
            yield x[..., None].astype(np.float32), yb.astype(np.float32), wb.astype(np.float32)


def training_dataset(feats: FeatureSet, y, weights, noisy, cfg: FatConfig, seed: int, start_epoch: int, steps: int,
                     curated_only_from: int | None = None, start_step: int = 0):
    import tensorflow as tf  # TensorFlow starts here, on first use: after any feature workers forked

    f, c = cfg.n_features, y.shape[1] + 1
    sig = (tf.TensorSpec((cfg.batch_size, f, cfg.crop_frames, 1), tf.float32),
           tf.TensorSpec((cfg.batch_size, c), tf.float32),
           tf.TensorSpec((cfg.batch_size,), tf.float32))
    return generator_dataset(
        lambda: training_batches(feats, y, weights, noisy, cfg, seed, start_epoch, steps, curated_only_from,
                                 start_step), sig)


def window_chunks(feats, cfg: FatConfig, tta: int = 1, max_windows: int = 2048
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(windows, owner) chunks over many clips at once, so the model sees large batches rather
    than one call per clip; `owner` gives each window's clip index. `feats`: any sequence of
    (features, frames) arrays (a FeatureSet reads them from the cache as needed)."""
    hop = max(1, int(round(cfg.eval_hop * cfg.crop_frames)))
    buf, owners, size = [], [], 0
    for i in range(len(feats)):
        w = transforms.windows(np.asarray(feats[i], dtype=np.float32), cfg.crop_frames, hop, tta, cfg.pad)
        buf.append(w)
        owners.append(np.full(len(w), i))
        size += len(w)
        if size >= max_windows:
            yield np.concatenate(buf)[..., None], np.concatenate(owners)
            buf, owners, size = [], [], 0
    if buf:
        yield np.concatenate(buf)[..., None], np.concatenate(owners)
