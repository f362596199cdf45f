"""tf.data input pipelines: random training crops, and whole-clip windows for scoring."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from . import transforms
from .config import FatConfig


def training_batches(feats: list[np.ndarray], y: np.ndarray, weights: np.ndarray, cfg: FatConfig,
                     seed: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Endless (x, y, w) batches: every clip once per pass, in a new order each pass, a random
    crop of each, SpecAugment and mixup when configured. x: (B, features, crop_frames, 1)."""
    rng = np.random.default_rng(seed)
    n, bs = len(feats), cfg.batch_size
    while True:
        order = rng.permutation(n)
        for i in range(0, n - bs + 1 if n >= bs else 1, bs):
            idx = order[i:i + bs]
            if len(idx) < bs:            # fewer clips than one batch: sample with replacement
                idx = rng.choice(n, size=bs)
            x = np.stack([transforms.random_crop(feats[j].astype(np.float32), cfg.crop_frames, rng) for j in idx])
            if cfg.spec_augment:
                x = np.stack([transforms.spec_augment(c, rng) for c in x])
            yb, wb = y[idx], weights[idx]
            if cfg.mixup_alpha > 0:
                x, yb, wb = transforms.mixup(x, yb, wb, cfg.mixup_alpha, rng)
            yield x[..., None].astype(np.float32), yb.astype(np.float32), wb.astype(np.float32)


def training_dataset(feats, y, weights, cfg: FatConfig, seed: int):
    import tensorflow as tf

    f, c = cfg.n_features, y.shape[1]
    sig = (tf.TensorSpec((cfg.batch_size, f, cfg.crop_frames, 1), tf.float32),
           tf.TensorSpec((cfg.batch_size, c), tf.float32),
           tf.TensorSpec((cfg.batch_size,), tf.float32))
    ds = tf.data.Dataset.from_generator(lambda: training_batches(feats, y, weights, cfg, seed),
                                        output_signature=sig)
    return ds.prefetch(tf.data.AUTOTUNE)


def window_chunks(feats: list[np.ndarray], cfg: FatConfig, tta: int = 1, max_windows: int = 2048
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(windows, owner) chunks over many clips at once, so the model sees large batches rather
    than one call per clip; `owner` gives each window's clip index."""
    hop = max(1, int(round(cfg.eval_hop * cfg.crop_frames)))
    buf, owners, size = [], [], 0
    for i, feat in enumerate(feats):
        w = transforms.windows(feat.astype(np.float32), cfg.crop_frames, hop, tta)
        buf.append(w)
        owners.append(np.full(len(w), i))
        size += len(w)
        if size >= max_windows:
            yield np.concatenate(buf)[..., None], np.concatenate(owners)
            buf, owners, size = [], [], 0
    if buf:
        yield np.concatenate(buf)[..., None], np.concatenate(owners)
