"""Validation on mixtures (src.fat2019.mixval, src.mixval): partners share no label, targets are
the union, a silent partner changes nothing, the same mixtures for every run; the CLI on the tiny runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import one
from src import mixval as mixval_cli
from src.fat2019 import transforms
from src.fat2019.mixval import SILENT, mix_whole, mixtures, partners


def test_partners_share_no_label_and_none_is_minus_one():
    labels = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    allowed = {0: {1, 3}, 1: {0, 3}, 2: {3}, 3: {0, 1, 2}}
    for seed in range(20):
        p = partners(labels, np.random.default_rng(seed))
        assert all(p[i] in allowed[i] for i in range(4))
    assert list(partners(np.array([[1, 0], [1, 0]]), np.random.default_rng(0))) == [-1, -1]


def test_mix_whole_pads_with_silence_and_equals_the_training_mix_at_equal_length():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 0.9, (4, 10)).astype(np.float32)
    a[1, 3] = 1.0                                                  # its peak at 0 dB, as features.logmel makes it
    b = rng.uniform(-1, 0.9, (4, 10)).astype(np.float32)
    np.testing.assert_array_equal(mix_whole(a, b, 3.0), transforms.mix_logmel(a, b, 3.0))
    silent = np.full((4, 6), SILENT, np.float32)
    assert SILENT == -1.0
    out = mix_whole(silent, a, 0.0)                                # the shorter one: silent, then nothing
    assert out.shape == (4, 10)
    assert (out >= a - 1e-6).all()                                 # adding power never lowers a bin
    loud = a > -0.5                                                # 20 dB or more above the floor: unchanged
    np.testing.assert_allclose(out[loud], a[loud], atol=2e-3)


def test_mixtures_targets_are_the_union_and_repeat_for_a_seed():
    rng = np.random.default_rng(1)
    specs = [rng.uniform(-1, 1, (4, n)).astype(np.float32) for n in (8, 12, 9, 10)]
    truth = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], np.float64)
    mixed, y = mixtures(specs, truth, seed=5, max_gain_db=6.0)
    assert len(mixed) == 4 and y.shape == (4, 3)
    assert (y.sum(axis=1) == 2).all()                              # two single-label clips, no label in common
    assert all(y[i, np.argmax(truth[i])] == 1 for i in range(4))   # each mixture holds its own clip's label
    again, y2 = mixtures(specs, truth, seed=5, max_gain_db=6.0)
    assert all(np.array_equal(m, n) for m, n in zip(mixed, again)) and np.array_equal(y, y2)


def test_mixval_cli_scores_each_run_and_the_blend_on_the_same_mixtures(fat_tiny, capsys):
    from src import cv as fat_cv
    from conftest import TINY_FLAGS

    assert fat_cv.main(["--data-dir", "fat", *TINY_FLAGS, "--model", "stats", "--fold", "all"]) == 0
    capsys.readouterr()
    assert mixval_cli.main(["--data-dir", "fat"]) == 0
    out = capsys.readouterr().out
    assert "mixval: cnn: out-of-fold lwlrap" in out and "mixval: stats: out-of-fold lwlrap" in out
    assert "mixval: blend {'cnn': 0.5, 'stats': 0.5}: on mixtures" in out
    doc = json.load(open(one("work/fat-*/mixval.json")))
    runs = doc["runs"]
    assert runs["cnn"]["n_mixtures"] == runs["stats"]["n_mixtures"] > 0
    assert all(0 <= runs[r]["mixtures"] <= 1 for r in ("cnn", "stats", "blend"))
    assert mixval_cli.main(["--data-dir", "fat", "--models", "nosuchrun"]) == 2
