"""Discriminative fine-tuning (`--copied-lr-scale`): the layers `--init-from` copied learn at a
fraction of the learning rate, the fresh ones (a classifier over this task's labels) at the full
rate, so a random head's first large gradients do not wash out the pretrained features.

Keras 3 optimizers have one rate for every variable, and Adam's update does not see a scaled
gradient (it divides by the gradient's own magnitude), so the rate itself is scaled: Adam and
AdamW with `update_step` multiplying the rate of the named variables. They save and load with
the model (last.keras, for --resume) like Keras' own optimizers.
"""
from __future__ import annotations

from typing import Any, Iterable

import keras


class _CopiedRate:
    """Mixin over a Keras optimizer: variables whose path is in `copied` step at
    `copied_lr_scale` times the rate."""

    def __init__(self, *args: Any, copied_lr_scale: float = 1.0, copied: Iterable[str] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.copied_lr_scale = float(copied_lr_scale)
        self.copied = tuple(copied)
        self._rate_scales: tuple[float, ...] = ()

    def build(self, variables):
        super().build(variables)
        names = set(self.copied)
        self._rate_scales = tuple(self.copied_lr_scale if v.path in names else 1.0 for v in variables)

    def update_step(self, gradient, variable, learning_rate):
        scale = self._rate_scales[self._get_variable_index(variable)]
        return super().update_step(gradient, variable, learning_rate if scale == 1.0 else learning_rate * scale)

    def get_config(self) -> dict:
        return {**super().get_config(), "copied_lr_scale": self.copied_lr_scale, "copied": list(self.copied)}


@keras.saving.register_keras_serializable("kit")
class CopiedRateAdam(_CopiedRate, keras.optimizers.Adam):
    """Adam with a slower rate for the copied layers."""


@keras.saving.register_keras_serializable("kit")
class CopiedRateAdamW(_CopiedRate, keras.optimizers.AdamW):
    """AdamW with a slower rate for the copied layers (weight decay at the full rate)."""


def adam(learning_rate, copied_lr_scale: float = 1.0, copied: Iterable[str] = (), weight_decay: float | None = None):
    """Adam (AdamW with `weight_decay`); with a scale other than 1 and copied variables, the kind
    above. Plain Keras otherwise, so runs without --copied-lr-scale save exactly as before."""
    copied = tuple(copied)
    kwargs = {} if weight_decay is None else {"weight_decay": weight_decay}
    if copied_lr_scale == 1.0 or not copied:
        return (keras.optimizers.Adam if weight_decay is None else keras.optimizers.AdamW)(learning_rate, **kwargs)
    cls = CopiedRateAdam if weight_decay is None else CopiedRateAdamW
    return cls(learning_rate, copied_lr_scale=copied_lr_scale, copied=copied, **kwargs)
