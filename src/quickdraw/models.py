"""Quick, Draw! models: stacked (bi)LSTM and Conv1D-LSTM on stroke sequences, a vanilla CNN and an
Inception-style CNN on rasters. Built-in Keras layers, plus two small masking layers registered
with keras.saving (resume loads last.keras). Each model is one flat functional graph, so its
weights load by layer into the same graph rebuilt from config.json by another Keras version.

Imports Keras at import time: the training and prediction code import this module only once
TensorFlow may start (kit.distribute.quiet_tensorflow first).
"""
from __future__ import annotations

from ..kit.distribute import quiet_tensorflow

quiet_tensorflow()

import keras  # noqa: E402  (after the log level is set)
from keras import layers  # noqa: E402

from ..kit import layer_rates  # noqa: E402,F401  (registers --copied-lr-scale's optimizers: best.keras loads)
from .config import QDConfig  # noqa: E402


@keras.saving.register_keras_serializable(package="quickdraw")
class MaskLike(layers.Layer):
    """[features, sequence] -> features zeroed where `sequence` is padding (an all-zero row),
    carrying that mask on (Conv1D drops Keras masks; this puts it back for the LSTMs)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        feats, seq = inputs
        m = keras.ops.any(keras.ops.not_equal(seq, 0), axis=-1, keepdims=True)
        return feats * keras.ops.cast(m, feats.dtype)

    def compute_mask(self, inputs, mask=None):
        return keras.ops.any(keras.ops.not_equal(inputs[1], 0), axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="quickdraw")
class MaskedSum(layers.Layer):
    """Sum over time of the unmasked steps (the TF Quick Draw tutorial's pooling)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is not None:
            x = x * keras.ops.cast(keras.ops.expand_dims(mask, -1), x.dtype)
        return keras.ops.sum(x, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def _rnn(units: int, bidirectional: bool, return_sequences: bool, name: str):
    lstm = layers.LSTM(units, return_sequences=return_sequences, name=name)
    return layers.Bidirectional(lstm, name="bi_" + name) if bidirectional else lstm


def lstm_model(n_classes: int, cfg: QDConfig, feats: int) -> keras.Model:
    """Vanilla stacked (bi)LSTM on masked stroke-3/5; the last layer's final state classifies."""
    inp = keras.Input((cfg.max_len, feats), name="strokes")
    x = layers.Masking(0.0, name="mask")(inp)
    for i in range(cfg.lstm_layers):
        x = _rnn(cfg.lstm_units, cfg.bidirectional, i < cfg.lstm_layers - 1, f"lstm{i}")(x)
    x = layers.Dropout(cfg.dropout)(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inp, out, name="lstm")


def convlstm_model(n_classes: int, cfg: QDConfig, feats: int) -> keras.Model:
    """TF Quick Draw tutorial: Conv1D 48/64/96 (kernels 5/5/3), stacked bidirectional LSTMs,
    masked sum over time, softmax."""
    inp = keras.Input((cfg.max_len, feats), name="strokes")
    x = inp
    for f, k in ((48, 5), (64, 5), (96, 3)):
        x = layers.Conv1D(f, k, padding="same", activation="relu", name=f"conv{f}")(x)
    x = MaskLike(name="mask")([x, inp])
    for i in range(cfg.lstm_layers):
        x = _rnn(cfg.lstm_units, cfg.bidirectional, True, f"lstm{i}")(x)
    x = MaskedSum(name="sum_over_time")(x)
    x = layers.Dropout(cfg.dropout)(x)
    out = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inp, out, name="convlstm")


def _conv_bn(x, f: int, k: int, name: str, sync: bool = False):
    """Conv-BN-ReLU; `sync`: batch statistics over every replica (multi-worker training)."""
    x = layers.Conv2D(f, k, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=0.9, name=name + "_bn", synchronized=sync)(x)
    return layers.Activation("relu", name=name + "_relu")(x)


def _raster_input(cfg: QDConfig):
    """uint8 raster input, scaled to [0, 1] inside the model (so batches travel as bytes)."""
    s = cfg.raster_size
    inp = keras.Input((s, s, 1), dtype="uint8", name="raster")
    return inp, layers.Rescaling(1 / 255.0, name="scale")(inp)


def _softmax_head(x, n_classes: int, cfg: QDConfig):
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(cfg.dropout)(x)
    return layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(x)


def cnn_model(n_classes: int, cfg: QDConfig) -> keras.Model:
    """Vanilla CNN: blocks of two 3x3 conv-BN-ReLU + 2x2 max-pool, filters doubling per block,
    global average pooling, dropout, softmax."""
    inp, x = _raster_input(cfg)
    f = cfg.cnn_filters
    sync = cfg.strategy == "multiworker"
    for b in range(cfg.cnn_blocks):
        x = _conv_bn(x, f, 3, f"b{b}c0", sync)
        x = _conv_bn(x, f, 3, f"b{b}c1", sync)
        x = layers.MaxPooling2D(2, name=f"b{b}pool")(x)
        f *= 2
    out = _softmax_head(x, n_classes, cfg)
    return keras.Model(inp, out, name="cnn")


def _inception(x, f: int, name: str, sync: bool):
    """Inception (v1-style, 5x5 as two 3x3): 1x1 | 1x1-3x3 | 1x1-3x3-3x3 | 3x3 max-pool-1x1."""
    b1 = _conv_bn(x, f, 1, name + "_1x1", sync)
    b2 = _conv_bn(_conv_bn(x, f // 2, 1, name + "_3r", sync), f, 3, name + "_3x3", sync)
    b3 = _conv_bn(x, f // 4, 1, name + "_5r", sync)
    b3 = _conv_bn(_conv_bn(b3, f // 2, 3, name + "_5a", sync), f // 2, 3, name + "_5b", sync)
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=name + "_pool")(x)
    b4 = _conv_bn(b4, f // 2, 1, name + "_pp", sync)
    return layers.Concatenate(name=name)([b1, b2, b3, b4])


def inception_model(n_classes: int, cfg: QDConfig) -> keras.Model:
    """Inception-style CNN: a conv stem, then per stage an inception module and a max-pool
    (cnn_blocks - 1 stages, filters doubling), global average pooling, dropout, softmax."""
    inp, x = _raster_input(cfg)
    f = cfg.cnn_filters
    sync = cfg.strategy == "multiworker"
    x = _conv_bn(x, f, 3, "stem", sync)
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    for b in range(max(cfg.cnn_blocks - 1, 1)):
        x = _inception(x, f, f"inc{b}", sync)
        x = layers.MaxPooling2D(2, name=f"pool{b}")(x)
        f *= 2
    out = _softmax_head(x, n_classes, cfg)
    return keras.Model(inp, out, name="inception")


def build_model(cfg: QDConfig, n_classes: int) -> keras.Model:
    """The model `cfg.model` (uncompiled); call inside `strategy.scope()`."""
    feats = 5 if cfg.stroke5 else 3
    if cfg.model == "lstm":
        return lstm_model(n_classes, cfg, feats)
    if cfg.model == "convlstm":
        return convlstm_model(n_classes, cfg, feats)
    if cfg.model == "cnn":
        return cnn_model(n_classes, cfg)
    if cfg.model == "inception":
        return inception_model(n_classes, cfg)
    raise ValueError(f"unknown model {cfg.model!r}")
