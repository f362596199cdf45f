"""Whole-clip scores: every window of every clip, batched across clips, aggregated per clip."""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from .config import FatConfig
from .datasets import window_chunks
from .transforms import aggregate_windows


def predict_clips(model, feats, cfg: FatConfig, tta: int = 1, batch_size: int = 256,
                  progress: str | None = None, window_agg: str | None = None) -> np.ndarray:
    """(clips, labels) scores: the model's window scores aggregated per clip (`window_agg`,
    default the config's); `tta` shifted window grids."""
    n_labels = model.output_shape[-1]
    out = np.zeros((len(feats), n_labels), np.float32)
    bar = tqdm(total=len(feats), desc=progress, unit="clip", disable=progress is None)
    for x, owner in window_chunks(feats, cfg, tta):
        p = model.predict(x, batch_size=batch_size, verbose=0)
        clips = np.unique(owner)
        agg = aggregate_windows(p, owner - clips[0], len(clips), window_agg or cfg.window_agg)
        out[clips] = agg
        bar.update(len(clips))
    bar.close()
    return out
