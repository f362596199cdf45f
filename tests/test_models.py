"""FAT2019 networks and losses: VGG19 transfer (weights from a file, frozen body, --unfreeze),
the CNN, the noise-aware loss and how each --noisy mode reaches it."""
import numpy as np
import pytest

from src.fat2019.config import FatConfig
from src.kit.errors import KitError

VGG = dict(model="vgg19", n_mels=32, crop_frames=32)


@pytest.fixture(scope="module")
def body_file(tmp_path_factory):
    """A VGG19-without-top weights file written here (random weights: no ImageNet download)."""
    import keras

    keras.utils.set_random_seed(3)
    body = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = str(tmp_path_factory.mktemp("vgg") / "vgg19_notop.weights.h5")
    body.save_weights(path)
    return path, body.get_weights()


def conv_weights(model):
    return {l.name: l.get_weights() for l in model.layers if l.name.startswith("block") and l.weights}


@pytest.mark.slow
def test_vgg19_loads_body_weights_from_a_file_and_the_env(body_file, monkeypatch):
    from src.fat2019 import models

    path, want = body_file
    m = models.build(FatConfig(**VGG, weights=path), 5, pretrained=True)
    assert m.output_shape == (None, 5)
    got = [w for ws in conv_weights(m).values() for w in ws]
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert not any(isinstance(l, type(m)) for l in m.layers)             # one flat graph, no nested model
    monkeypatch.setenv("VGG19_WEIGHTS", path)
    m2 = models.build(FatConfig(**VGG), 5, pretrained=True)               # found through VGG19_WEIGHTS
    np.testing.assert_array_equal(conv_weights(m2)["block5_conv4"][0], conv_weights(m)["block5_conv4"][0])


def test_vgg19_refuses_to_train_from_random_weights_by_accident(tmp_path, monkeypatch):
    from src.fat2019 import models

    monkeypatch.delenv("VGG19_WEIGHTS", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(KitError, match="needs ImageNet weights.*--weights none"):
        models.build(FatConfig(**VGG), 5, pretrained=True)
    assert models.build(FatConfig(**VGG, weights="none"), 5, pretrained=True).output_shape == (None, 5)


@pytest.mark.parametrize("content, message", [(None, "file not found"), (b"not hdf5 at all", "not an HDF5 file"),
                                              ("other", "does not fit VGG19 without top")])
def test_vgg19_bad_weights_files_are_named(tmp_path, content, message):
    import keras

    from src.fat2019 import models

    path = tmp_path / "w.weights.h5"
    if content == "other":
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save_weights(str(path))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(KitError, match=message) as e:
        models.build(FatConfig(**VGG, weights=str(path)), 5, pretrained=True)
    assert str(path) in str(e.value)


@pytest.mark.slow
def test_frozen_body_keeps_its_weights_and_unfreeze_opens_exactly_n_blocks(body_file):
    import keras

    from src.fat2019 import models

    cfg = FatConfig(**VGG, weights=body_file[0])
    m = models.build(cfg, 3, pretrained=True)
    before = conv_weights(m)
    head_before = m.get_layer("labels").get_weights()[0].copy()
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss=models.loss(cfg))
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 1)).astype("float32")
    y = np.concatenate([np.eye(3)[[0, 1, 2, 0]], np.zeros((4, 1))], axis=1).astype("float32")
    m.fit(x, y, epochs=1, batch_size=4, verbose=0)
    for name, ws in conv_weights(m).items():
        for a, b in zip(ws, before[name]):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(m.get_layer("labels").get_weights()[0], head_before)   # the head did learn
    names = models.unfreeze(m, 2)
    assert sorted({n[:6] for n in names}) == ["block4", "block5"] and len(names) == 8
    assert all(l.trainable == l.name.startswith(("block4_", "block5_")) for l in m.layers if l.name.startswith("block"))
    assert models.unfreeze(m, 0) == []
    with pytest.raises(KitError, match="5 conv blocks"):
        models.unfreeze(m, 6)


def test_vgg19_delta_channels():
    from src.fat2019 import models

    m = models.build(FatConfig(**VGG, vgg_input="deltas", weights="none"), 4, pretrained=True)
    ramp = np.tile(np.arange(32, dtype="float32") / 32, (32, 1))[None, :, :, None]
    import keras

    channels = keras.Model(m.input, m.get_layer("channels").output)(ramp).numpy()
    np.testing.assert_allclose(channels[0, 5, 10], [10 / 32, models.DELTA_SCALES[0] / 32, 0], atol=1e-5)


