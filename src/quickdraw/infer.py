"""Quick Draw class probabilities from a trained model, inputs converted chunk by chunk."""
from __future__ import annotations

import numpy as np

from ..kit.forward import predict_batches
from .config import QDConfig
from .pipeline import model_inputs
from .strokes import Ink, mirror


def top_k(probs: np.ndarray, k: int = 3) -> np.ndarray:
    """Indices of the k largest per row, best first (ties: lower index first)."""
    return np.argsort(-probs, axis=1, kind="stable")[:, :k]


def predict_probs(model, ink: Ink, cfg: QDConfig, batch_size: int = 256, chunk: int = 4096) -> np.ndarray:
    """Class probabilities, inputs converted `chunk` drawings at a time (memory stays bounded);
    with cfg.flips_at_test, the mean of each drawing's and its mirror image's."""
    if len(ink) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    out = []
    for s in range(0, len(ink), chunk):
        part = ink.take(np.arange(s, min(s + chunk, len(ink))))
        p = predict_batches(model, model_inputs(part, cfg), batch_size)
        if cfg.flips_at_test:
            p = (p + predict_batches(model, model_inputs(mirror(part), cfg), batch_size)) / 2
        out.append(p)
    return np.concatenate(out)
