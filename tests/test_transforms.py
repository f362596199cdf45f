import numpy as np

from src.fat2019 import transforms
from src.kit.runs import fold_mean, weighted_mean


def test_window_starts_cover_the_clip():
    assert transforms.window_starts(10, 4, 2) == [0, 2, 4, 6]
    assert transforms.window_starts(11, 4, 2) == [0, 2, 4, 6, 7]        # last window flush with the end
    assert transforms.window_starts(3, 4, 2) == [0]
    assert transforms.window_starts(11, 4, 2, offset=1) == [1, 3, 5, 7]


def test_windows_and_tta_grids():
    feat = np.arange(2 * 10, dtype=np.float32).reshape(2, 10)
    w = transforms.windows(feat, 4, 2)
    assert w.shape == (4, 2, 4)
    np.testing.assert_array_equal(w[1], feat[:, 2:6])
    w2 = transforms.windows(feat, 4, 2, tta=2)                            # grids at offsets 0 and 1
    assert w2.shape == (7, 2, 4)


def test_short_clip_is_repeated():
    feat = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(transforms.fit_length(feat, 7), [[1, 2, 3, 1, 2, 3, 1]])
    crop = transforms.random_crop(feat, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(crop, [[1, 2, 3, 1, 2]])


def test_spec_augment_masks_with_mean_and_keeps_input():
    rng = np.random.default_rng(1)
    x = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    y = transforms.spec_augment(x, rng, n_masks=1, max_freq=0.2, max_time=0.2)
    assert y.shape == x.shape and not np.shares_memory(x, y)
    changed = y != x
    assert changed.any()
    assert np.allclose(y[changed], x.mean())


def test_mixup_blends_inputs_targets_and_weights_alike():
    rng = np.random.default_rng(0)
    x = np.stack([np.zeros((2, 2)), np.ones((2, 2))]).astype(np.float32)
    y = np.array([[1, 0], [0, 1]], dtype=np.float32)
    w = np.array([1.0, 0.5], dtype=np.float32)
    mx, my, mw = transforms.mixup(x, y, w, 0.4, rng)
    np.testing.assert_allclose(mx[:, 0, 0], my[:, 1])                  # x = P(label 1) by construction
    np.testing.assert_allclose(my.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(mw, 1.0 - 0.5 * my[:, 1], rtol=1e-6)


def test_weighted_mean():
    a, b = np.zeros((2, 2)), np.ones((2, 2))
    np.testing.assert_allclose(weighted_mean([a, b]), 0.5)
    np.testing.assert_allclose(weighted_mean([a, b], [1, 3]), 0.75)


def test_geometric_fold_mean_rewards_agreement():
    a, b = np.array([[0.9, 0.5]]), np.array([[0.1, 0.5]])
    np.testing.assert_allclose(fold_mean([a, b], "geo"), [[0.3, 0.5]])       # sqrt(0.09) = 0.3
    np.testing.assert_allclose(fold_mean([a, b], "mean"), [[0.5, 0.5]])


def test_silence_padding_places_the_clip_in_the_floor_value():
    feat = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = transforms.fit_length(feat, 5, "silence")
    np.testing.assert_array_equal(out, [[1, 2, 1, 1, 1], [3, 4, 1, 1, 1]])    # floor = the clip's minimum
    moved = transforms.fit_length(feat, 5, "silence", np.random.default_rng(3))
    assert moved.shape == (2, 5) and (moved == 1).sum() == 6 + (feat == 1).sum()


def test_window_aggregation_mean_max_meanmax():
    scores = np.array([[0.2, 0.9], [0.4, 0.1], [0.5, 0.5]])
    owner = np.array([0, 0, 1])
    np.testing.assert_allclose(transforms.aggregate_windows(scores, owner, 2, "mean"), [[0.3, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(transforms.aggregate_windows(scores, owner, 2, "max"), [[0.4, 0.9], [0.5, 0.5]])
    np.testing.assert_allclose(transforms.aggregate_windows(scores, owner, 2, "meanmax"), [[0.35, 0.7], [0.5, 0.5]])


def test_random_gain_shifts_the_db_scale():
    x = np.zeros((2, 3), np.float32)
    y = transforms.random_gain(x, 6.0, np.random.default_rng(0))
    assert np.all(y == y[0, 0]) and 0 < abs(y[0, 0]) <= 6.0 / 40