def test_cnn_output_is_a_probability_per_label():
    from src.fat2019 import models

    cfg = FatConfig(n_mels=32, crop_frames=32, width=4, blocks=2)
    m = models.build(cfg, 7)
    p = m.predict(np.random.default_rng(0).normal(size=(3, 32, 32, 1)).astype("float32"), verbose=0)
    assert p.shape == (3, 7) and (p >= 0).all() and (p <= 1).all()


def test_noisy_losses_hand_computed():
    from src.fat2019.losses import NoisyBCE

    p = np.array([[0.8, 0.2], [0.3, 0.6]], np.float32)
    y = np.array([[1, 0, 0], [1, 0, 1]], np.float32)                      # last column: noisy
    bce = lambda t, q: -np.mean(t * np.log(q) + (1 - t) * np.log(1 - q), axis=-1)   # noqa: E731
    want_clean = bce(np.array([1.0, 0.0]), p[0])
    for kind, target in [("bce", [1.0, 0.0]), ("lsoft", [0.7 + 0.3 * 0.3, 0.3 * 0.6]),
                         ("bootstrap", [0.7, 0.3])]:
        got = NoisyBCE(kind=kind, beta=0.7, reduction=None)(y, p).numpy()
        np.testing.assert_allclose(got, [want_clean, bce(np.array(target), p[1])], rtol=1e-5)


def test_each_noisy_mode_reaches_the_training_batches():
    from src.fat2019.pipeline import training_batches
    from src.fat2019.features import FeatureSet

    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(8, 20)).astype(np.float16) for _ in range(6)]
    fs = object.__new__(FeatureSet)
    fs.fnames, fs.paths, fs._arrays, fs.in_memory = [str(i) for i in range(6)], [""] * 6, arrays, True
    fs.frames, fs.nbytes = np.array([20] * 6), 0
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    noisy = np.array([0, 0, 0, 1, 1, 1], np.float32)
    cfg = FatConfig(n_mels=8, crop_frames=10, batch_size=6, spec_augment=False, mixup_alpha=0.0)
    for mode, w_noisy in (("all", 1.0), ("weighted", 0.25)):
        w = np.where(noisy > 0, w_noisy, 1.0).astype(np.float32)
        x, yb, wb = next(training_batches(fs, y, w, noisy, cfg.replace(noisy=mode, noisy_weight=0.25), 0, 0, 1))
        assert x.shape == (6, 8, 10, 1) and yb.shape == (6, 4)
        np.testing.assert_array_equal(wb[yb[:, -1] == 1], w_noisy)         # the noisy flag travels with its weight
        assert yb[:, -1].sum() == 3
    # finetune: epochs 0 and 1 draw from all 6 clips, from epoch 2 on curated clips only. A batch
    # of 6 from a pool of 6 is one shuffled pass, so each early batch holds every clip once.
    batches = training_batches(fs, y, np.ones(6, np.float32), noisy, cfg, 0, 0, 2, curated_only_from=2)
    flags = [next(batches)[1][:, -1] for _ in range(6)]                   # 3 epochs x 2 steps
    for f in flags[:4]:
        assert sorted(f.tolist()) == [0, 0, 0, 1, 1, 1]
    for f in flags[4:]:
        assert f.tolist() == [0] * 6


