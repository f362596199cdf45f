"""Networks for log-mel crops.

Every model is one flat functional graph of stock Keras layers (no model nested in a model):
weights saved by one Keras version then load by layer into the same graph rebuilt by another
(how the Kaggle kernels load them), which nested containers do not guarantee.
"""
from __future__ import annotations

import glob
import os

import numpy as np

from .config import FatConfig
from ..kit import runs
from ..kit.errors import KitError

VGG_BLOCKS = 5
IMAGENET_BGR_MEAN = [103.939, 116.779, 123.68]    # keras.applications.vgg19.preprocess_input ('caffe')
NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
# Scale of the delta channels so their spread matches the log-mel's (measured on real clips:
# the log-mel's std is about 0.35, its deltas' about 0.035 and delta-deltas' about 0.012).
DELTA_SCALES = (10.0, 30.0)


def conv_block(x, filters: int, pool: bool = True, synchronized: bool = False, separable: bool = False,
               stride: int = 1):
    """Two conv-BN-ReLU, then 2x2 average pooling. `synchronized`: batch statistics over every
    replica (multi-worker training, where each worker sees part of the batch). `separable`:
    depthwise-separable 3x3 convolutions (a 3x3 per channel, then a 1x1 across channels: about
    9*C_in + C_in*C_out multiply-adds a pixel instead of 9*C_in*C_out) wherever the input has
    more than one channel. `stride`: of the first convolution (2: the block, and every one after
    it, works on a quarter of the positions)."""
    from keras import layers  # TensorFlow starts here, on first use: after any feature workers forked

    for i in range(2):
        s = stride if i == 0 else 1
        if separable and x.shape[-1] > 1:
            x = layers.SeparableConv2D(filters, 3, strides=s, padding="same", use_bias=False)(x)
        else:
            x = layers.Conv2D(filters, 3, strides=s, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9, synchronized=synchronized)(x)  # momentum: few steps per epoch
        x = layers.ReLU()(x)
    if pool:
        x = layers.AveragePooling2D(2)(x)
    return x


def cnn(cfg: FatConfig, n_labels: int):
    """VGG-style 2D CNN (the strong public FAT2019 kernels' design): conv blocks doubling the
    width, average pooling, then max + mean global pooling and a small MLP head."""
    import keras  # TensorFlow starts here, on first use: after any feature workers forked
    from keras import layers  # TensorFlow starts here, on first use: after any feature workers forked

    shrink = cfg.stem_stride * 2 ** cfg.blocks
    if min(cfg.n_features, cfg.crop_frames) < shrink:
        raise KitError(f"--blocks {cfg.blocks} with --stem-stride {cfg.stem_stride} shrink each side of the "
                       f"crop {shrink} times, and the crop is {cfg.n_features} x {cfg.crop_frames} (features x "
                       f"frames): use fewer --blocks, --stem-stride 1, or a larger --n-mels / --crop-frames")
    inp = keras.Input((cfg.n_features, cfg.crop_frames, 1), name="logmel")
    x = inp
    for b in range(cfg.blocks):
        x = conv_block(x, cfg.width * 2 ** b, synchronized=cfg.strategy == "multiworker",
                       separable=cfg.conv == "separable" or (cfg.conv == "hybrid" and b > 0),
                       stride=cfg.stem_stride if b == 0 else 1)
    x = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    x = layers.Dropout(cfg.dropout)(x)
    x = layers.Dense(cfg.width * 2 ** max(cfg.blocks - 1, 0), activation="relu")(x)
    x = layers.Dropout(cfg.dropout / 2)(x)
    out = layers.Dense(n_labels, activation="sigmoid", name="labels", dtype="float32")(x)   # float32 under mixed
    return keras.Model(inp, out, name="cnn")


def find_vgg_weights(spec: str) -> str | None:
    """The VGG19 body weights file for `--weights` (a path, 'imagenet', 'none' or '' = search):
    $VGG19_WEIGHTS, then the Keras cache, then any /kaggle/input/*/ folder. None = random init."""
    if spec == "none":
        return None
    if spec and spec != "imagenet":
        return spec
    candidates = [os.environ.get("VGG19_WEIGHTS", "")]
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    candidates.append(os.path.join(keras_home, "models", NOTOP_FILE))
    candidates += sorted(glob.glob(os.path.join("/kaggle/input", "*", "**", NOTOP_FILE), recursive=True))
    found = next((c for c in candidates if c and os.path.isfile(c)), None)
    if found:
        return found
    if spec == "imagenet":
        return "imagenet"          # keras downloads it (needs internet)
    raise KitError(f"--model vgg19 needs ImageNet weights for its body and none were found: put "
                   f"{NOTOP_FILE} in {os.path.join(keras_home, 'models')}, or name it with --weights PATH or "
                   f"VGG19_WEIGHTS, or attach it as a Kaggle dataset (searched /kaggle/input/*/); "
                   f"'--weights imagenet' downloads it where there is internet; '--weights none' trains "
                   f"from random weights on purpose")


