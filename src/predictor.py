"""Whole-clip scores: every window of every clip, batched across clips, averaged per clip."""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from .config import FatConfig
from .datasets import window_chunks


def predict_clips(model, feats: list[np.ndarray], cfg: FatConfig, tta: int = 1,
                  batch_size: int = 256, progress: str | None = None) -> np.ndarray:
    """(clips, labels) mean of the model's window scores; `tta` shifted window grids."""
    n_labels = model.output_shape[-1]
    sums = np.zeros((len(feats), n_labels))
    counts = np.zeros(len(feats))
    chunks = window_chunks(feats, cfg, tta)
    bar = tqdm(total=len(feats), desc=progress, unit="clip", disable=progress is None)
    for x, owner in chunks:
        p = model.predict(x, batch_size=batch_size, verbose=0)
        np.add.at(sums, owner, p)
        np.add.at(counts, owner, 1)
        bar.update(len(np.unique(owner)))
    bar.close()
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
