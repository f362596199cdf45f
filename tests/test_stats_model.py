"""The stats model (`--model stats`): whole-clip statistics by hand; a clip's statistics from its
audio equal those from its cached features; a stats fold trains through the kit's fold runner
(oof.csv, config.json, metrics.json; a kill after the commit is finished by --resume) and its saved
weights reload to the same predictions; src.predict blends a stats run with the session's CNN run;
a stats run ships and its kernel reproduces local prediction (a changed weight is caught)."""
from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import TINY_FLAGS, killed_in_process, one
from kaggle_stub import USER
from src import blend as fat_blend, cv as fat_cv, predict as fat_predict
from src.fat2019 import clipstats, features
from src.fat2019.competition import load_model
from src.fat2019.config import FatConfig
from src.fat2019.statsmodel import StatsModel
from src.kit import runs
from src.kit.errors import KitError
from src.ship import kernels

STATS = ["--data-dir", "fat", *TINY_FLAGS, "--model", "stats"]


def tiny_cfg(**kw) -> FatConfig:
    flags = dict(zip(TINY_FLAGS[0::2], TINY_FLAGS[1::2]))
    return FatConfig(data_dir="fat", sample_rate=16000, n_mels=int(flags["--n-mels"]), n_fft=512, hop_length=160,
                     crop_frames=32, workers=1, min_seconds=0.3, model="stats", **kw)


# ----------------------------------------------------------------------------- the statistics

def test_clip_stats_by_hand():
    spec = np.array([[0.0, 1.0, 2.0, 3.0, 4.0],
                     [4.0, 4.0, 4.0, 4.0, 4.0]])
    r2 = np.sqrt(2.0)
    bands = [2.0, r2, 0.4, 2.0, 3.6,           # band 0: mean, std, p10, p50, p90 (linear interpolation)
             4.0, 0.0, 4.0, 4.0, 4.0]          # band 1
    deltas = [1.0, 0.0, 1.0, 1.0, 1.0,         # band 0 rises by 1 each frame
              0.0, 0.0, 0.0, 0.0, 0.0]
    # DCT-II (orthonormal) over 2 bands: c0 = (b0 + b1) / sqrt(2) = [4..8] / sqrt(2), c1 = (b0 - b1) / sqrt(2)
    cepstra = [6.0 / r2, -2.0 / r2,             # means of c0, c1
               1.0, 1.0]                        # stds: sqrt(2) / sqrt(2)
    want = np.array(bands + deltas + cepstra)
    got = clipstats.clip_stats(spec)
    assert got.shape == (clipstats.n_stats(2),) == (24,)
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_array_equal(clipstats.clip_stats(spec[..., None].astype(np.float32)), got)  # channel axis
    assert clipstats.n_stats(64) == 64 * 10 + 2 * clipstats.N_CEPSTRA
    one_frame = clipstats.clip_stats(spec[:, :1])                  # no deltas: zeros, not NaN
    assert np.isfinite(one_frame).all() and not one_frame[10:20].any()
    with pytest.raises(ValueError):
        clipstats.clip_stats(np.zeros(5))


def test_stats_of_a_clip_from_its_audio_equal_those_from_its_cache(tiny):
    """What training and src.predict read (the cache, float16) is the audio's features, rounded."""
    cfg = tiny_cfg()
    fnames = sorted(os.listdir("fat/train_curated"))[:3]
    feats, failed = features.extract(cfg, "fat", "train_curated", "fat/train_curated", fnames)
    assert not failed and feats.fnames == fnames
    for i, f in enumerate(fnames):
        audio = features.compute(os.path.join("fat/train_curated", f), cfg)
        cached = feats[i]
        assert cached.dtype == np.float16 and cached.shape == audio.shape
        np.testing.assert_array_equal(clipstats.clip_stats(cached), clipstats.clip_stats(audio.astype(np.float16)))
        np.testing.assert_allclose(clipstats.clip_stats(cached), clipstats.clip_stats(audio), atol=2e-3)
    assert clipstats.stack(feats).shape == (3, clipstats.n_stats(cfg.n_mels))


