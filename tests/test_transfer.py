"""--init-from (kit.transfer): layers copied in graph order where shapes agree, a head over other
labels left fresh, sources that saw this fold's validation samples refused; end to end on the
Quick Draw demo from the session's tiny run."""
import json
import os

import numpy as np
import pytest

from conftest import QD_TINY_CNN, one
from src.kit import runs, transfer
from src.kit.errors import KitError


def _net(n_out: int, width: int = 4, name_offset: int = 0):
    import keras

    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(width, 3, padding="same")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(n_out, activation="softmax")(x)
    return keras.Model(inp, out)


def test_copy_matching_copies_the_body_and_leaves_another_head_fresh():
    import keras

    keras.utils.set_random_seed(0)
    src, dst = _net(5), _net(3)                       # same body, a head over 5 vs 3 labels
    head_before = dst.layers[-1].get_weights()[0].copy()
    copied, fresh = transfer.copy_matching(dst, src)
    assert copied == dst.layers[1:3] and len(fresh) == 1 and fresh[0].startswith("Dense (4, 3) (source (4, 5))")
    for t, s in zip(dst.layers[1:3], src.layers[1:3]):         # Conv2D and BatchNormalization (its 4 arrays)
        for a, b in zip(t.get_weights(), s.get_weights()):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dst.layers[-1].get_weights()[0], head_before)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 1)).astype("float32")
    body = keras.Model(dst.input, dst.layers[-2].output), keras.Model(src.input, src.layers[-2].output)
    np.testing.assert_allclose(body[0](x), body[1](x), rtol=1e-6)     # the copied body computes the same


def test_copy_matching_refuses_another_architecture():
    import keras

    inp = keras.Input((8, 8, 1))
    other = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Flatten()(inp)))
    with pytest.raises(KitError, match="another architecture"):
        transfer.copy_matching(_net(3), other)
    with pytest.raises(KitError, match="not a network .StatsModel"):
        from src.fat2019.statsmodel import StatsModel

        transfer.copy_matching(_net(3), StatsModel(4, 3))