def _vgg_body_weights(path: str, shape: tuple[int, int, int]):
    """The weights of Keras' VGG19 without top from `path`, checked: a clear error for a
    missing file, a file that is not HDF5, or one whose shapes do not fit."""
    import keras  # TensorFlow starts here, on first use: after any feature workers forked

    if path == "imagenet":
        return keras.applications.VGG19(include_top=False, weights="imagenet", input_shape=shape)
    if not os.path.isfile(path):
        raise KitError(f"--weights {path}: file not found (expected a Keras VGG19 no-top weights file, "
                       f"e.g. {NOTOP_FILE})")
    with open(path, "rb") as f:
        if f.read(8) != b"\x89HDF\r\n\x1a\n":
            raise KitError(f"--weights {path}: not an HDF5 file (expected a Keras .h5 / .weights.h5 file "
                           f"of VGG19 without its top)")
    body = keras.applications.VGG19(include_top=False, weights=None, input_shape=shape)
    try:
        runs.load_weights_checked(body, path)
    except KitError as e:
        raise KitError(f"--weights {e}") from None
    except Exception as e:  # noqa: BLE001 - Keras raises ValueError/KeyError/TypeError for a file of another model
        raise KitError(f"--weights {path}: does not fit VGG19 without top ({e.__class__.__name__}: "
                       f"{str(e).strip()[:200]})") from None
    return body


def vgg19(cfg: FatConfig, n_labels: int, weights: str | None = None):
    """Keras' VGG19 body on the log-mel as a 3-channel image (repeated, or log-mel + deltas),
    scaled as its ImageNet weights expect ('caffe': 0-255, BGR means subtracted), frozen unless
    --unfreeze; global mean + max pooling and a dense head with dropout; sigmoid per label.

    `weights`: a file or 'imagenet' (copied into the body), None (random init). The body's
    layers are part of the flat graph (built on our tensor), not a nested model.
    """
    import keras  # TensorFlow starts here, on first use: after any feature workers forked
    from keras import layers  # TensorFlow starts here, on first use: after any feature workers forked

    inp = keras.Input((cfg.n_features, cfg.crop_frames, 1), name="logmel")
    if cfg.vgg_input == "deltas":
        kernel = np.array([-2, -1, 0, 1, 2], np.float32).reshape(1, 5, 1, 1) / 10.0   # delta, N=2
        delta = layers.Conv2D(1, (1, 5), padding="same", use_bias=False, trainable=False, name="delta")
        delta2 = layers.Conv2D(1, (1, 5), padding="same", use_bias=False, trainable=False, name="delta2")
        d1 = delta(inp)
        d2 = delta2(d1)
        delta.set_weights([kernel])
        delta2.set_weights([kernel])
        d1 = layers.Rescaling(DELTA_SCALES[0], name="delta_scale")(d1)
        d2 = layers.Rescaling(DELTA_SCALES[1], name="delta2_scale")(d2)
        x = layers.Concatenate(name="channels")([inp, d1, d2])
    else:
        x = layers.Concatenate(name="channels")([inp, inp, inp])
    x = layers.Rescaling(127.5, offset=127.5, name="to_pixels")(x)            # [-1, 1] -> [0, 255]
    x = layers.Normalization(mean=IMAGENET_BGR_MEAN, variance=[1.0, 1.0, 1.0], name="imagenet_mean")(x)
    body = keras.applications.VGG19(include_top=False, weights=None, input_tensor=x)
    if weights is not None:
        src = _vgg_body_weights(weights, (cfg.n_features, cfg.crop_frames, 3))
        for layer in src.layers:
            if layer.weights:
                body.get_layer(layer.name).set_weights(layer.get_weights())
    for layer in body.layers:
        if layer.name.startswith("block"):
            layer.trainable = False
    x = layers.Concatenate(name="pool")([layers.GlobalAveragePooling2D()(body.output),
                                         layers.GlobalMaxPooling2D()(body.output)])
    x = layers.Dropout(cfg.dropout)(x)
    x = layers.Dense(256, activation="relu", name="head")(x)
    x = layers.Dropout(cfg.dropout)(x)
    out = layers.Dense(n_labels, activation="sigmoid", name="labels", dtype="float32")(x)   # float32 under mixed
    return keras.Model(inp, out, name="vgg19")


def unfreeze(model, n_blocks: int) -> list[str]:
    """Make the last `n_blocks` VGG19 conv blocks trainable; returns their layer names."""
    if not 0 <= n_blocks <= VGG_BLOCKS:
        raise KitError(f"--unfreeze {n_blocks}: VGG19 has {VGG_BLOCKS} conv blocks")
    blocks = {f"block{b}_" for b in range(VGG_BLOCKS - n_blocks + 1, VGG_BLOCKS + 1)} if n_blocks else set()
    names = []
    for layer in model.layers:
        if layer.name.startswith("block"):
            layer.trainable = layer.name[:7] in blocks
            if layer.trainable and layer.weights:
                names.append(layer.name)
    return names


def build(cfg: FatConfig, n_labels: int, pretrained: bool = False):
    """The network of `cfg`. `pretrained`: load the VGG19 body's ImageNet weights (training);
    prediction rebuilds the graph and loads the fold's own weights instead."""
    if cfg.model == "cnn":
        return cnn(cfg, n_labels)
    if cfg.model == "vgg19":
        return vgg19(cfg, n_labels, find_vgg_weights(cfg.weights) if pretrained else None)
    if cfg.model == "stats":            # not a network: whole-clip statistics + logistic regression
        from .statsmodel import StatsModel

        return StatsModel(cfg.n_features, n_labels)
    raise ValueError(f"unknown model {cfg.model!r}")


def loss(cfg: FatConfig):
    """The training loss; see losses.NoisyBCE (imported here: it starts Keras)."""
    from .losses import NoisyBCE  # imports Keras: TensorFlow starts here, on first use

    return NoisyBCE(kind=cfg.noisy_loss if cfg.noisy == "weighted" else "bce", beta=cfg.noisy_beta,
                    label_smoothing=cfg.label_smoothing)
