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


def test_mixing_two_log_mels_adds_their_powers_relative_to_the_new_peak():
    a = np.array([[1.0, 0.0]], np.float32)            # 0 dB (the peak) and -40 dB
    b = np.array([[0.0, 1.0]], np.float32)
    np.testing.assert_allclose(transforms.mix_logmel(a, b, 0.0), [[1.0, 1.0]], atol=1e-6)     # symmetric: equal
    # b 10 dB down: bin 0 = 1 + 1e-5 (b's -40 dB - 10), bin 1 = 1e-4 + 0.1; relative to bin 0, in units of 40 dB
    want = (10 * np.log10(0.1 + 1e-4) - 10 * np.log10(1 + 1e-5) + 40) / 40
    np.testing.assert_allclose(transforms.mix_logmel(a, b, -10.0), [[1.0, want]], rtol=1e-6)
    # a's floor bin (-80 dB) with b's floor 30 dB further down: 1e-8 + 1e-11 of power
    quiet = np.array([[1.0, -1.0]], np.float32)
    got = transforms.mix_logmel(quiet, np.full_like(quiet, -1.0), -30.0)
    want = (10 * np.log10(1e-8 + 1e-11) - 10 * np.log10(1 + 1e-11) + 40) / 40
    np.testing.assert_allclose(got, [[1.0, want]], rtol=1e-6)
    assert got.min() >= -1.0


def test_mix_and_union_targets_are_the_union_and_weights_the_lower():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 4, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    w = np.array([1, 1, 1, 0.5, 0.5, 0.5], np.float32)
    mx, my, mw = transforms.mix_and_union(x, y, w, 1.0, 6.0, np.random.default_rng(1))
    for i in range(6):
        partners = [j for j in range(6) if j != i and np.array_equal(my[i], np.maximum(y[i], y[j]))
                    and mw[i] == min(w[i], w[j])]
        assert partners, i                                    # the union with another clip, its lower weight
        assert not np.allclose(mx[i], x[i])                   # and the input changed
    assert (my.sum(axis=1) >= 1).all() and (my.sum(axis=1) <= 2).all()
    # p = 0 changes nothing but draws the same random numbers (a resumed epoch stays in step)
    r0, r1 = np.random.default_rng(2), np.random.default_rng(2)
    same = transforms.mix_and_union(x, y, w, 0.0, 6.0, r0)
    assert all(a is b for a, b in zip(same, (x, y, w)))
    transforms.mix_and_union(x, y, w, 1.0, 6.0, r1)
    assert r0.random() == r1.random()


def test_mix_clips_needs_log_mel_and_a_probability(tiny):
    import pytest

    from src.fat2019 import data as fat_data
    from src.fat2019.config import FatConfig
    from src.fat2019.train import fold_inputs
    from src.kit.errors import KitError

    cfg = FatConfig(data_dir="fat")
    data = fat_data.load(cfg)
    with pytest.raises(KitError, match="needs --feature logmel"):
        fold_inputs(cfg.replace(feature="mfcc", mix_clips=0.5), data, 0)
    with pytest.raises(KitError, match="a probability"):
        fold_inputs(cfg.replace(mix_clips=1.5), data, 0)


def test_mixed_training_batches_carry_two_labels_and_the_noisy_flag():
    from src.fat2019.config import FatConfig
    from src.fat2019.features import FeatureSet
    from src.fat2019.pipeline import training_batches

    rng = np.random.default_rng(0)
    arrays = [rng.uniform(-1, 1, size=(8, 20)).astype(np.float16) for _ in range(6)]
    fs = object.__new__(FeatureSet)
    fs.fnames, fs.paths, fs._arrays, fs.in_memory = [str(i) for i in range(6)], [""] * 6, arrays, True
    fs.frames, fs.nbytes = np.array([20] * 6), 0
    y = np.eye(6, dtype=np.float32)                           # six clips, six labels
    noisy = np.array([0, 0, 0, 0, 0, 1], np.float32)
    cfg = FatConfig(n_mels=8, crop_frames=10, batch_size=6, mix_clips=1.0)
    x, yb, wb = next(training_batches(fs, y, np.where(noisy > 0, 0.5, 1.0).astype(np.float32), noisy, cfg, 0, 0, 1))
    assert (yb[:, :6].sum(axis=1) == 2).all()                  # every crop mixed: two labels each
    np.testing.assert_array_equal(yb[:, 6] == 1, yb[:, 5] == 1)   # noisy exactly when clip 5 is in it
    np.testing.assert_array_equal(wb, np.where(yb[:, 6] == 1, 0.5, 1.0))
    plain = next(training_batches(fs, y, np.ones(6, np.float32), noisy, cfg.replace(mix_clips=0.0), 0, 0, 1))
    assert (plain[1][:, :6].sum(axis=1) == 1).all()
