"""Validation on mixtures (src.fat2019.mixval, src.mixval): partners share no label, targets are
the union, a silent partner changes nothing, the same mixtures for every run; the CLI on the tiny runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import one
from src import mixval as mixval_cli
from src.fat2019 import transforms
from src.fat2019.mixval import SILENT, break_even, combined, mix_whole, mixtures, multi_label_share, partners


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


def test_mixture_share_and_the_ranking_by_hand():
    assert multi_label_share(["a", "a,b", "c", "b,c,d"]) == 0.5
    assert multi_label_share([]) == 0.0
    assert combined(0.9, 0.7, 0.25) == pytest.approx(0.85)         # 0.75 x 0.9 + 0.25 x 0.7
    # a: 0.93 singles, 0.78 mixtures; b: 0.92, 0.83. Level where 0.01 (1 - F) = 0.05 F: F = 1/6
    assert break_even((0.93, 0.78), (0.92, 0.83)) == pytest.approx(1 / 6)
    assert combined(0.93, 0.78, 1 / 6) == pytest.approx(combined(0.92, 0.83, 1 / 6))
    assert break_even((0.93, 0.83), (0.92, 0.78)) is None           # a ahead on both
    assert break_even((0.93, 0.78), (0.93, 0.78)) is None


def test_mixval_cli_scores_each_run_and_the_blend_on_the_same_mixtures(fat_tiny, capsys):
    from src import cv as fat_cv
    from conftest import TINY_FLAGS

    assert fat_cv.main(["--data-dir", "fat", *TINY_FLAGS, "--model", "stats", "--fold", "all"]) == 0
    capsys.readouterr()
    assert mixval_cli.main(["--data-dir", "fat"]) == 0
    out = capsys.readouterr().out
    assert "mixval: cnn: out-of-fold lwlrap" in out and "mixval: stats: out-of-fold lwlrap" in out
    assert "mixval: blend {'cnn': 0.5, 'stats': 0.5}: out-of-fold lwlrap" in out
    doc = json.load(open(one("work/fat-*/mixval.json")))
    assert open(one("work/fat-*/mixval.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    runs = doc["runs"]
    assert runs["cnn"]["n_mixtures"] == runs["stats"]["n_mixtures"] > 0
    assert all(0 <= runs[r]["mixtures"] <= 1 for r in ("cnn", "stats", "blend"))
    assert "mixval: ranking by (1 - F) x out-of-fold + F x mixtures, F = 0.000 (the share of multi-label" in out
    ranked = [r for r in runs if r != "blend"]                     # F = 0: the ranking is out-of-fold's
    assert doc["mix_share"] == 0.0 and runs[doc["pick"]]["combined"] == max(r["combined"] for r in runs.values())
    assert all(runs[r]["combined"] == runs[r]["out_of_fold"] for r in ranked)
    assert mixval_cli.main(["--data-dir", "fat", "--mix-share", "1"]) == 0
    doc = json.load(open(one("work/fat-*/mixval.json")))
    assert doc["mix_share"] == 1.0 and all(r["combined"] == r["mixtures"] for r in doc["runs"].values())
    assert mixval_cli.main(["--data-dir", "fat", "--mix-share", "1.5"]) == 2
    assert mixval_cli.main(["--data-dir", "fat", "--models", "nosuchrun"]) == 2