def test_stats_model_fits_predicts_and_round_trips_its_weights(tmp_path):
    rng = np.random.default_rng(0)
    specs = [rng.normal(-0.5 + 0.3 * (i % 2), 0.1, (8, 20 + i)) for i in range(12)]
    y = np.array([[i % 2, 1 - i % 2, 0] for i in range(12)], dtype=np.float32)      # label 2: never positive
    m = StatsModel(8, 3)
    loss = m.fit(clipstats.stack(specs), y, np.ones(12), c=1.0)
    p = m.predict_clips(specs)
    assert 0 < loss < 0.7 and p.shape == (12, 3) and p.dtype == np.float32
    assert (p[:, 0] > 0.5).tolist() == [bool(i % 2) for i in range(12)]
    assert not m.coef[2].any() and p[:, 2].max() < 1e-3                  # one class only: its frequency
    m.save_weights(str(tmp_path / "w.h5"))
    back = StatsModel(8, 3)
    back.load_weights(str(tmp_path / "w.h5"))
    np.testing.assert_array_equal(back.predict_clips(specs), p)
    np.testing.assert_array_equal(back.predict(np.stack([s[:, :20] for s in specs])[..., None]),
                                  m.predict_clips([s[:, :20] for s in specs]))
    with pytest.raises(KitError, match="not the weights of a stats model of 16 bands"):
        StatsModel(16, 3).load_weights(str(tmp_path / "w.h5"))
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(KitError, match="not a stats model's weights file"):
        StatsModel(8, 3).load_weights(str(tmp_path / "junk.h5"))


def test_stats_mixtures_are_union_labelled_lower_weighted_mixes_of_two_clips():
    """--model stats --mix-clips: each chosen clip adds the statistics of its mixture with another
    training clip (mixval.mix_whole: the shorter one silent past its end), targets the union."""
    from src.fat2019 import mixval
    from src.fat2019.stats_train import mixture_rows
    rng = np.random.default_rng(1)
    specs = [rng.uniform(0, 1, (6, 10 + 3 * i)).astype(np.float32) for i in range(40)]
    y = np.eye(4, dtype=np.float32)[np.arange(40) % 4]
    w = np.where(np.arange(40) < 20, 1.0, 0.5).astype(np.float32)
    x, ym, wm = mixture_rows(specs, y, w, 0.5, 6.0, seed=3)
    assert 10 <= len(x) <= 30 and x.shape[1] == clipstats.n_stats(6) and len(ym) == len(wm) == len(x)
    # replay the draws: which clips, which partners, which gains
    r = np.random.default_rng(3)
    chosen = np.flatnonzero(r.random(40) < 0.5)
    partner = (np.arange(40) + r.integers(1, 40, size=40)) % 40
    gains = r.uniform(-6.0, 6.0, size=40)
    assert len(chosen) == len(x) and (partner[chosen] != chosen).all()
    np.testing.assert_array_equal(ym, np.maximum(y[chosen], y[partner[chosen]]))
    np.testing.assert_array_equal(wm, np.minimum(w[chosen], w[partner[chosen]]))
    i, j = chosen[0], partner[chosen[0]]
    np.testing.assert_allclose(x[0], clipstats.clip_stats(mixval.mix_whole(specs[i], specs[j], gains[i])))
    assert (ym.sum(axis=1) >= 1).all() and (ym.sum(axis=1) == 2).any()             # some pairs differ
    assert len(mixture_rows(specs, y, w, 0.0, 6.0, seed=3)[0]) == 0
    np.testing.assert_array_equal(mixture_rows(specs, y, w, 0.5, 6.0, seed=3)[0], x)  # deterministic


# ----------------------------------------------------------------------------- a stats fold

def test_a_stats_fold_trains_through_the_fold_runner_and_reloads(tiny, capsys):
    assert fat_cv.main([*STATS, "--fold", "0", "--noisy", "none"]) == 0
    out = capsys.readouterr().out
    assert "fold 0: stats model (whole-clip statistics, logistic regression C=0.1) on 10 clips (0 noisy" in out
    assert "1 epochs of 1 steps" in out and "fold 0 lwlrap " in out
    d = one("work/fat-*/stats/fold0")
    assert sorted(os.listdir(d)) == sorted(["best.keras", "best.weights.h5", "config.json", "history.csv",
                                            "history.png", "last.keras", "metrics.json", "oof.csv", "per_label.png",
                                            "state.json"])
    config, metrics = json.load(open(f"{d}/config.json")), json.load(open(f"{d}/metrics.json"))
    assert config["model"] == "stats" and config["epochs"] == 1 and config["stats_c"] == 0.1
    assert config["labels"] == ["Bass_drum", "Buzz", "Cricket"] and config["folds_sha1"]
    assert metrics["model"] == "stats" and metrics["n_noisy"] == 0 and metrics["best_epoch"] == 1
    assert "scikit-learn" in metrics and 0 <= metrics["score"] <= 1
    oof = pd.read_csv(f"{d}/oof.csv")
    assert len(oof) == metrics["n_val"] == 5

    # the saved weights, reloaded as predict and the kernels load them, give the out-of-fold scores
    fold = runs.Fold("stats", 0, d, config, metrics)
    model = load_model(fold)
    assert isinstance(model, StatsModel)
    cfg = tiny_cfg()
    feats, _ = features.extract(cfg, os.path.basename(os.path.dirname(os.path.dirname(d))), "train_curated",
                                "fat/train_curated", oof["fname"].tolist())
    from src.fat2019.infer import predict_clips

    np.testing.assert_allclose(predict_clips(model, feats, cfg), oof[config["labels"]].to_numpy(), rtol=1e-5,
                               atol=1e-7)
    assert runs.find_runs(os.path.dirname(os.path.dirname(d)), config["labels"], config["folds_sha1"])["stats"]

    # noisy clips weighted as the CNN's are: the default --noisy weighted trains on them
    assert fat_cv.main([*STATS, "--fold", "1", "--noisy-weight", "0.5"]) == 0
    assert json.load(open(one("work/fat-*/stats/fold1/metrics.json")))["n_noisy"] == 6
    assert fat_cv.main([*STATS, "--fold", "2", "--noisy", "finetune"]) == 2
    assert "one fit has no last epochs" in capsys.readouterr().err


