"""Quick Draw model inputs: stroke-3/5 sequences or rasters, made on the fly in batches
(augmented afresh every epoch) and fed through the kit's tf.data pipeline."""
from __future__ import annotations

import numpy as np

from ..kit.batches import generator_dataset, signature_of
from .config import QDConfig
from .strokes import Ink, augment, mirror, rasterize, to_stroke3


def model_inputs(ink: Ink, cfg: QDConfig) -> np.ndarray:
    """What the model `cfg.model` eats: stroke-3/5 (N, T, F) float32 or rasters (N, S, S, 1) uint8."""
    if cfg.is_sequence:
        return to_stroke3(ink, cfg.max_len, stroke5=cfg.stroke5)
    return rasterize(ink, cfg.raster_size, cfg.line_width, time_colour=cfg.time_colour)[..., None]


def make_batches(ink: Ink, y: np.ndarray | None, cfg: QDConfig, train: bool, seed: int = 0, start_epoch: int = 0):
    """A keras PyDataset: batches converted on the fly; training batches shuffled and, with
    cfg.augment, freshly distorted every epoch from a generator seeded by (seed, epoch, batch),
    so a resumed fold sees exactly what an uninterrupted one would have."""
    import keras  # TensorFlow starts here, on first use: after any feature workers forked

    class InkBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = start_epoch
            self.order = self._order()

        def _order(self):
            if not train:
                return np.arange(len(ink))
            return np.random.default_rng([seed, self.epoch]).permutation(len(ink))

        def __len__(self):
            return max(1, -(-len(ink) // cfg.batch_size))

        def __getitem__(self, i):
            idx = self.order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            part = ink.take(idx)
            if train and cfg.augment:
                rng = np.random.default_rng([seed, self.epoch, i])
                part = augment(part, rng, cfg.aug_rotate, cfg.aug_scale, cfg.aug_shear,
                               cfg.aug_jitter, cfg.aug_dropout)
                if cfg.aug_flip > 0:                # drawn after augment's: runs without flips unchanged
                    part = mirror(part, rng.random(len(part)) < cfg.aug_flip)
            x = model_inputs(part, cfg)
            if y is None:
                return (x,)
            return x, y[idx]

        def on_epoch_end(self):
            self.epoch += 1
            self.order = self._order()

    return InkBatches()


def training_dataset(ink: Ink, y: np.ndarray, cfg: QDConfig, seed: int, start_epoch: int, start_step: int = 0):
    """(tf.data of endless training epochs from `start_epoch` on, batches per epoch): make_batches'
    batches through the kit's generator pipeline (kit.batches), as FAT2019's, rather than Keras'
    own PyDataset adapter, whose autotuned prefetch held each fit up to a minute at its end. The
    first epoch starts at batch `start_step` (a checkpoint inside it): each batch is seeded by
    (seed, epoch, batch), so the skipped ones need not be drawn."""
    def epochs():
        batches = make_batches(ink, y, cfg, train=True, seed=seed, start_epoch=start_epoch)
        first = start_step
        while True:
            for i in range(first, len(batches)):
                yield batches[i]
            first = 0
            batches.on_epoch_end()

    first = make_batches(ink, y, cfg, train=True, seed=seed, start_epoch=start_epoch)
    return generator_dataset(epochs, signature_of(first[0])), len(first)