def test_training_gflop_by_hand_and_separable_blocks_cost_a_fraction():
    import keras

    from src.fat2019.models import build
    from src.kit.flops import training_gflop

    inp = keras.Input((4, 6, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", use_bias=False)(inp)       # 24 px * 9*1*2, x2 (fed by the input)
    x = keras.layers.SeparableConv2D(3, 3, padding="same", use_bias=False)(x)  # 24 px * (9*2 + 2*3), x3
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(5)(x)                                            # 3*5, x3
    macs = 24 * 18 * 2 + 24 * 24 * 3 + 15 * 3
    assert abs(training_gflop(keras.Model(inp, out), 1) - 2 * macs / 1e9) < 1e-15

    cfg = FatConfig(n_mels=32, crop_frames=32, width=8, blocks=3, jit=False)
    standard, separable = build(cfg, 4), build(cfg.replace(conv="separable"), 4)
    assert [type(l).__name__ for l in separable.layers].count("SeparableConv2D") == 5       # all but the first conv
    assert training_gflop(separable, 32) < training_gflop(standard, 32) / 3
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype(np.float32)
    assert separable.predict(x, verbose=0).shape == (2, 4)
    hybrid = build(cfg.replace(conv="hybrid"), 4)     # the first block standard, the two after it separable
    assert [type(l).__name__ for l in hybrid.layers if "conv" in type(l).__name__.lower()] == \
        ["Conv2D"] * 2 + ["SeparableConv2D"] * 4
    assert training_gflop(separable, 32) < training_gflop(hybrid, 32) < training_gflop(standard, 32)
    assert hybrid.predict(x, verbose=0).shape == (2, 4)


def test_stem_stride_keeps_the_weights_at_a_quarter_of_the_compute_and_refuses_a_crop_too_small():
    from src.fat2019.models import build
    from src.kit import configio
    from src.kit.flops import training_gflop

    cfg = FatConfig(n_mels=32, crop_frames=32, width=8, blocks=3, jit=False)
    plain, strided = build(cfg, 4), build(cfg.replace(stem_stride=2), 4)
    assert strided.count_params() == plain.count_params()                  # the same weights, fewer positions
    first = next(l for l in strided.layers if type(l).__name__ == "Conv2D")
    assert first.strides == (2, 2) and first.output.shape[1:3] == (16, 16)
    # every conv runs on a quarter of the positions; the head does not: (mean + max of 32 channels)
    # -> Dense 32 -> Dense 4, 64*32 + 32*4 multiply-adds, x3 (forward, two gradients), x2 flops, batch 32
    head = 2 * 3 * (64 * 32 + 32 * 4) * 32 / 1e9
    assert abs(training_gflop(strided, 32) - head - (training_gflop(plain, 32) - head) / 4) < 1e-12
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype(np.float32)
    assert strided.predict(x, verbose=0).shape == (2, 4)
    # 32 / (2 * 2**4) = 1 pixel left: still builds; one block more leaves none, refused by name
    build(cfg.replace(stem_stride=2, blocks=4), 4)
    with pytest.raises(KitError, match="--blocks 5 with --stem-stride 2 shrink each side of the crop 64 times"):
        build(cfg.replace(stem_stride=2, blocks=5), 4)
    assert configio.from_dict(FatConfig, {}).stem_stride == 1                # runs saved before the flag


def test_training_gflop_of_sequence_layers_by_hand():
    """kit/flops for Quick Draw's layers: Conv1D at each time step, an LSTM's 4 gates on [input,
    state] at each step, both directions of a Bidirectional wrapper, a Dense on the final state."""
    import keras

    from src.kit.flops import training_gflop

    inp = keras.Input((6, 3))
    x = keras.layers.Conv1D(4, 2, padding="same")(inp)                     # 6 steps * 2*3*4, x2 (fed by the input)
    x = keras.layers.Bidirectional(keras.layers.LSTM(5))(x)                # 2 * 6 steps * 4*5*(4+5), x3
    out = keras.layers.Dense(7)(x)                                          # 10*7, x3
    macs = 6 * 24 * 2 + 2 * 6 * 4 * 5 * 9 * 3 + 70 * 3
    assert abs(training_gflop(keras.Model(inp, out), 1) - 2 * macs / 1e9) < 1e-15
    assert abs(training_gflop(keras.Model(inp, out), 32) - 32 * 2 * macs / 1e9) < 1e-12


def test_predict_batches_equals_keras_predict_across_batch_edges_and_stats_models_predict_themselves():
    """kit/forward: one traced forward per model (no Keras predict(), so no retracing warnings over
    several folds); outputs equal predict()'s, a last partial batch included; a model that is not a
    Keras network is asked for its own predict()."""
    import keras

    from src.kit.forward import predict_batches

    keras.utils.set_random_seed(0)
    inp = keras.Input((5,))
    model = keras.Model(inp, keras.layers.Dense(3, activation="sigmoid")(keras.layers.Dense(4)(inp)))
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)
    got = predict_batches(model, x, batch_size=3)
    assert got.shape == (7, 3)
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-6, atol=1e-7)
    assert predict_batches(model, x[:0]).shape == (0, 3)

    class Doubler:
        def predict(self, x, verbose=0):
            return 2 * x

    np.testing.assert_array_equal(predict_batches(Doubler(), x), 2 * x)