def test_fit_probe_is_sklearns_logistic_regression_as_a_dense_head():
    """The head's logits give the probabilities of the standardised sklearn fit they fold in; an
    absent class gets no weights and next to no probability; two classes and constant labels work."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 0.0]     # scales and offsets to fold in
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 50)                        # classes 0-3; class 4 absent
    kernel, bias = transfer.fit_probe(x, y, 5, c=0.1)
    assert kernel.shape == (3, 5) and bias.shape == (5,)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000)).fit(x, y)
    logits = x @ kernel + bias
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(p[:, :4] / p[:, :4].sum(1, keepdims=True), ref.predict_proba(x), atol=1e-5)
    assert not kernel[:, 4].any() and p[:, 4].max() < 1e-3
    k2, b2 = transfer.fit_probe(x, (x[:, 0] > 0).astype(int), 2)              # sklearn's one row for two classes
    assert ((x @ k2 + b2).argmax(1) == (x[:, 0] > 0)).mean() > 0.95
    t = np.stack([x[:, 0] > 0, np.zeros(120, bool), np.ones(120, bool)], 1)   # one learnable, two constant labels
    k3, b3 = transfer.fit_probe(x, t, 3, multilabel=True)
    assert ((x @ k3[:, 0] + b3[0] > 0) == t[:, 0]).mean() > 0.95
    assert not k3[:, 1:].any() and b3[1] < -5 and b3[2] > 5
    with pytest.raises(KitError, match="at least two classes"):
        transfer.fit_probe(x, np.zeros(120, int), 3)


def test_probe_head_sets_the_last_dense_layer_to_the_probe():
    import keras

    keras.utils.set_random_seed(0)
    net = _net(3)
    x = np.random.default_rng(1).normal(size=(60, 8, 8, 1)).astype("float32")
    y = np.arange(60) % 3
    line = transfer.probe_head(net, x, y)
    assert line.startswith("probe head: a logistic regression on 4 features of 60 training samples")
    feats = keras.Model(net.input, net.layers[-2].output).predict(x, verbose=0)
    kernel, bias = transfer.fit_probe(feats, y, 3)
    np.testing.assert_allclose(net.layers[-1].get_weights()[0], kernel, rtol=1e-5, atol=1e-6)
    logits = feats @ kernel + bias
    want = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(net.predict(x, verbose=0), want / want.sum(1, keepdims=True), atol=1e-5)


def _fold(tmp_path, run="cnn", fold=0, dataset="d", sha="s"):
    path = tmp_path / run / f"fold{fold}"
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"dataset": dataset, "folds_sha1": sha, "labels": ["a"]}))
    (path / "metrics.json").write_text(json.dumps({"run": run, "fold": fold}))      # as a finished fold writes it
    (path / runs.WEIGHTS).write_text("")
    return path


def test_source_fold_and_leak_check(tmp_path):
    _fold(tmp_path, fold=1)
    src = transfer.source_fold(str(tmp_path / "cnn"))            # a run folder: its first finished fold
    assert src.fold == 1 and src.run == "cnn"
    transfer.check_no_leak(src, "d", 1, "s")                     # the same fold of the same folds: fine
    transfer.check_no_leak(src, "other", 0, "x")                 # other data: the user's word
    with pytest.raises(KitError, match="fold 1 held out"):
        transfer.check_no_leak(src, "renamed", 0, "s")           # the same folds file under another name
    with pytest.raises(KitError, match="fold 1 held out.*fold 0's validation"):
        transfer.check_no_leak(src, "d", 0, "s")
    with pytest.raises(KitError, match="other folds"):
        transfer.check_no_leak(src, "d", 1, "t")
    with pytest.raises(KitError, match="no such folder"):
        transfer.source_fold(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(KitError, match="no finished fold"):
        transfer.source_fold(str(tmp_path / "empty"))
    (tmp_path / "cnn" / "fold1" / "metrics.json").write_text('{"run": "cnn"')     # truncated by a crash
    with pytest.raises(KitError, match="fold1's metrics.json/config.json unreadable"):
        transfer.source_fold(str(tmp_path / "cnn"))


def test_quickdraw_fold_starts_from_a_trained_fold(qd_tiny, capsys):
    """The tiny run's fold 0 starts a new run's fold 0 (every layer copied); fold 1 would have
    validated on drawings that fold 0 trained on: refused before anything is written."""
    from src.quickdraw import cv

    src = one(str(qd_tiny / "work" / "demo-quickdraw-*" / "cnn" / "fold0"))
    flags = QD_TINY_CNN + ["--name", "warm", "--eager", "--init-from", os.path.dirname(src), "--probe-head"]
    assert cv.main(["--fold", "0", "--name", "lp"] + QD_TINY_CNN + ["--probe-head"]) == 2    # nothing to probe
    assert "--probe-head fits the classifier on pretrained features: give --init-from" in capsys.readouterr().err
    assert cv.main(["--fold", "0", "--name", "dlr"] + QD_TINY_CNN + ["--copied-lr-scale", "0.3"]) == 2
    assert "--copied-lr-scale 0.3 slows the layers --init-from copies" in capsys.readouterr().err
    assert cv.main(["--fold", "1"] + flags) == 2
    assert "optimistic" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(os.path.dirname(os.path.dirname(src)), "warm", "fold1"))
    assert cv.main(["--fold", "0"] + flags) == 0
    out = capsys.readouterr().out
    assert f"initialised from {src} (demo-quickdraw" in out and "layers copied" in out and "fresh" not in out
    assert "probe head: a logistic regression on " in out        # then the classifier refitted on its features
    cfg = json.load(open(os.path.join(os.path.dirname(os.path.dirname(src)), "warm", "fold0", "config.json")))
    assert cfg["init_from"] == os.path.dirname(src) and cfg["probe_head"] is True


def test_fat2019_fold_starts_from_a_trained_fold(fat_tiny, capsys):
    """FAT2019: the tiny run's fold 2 starts a new run's fold 2 (every layer copied); a deeper
    network (--blocks 3) and another fold (it trained on fold 2's clips) are refused."""
    from conftest import TINY_FLAGS
    from src import cv

    src = one("work/fat-*/cnn/fold2")
    flags = ["--data-dir", "fat", *TINY_FLAGS, "--eager", "--fold", "2", "--epochs", "1", "--init-from", src]
    assert cv.main(flags[:-2] + ["--name", "fast", "--copied-lr-scale", "0.5"]) == 2       # nothing copied to slow
    assert "--copied-lr-scale 0.5 slows the layers --init-from copies: give --init-from too" in capsys.readouterr().err
    assert cv.main(flags + ["--name", "warm", "--copied-lr-scale", "0.5"]) == 0
    out = capsys.readouterr().out
    assert f"initialised from {src}" in out and "layers copied" in out and "fresh" not in out
    assert "layers copied; the copied layers learn at 0.5 x --lr" in out
    import keras

    from src.kit import layer_rates

    warm = one("work/fat-*/warm/fold2")
    assert json.load(open(os.path.join(warm, "config.json")))["copied_lr_scale"] == 0.5
    last = keras.models.load_model(os.path.join(warm, "last.keras"))           # --resume goes on at that scale
    assert isinstance(last.optimizer, layer_rates.CopiedRateAdamW) and last.optimizer.copied_lr_scale == 0.5
    assert sorted(last.optimizer.copied) == sorted(w.path for w in last.trainable_weights)   # every layer copied
    assert cv.main(flags + ["--name", "deeper", "--blocks", "3"]) == 2
    assert "another architecture" in capsys.readouterr().err
    assert cv.main(flags[:-6] + ["--fold", "0", "--epochs", "1", "--init-from", src, "--name", "leak"]) == 2
    assert "optimistic" in capsys.readouterr().err


def test_copied_lr_scale_steps_the_copied_layers_at_that_fraction_of_the_rate(tmp_path):
    """Adam's first step moves every weight by the rate times the sign of its gradient (m / sqrt(v) = g / |g|),
    so after one step a copied weight has moved by scale x lr and a fresh one by lr; the optimizer saves and
    loads with the model (--resume's last.keras) with its scale and its copied variables."""
    import keras

    from src.kit import layer_rates

    keras.utils.set_random_seed(0)
    src, dst = _net(5), _net(3)
    copied, _ = transfer.copy_matching(dst, src)
    paths = [w.path for layer in copied for w in layer.trainable_weights]
    assert len(paths) == 4                                  # conv kernel and bias, batch-norm gamma and beta
    lr, scale = 0.01, 0.25
    # a tiny epsilon, so that the conv bias's near-zero gradients (batch norm follows it) step the full rate too
    dst.compile(optimizer=layer_rates.CopiedRateAdam(lr, epsilon=1e-20, copied_lr_scale=scale, copied=paths),
                loss="categorical_crossentropy")
    x = np.random.default_rng(1).normal(size=(16, 8, 8, 1)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(16) % 3]
    before = {w.path: np.array(w) for w in dst.trainable_weights}
    dst.train_on_batch(x, y)
    for w in dst.trainable_weights:
        step = np.abs(np.array(w) - before[w.path])
        moved = step[step > 1e-9]                           # weights with a zero gradient stay put
        assert moved.size, w.path
        np.testing.assert_allclose(moved, lr * (scale if w.path in paths else 1.0), rtol=1e-3)
    dst.save(tmp_path / "last.keras")
    opt = keras.models.load_model(tmp_path / "last.keras").optimizer
    assert isinstance(opt, layer_rates.CopiedRateAdam) and opt.copied_lr_scale == scale and list(opt.copied) == paths
    assert type(layer_rates.adam(lr, 1.0, paths)) is keras.optimizers.Adam        # one rate: Keras' own, as before
    assert type(layer_rates.adam(lr, scale, [], weight_decay=1e-4)) is keras.optimizers.AdamW
    assert isinstance(layer_rates.adam(lr, scale, paths, weight_decay=1e-4), layer_rates.CopiedRateAdamW)