def test_a_stats_fold_killed_after_its_commit_is_finished_by_resume(tiny, capsys):
    killed_in_process(fat_cv.main, [*STATS, "--fold", "0"], "after-state-1")
    assert os.path.isdir(one("work/fat-*/stats/fold0.partial"))
    capsys.readouterr()
    assert fat_cv.main([*STATS, "--fold", "0"]) == 2                     # unfinished: refused without --resume
    assert "--resume" in capsys.readouterr().err
    assert fat_cv.main([*STATS, "--fold", "0", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "resuming after epoch 1" in out and "epoch 1/1" not in out   # finished, not fitted again
    assert os.path.isfile(one("work/fat-*/stats/fold0/metrics.json"))
    assert fat_cv.main([*STATS, "--fold", "0", "--resume"]) == 0
    assert "already finished" in capsys.readouterr().out


# ----------------------------------------------------------------------------- predict, blend, ship

def test_predict_blends_a_stats_run_with_the_cnn_run(fat_tiny, capsys):
    assert fat_cv.main([*STATS, "--fold", "all"]) == 0
    capsys.readouterr()
    assert fat_blend.main(["--data-dir", "fat"]) == 0
    blend = json.load(open(one("work/fat-*/blend.json")))
    assert sorted(blend["weights"]) == ["cnn", "stats"]
    assert fat_predict.main(["--data-dir", "fat", "--out", "sub.csv"]) == 0
    out = capsys.readouterr().out
    assert "predict: cnn: 3 fold(s)" in out and "predict: stats: 3 fold(s)" in out
    assert "out-of-fold lwlrap over 15 curated clips: cnn " in out and ", stats " in out and ", blend " in out
    assert "2 run(s), 6 fold(s)" in out
    sub = pd.read_csv("sub.csv")
    assert list(sub.columns) == ["fname", "Bass_drum", "Buzz", "Cricket"] and len(sub) == 4
    # the stats run alone: scores are its folds' probabilities, no windows (--tta does not change them)
    assert fat_predict.main(["--data-dir", "fat", "--models", "stats", "--no-blend", "--out", "a.csv"]) == 0
    assert fat_predict.main(["--data-dir", "fat", "--models", "stats", "--no-blend", "--out", "b.csv", "--tta", "3"]) == 0
    assert pd.read_csv("a.csv").equals(pd.read_csv("b.csv"))


@pytest.mark.slow       # the kernel runs twice in its own process (8-21 s here, TensorFlow imported or not)
def test_a_stats_run_ships_and_its_kernel_reproduces_local_prediction(tiny, capsys):
    assert fat_cv.main([*STATS, "--fold", "all"]) == 0
    assert kernels.main(["dataset", "freesound", "--dry-run", "--owner", USER, "--data-dir", "fat"]) == 0
    staged = "kernels/freesound/dataset"
    manifest = json.load(open(f"{staged}/kit-manifest.json"))
    assert list(manifest["runs"]) == ["stats"] and len(manifest["runs"]["stats"]["folds"]) == 3
    ref = np.load(f"{staged}/stats.fold0.reference.npz")
    assert 0.01 < ref["y"].max() and ref["y"].min() < 0.99     # not saturated: a changed weight shows
    assert kernels.main(["build", "freesound", "--owner", USER]) == 0
    capsys.readouterr()
    assert kernels.main(["check", "freesound", "--data-dir", "fat"]) == 0
    out = capsys.readouterr().out
    assert "check: kernel submission.csv equals local prediction (4 rows" in out
    log = open("kernels/freesound/check/kernel.log").read()
    assert "stats fold 0 loaded, reference outputs match" in log

    with h5py.File(f"{staged}/stats.fold0.weights.h5", "r+") as f:
        f["coef"][...] = f["coef"][...] * 0.5
    assert kernels.main(["check", "freesound", "--data-dir", "fat"]) == 1
    err = capsys.readouterr().err
    assert "run stats fold 0" in err and "refusing to write a submission" in err
