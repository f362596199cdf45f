"""Networks for log-mel crops. Built from stock Keras layers only, so a saved `.keras` file
loads anywhere (a Kaggle kernel included) without custom objects."""
from __future__ import annotations

import os

from .config import FatConfig


def conv_block(x, filters: int, pool: bool = True):
    from keras import layers

    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)  # few steps per epoch on small data
        x = layers.ReLU()(x)
    if pool:
        x = layers.AveragePooling2D(2)(x)
    return x


def cnn(cfg: FatConfig, n_labels: int):
    """VGG-style 2D CNN (the strong public FAT2019 kernels' design): conv blocks doubling the
    width, average pooling, then max + mean global pooling and a small MLP head."""
    import keras
    from keras import layers

    inp = keras.Input((cfg.n_features, cfg.crop_frames, 1), name="logmel")
    x = inp
    for b in range(cfg.blocks):
        x = conv_block(x, cfg.width * 2 ** b)
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dropout(cfg.dropout)(x)
    x = layers.Dense(cfg.width * 2 ** max(cfg.blocks - 1, 0), activation="relu")(x)
    x = layers.Dropout(cfg.dropout / 2)(x)
    out = layers.Dense(n_labels, activation="sigmoid", name="labels")(x)
    return keras.Model(inp, out, name="cnn")


def vgg19(cfg: FatConfig, n_labels: int, weights: str | None = None):
    """Keras' VGG19 body on the grey log-mel repeated to 3 channels, with a fresh head.

    Weights: a local file (e.g. a Kaggle dataset's vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5),
    since kernels run offline; `VGG19_WEIGHTS` names it when `weights` is not given. Without one the
    body starts from random weights, said aloud.
    """
    import keras
    from keras import layers

    weights = weights or os.environ.get("VGG19_WEIGHTS")
    if weights and not os.path.isfile(weights):
        from .kit.errors import KitError
        raise KitError(f"VGG19 weights {weights}: file not found")
    if not weights:
        print("model: VGG19 without pretrained weights (set VGG19_WEIGHTS to a notop .h5 file)", flush=True)
    inp = keras.Input((cfg.n_features, cfg.crop_frames, 1), name="logmel")
    x = layers.Concatenate()([inp, inp, inp])
    body = keras.applications.VGG19(include_top=False, weights=None,
                                    input_shape=(cfg.n_features, cfg.crop_frames, 3))
    if weights:
        body.load_weights(weights)
    x = body(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dropout(cfg.dropout)(x)
    out = layers.Dense(n_labels, activation="sigmoid", name="labels")(x)
    return keras.Model(inp, out, name="vgg19")


def build(cfg: FatConfig, n_labels: int):
    if cfg.model == "cnn":
        return cnn(cfg, n_labels)
    if cfg.model == "vgg19":
        return vgg19(cfg, n_labels)
    raise ValueError(f"unknown model {cfg.model!r}")
