"""The training loss: binary cross-entropy that knows which examples have noisy labels.

Imports Keras at import time: import it only where TensorFlow may start (after the feature
workers have forked), and before loading a saved model that uses it (it registers itself).
"""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="fat")
class NoisyBCE(keras.losses.Loss):
    """Targets carry one extra last column: how noisy each example is (0 curated, 1 noisy;
    mixup mixes it). Noisy examples are scored against:
      bce        their given labels;
      lsoft      soft bootstrapping (Reed et al. 2015; the L_soft of Fonseca et al. 2019):
                 beta * labels + (1 - beta) * the model's own scores;
      bootstrap  hard bootstrapping: beta * labels + (1 - beta) * (scores > 0.5).
    The model's scores enter the target as constants (no gradient through them)."""

    def __init__(self, kind: str = "bce", beta: float = 0.7, label_smoothing: float = 0.0, **kwargs):
        kwargs.setdefault("name", "noisy_bce")
        super().__init__(**kwargs)
        if kind not in ("bce", "lsoft", "bootstrap"):
            raise ValueError(f"unknown noisy loss {kind!r}")
        self.kind, self.beta, self.label_smoothing = kind, beta, label_smoothing

    def call(self, y_true, y_pred):
        y, noisy = y_true[:, :-1], y_true[:, -1:]
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.kind != "bce":
            own = ops.stop_gradient(p if self.kind == "lsoft" else ops.cast(p > 0.5, p.dtype))
            y = (1 - noisy) * y + noisy * (self.beta * y + (1 - self.beta) * own)
        return ops.mean(-(y * ops.log(p) + (1 - y) * ops.log(1 - p)), axis=-1)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "beta": self.beta, "label_smoothing": self.label_smoothing}
