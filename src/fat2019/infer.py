"""Whole-clip scores: every window of every clip, batched across clips, aggregated per clip."""
from __future__ import annotations

import numpy as np

from ..kit.forward import predict_batches
from ..kit.progress import progress as progress_bar
from .config import FatConfig
from .pipeline import window_chunks
from .transforms import aggregate_windows


def predict_clips(model, feats, cfg: FatConfig, tta: int = 1, batch_size: int = 256,
                  progress: str | None = None, window_agg: str | None = None) -> np.ndarray:
    """(clips, labels) scores: the model's window scores aggregated per clip (`window_agg`,
    default the config's); `tta` shifted window grids. A stats model (--model stats) scores each
    whole clip from its statistics instead: no windows, so `tta` and `window_agg` do not apply."""
    if cfg.model == "stats":
        return model.predict_clips(feats)
    n_labels = model.output_shape[-1]
    out = np.zeros((len(feats), n_labels), np.float32)
    bar = progress_bar(total=len(feats), desc=progress or "", unit="clip", disable=progress is None)
    for x, owner in window_chunks(feats, cfg, tta):
        p = predict_batches(model, x, batch_size)
        clips = np.unique(owner)
        agg = aggregate_windows(p, owner - clips[0], len(clips), window_agg or cfg.window_agg)
        out[clips] = agg
        bar.update(len(clips))
    bar.close()
    return out
