import numpy as np

from src.config import FatConfig


def test_vgg19_loads_body_weights_from_a_local_file(tmp_path, monkeypatch):
    """The offline path Kaggle kernels use: VGG19 body weights from a file, not a download."""
    import keras

    from src import models

    cfg = FatConfig(model="vgg19", n_mels=32, crop_frames=32)
    body = keras.applications.VGG19(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = str(tmp_path / "vgg19_notop.weights.h5")
    body.save_weights(path)
    monkeypatch.setenv("VGG19_WEIGHTS", path)
    m = models.build(cfg, 5)
    assert m.output_shape == (None, 5)
    loaded = next(l for l in m.layers if l.name.startswith("vgg19"))
    for a, b in zip(loaded.get_weights(), body.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_cnn_output_is_a_probability_per_label():
    from src import models

    cfg = FatConfig(n_mels=32, crop_frames=32, width=4, blocks=2)
    m = models.build(cfg, 7)
    p = m.predict(np.random.default_rng(0).normal(size=(3, 32, 32, 1)).astype("float32"), verbose=0)
    assert p.shape == (3, 7) and (p >= 0).all() and (p <= 1).all()
