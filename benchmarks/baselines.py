"""Non-deep baselines, beside which the deep models are judged (the data README's reference points).

FAT2019: per-clip statistics of the kit's log-mel (mean, std, max per band) and of MFCCs (mean,
std), standardised, one logistic regression per label; out-of-fold on the kit's 5 folds, then
fitted on every curated clip for the test set. Quick Draw: 32x32 rasters (the kit's rasteriser),
one multinomial logistic regression; MAP@3 on the test drawings. The answers are read only to
score, after predicting.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd


def _clip_stats(fs) -> np.ndarray:
    rows = []
    for i in range(len(fs)):
        x = np.asarray(fs[i], np.float32)
        rows.append(np.concatenate([x.mean(1), x.std(1), x.max(1)]))
    return np.stack(rows)


def fat_baseline(layout: str, cache_dir: str) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from src.fat2019 import data as fat_data, features, folds as fat_folds
    from src.fat2019.config import FatConfig
    from src.kit.metrics import lwlrap

    cfgs = [FatConfig(data_dir=layout, n_mels=64, cache_dir=cache_dir),
            FatConfig(data_dir=layout, feature="mfcc", n_mfcc=20, cache_dir=cache_dir)]
    data = fat_data.load(cfgs[0])

    def table(subset: str, names: list[str]) -> tuple[list[str], np.ndarray]:
        sets = [features.extract(c, data.name, subset, data.audio_dir(subset), names)[0] for c in cfgs]
        ok = [f for f in names if all(f in s.fnames for s in sets)]
        parts = [_clip_stats(s.take([s.fnames.index(f) for f in ok])) for s in sets]
        return ok, np.concatenate(parts, axis=1)

    names, x = table("train_curated", data.curated["fname"].tolist())
    y = fat_data.label_matrix(data.curated.set_index("fname").loc[names].reset_index(), data.labels)
    fold_of, _ = fat_folds.load_folds(data, cfgs[0])
    folds = fold_of.loc[names].to_numpy()

    def model():
        return make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(C=0.1, max_iter=2000)))

    keep = y.sum(axis=0) > 0
    oof = np.zeros_like(y)
    for k in np.unique(folds):
        tr = folds != k
        cols = keep & (y[tr].sum(axis=0) > 0)
        oof[np.ix_(~tr, cols)] = model().fit(x[tr], y[tr][:, cols]).predict_proba(x[~tr])
    test_names, xt = table("test", data.sample_submission["fname"].tolist())
    pt = np.zeros((len(test_names), len(data.labels)))
    pt[:, keep] = model().fit(x, y[:, keep]).predict_proba(xt)
    sol = pd.read_csv(layout.rstrip("/") + ".solution.csv").set_index("fname").loc[test_names, data.labels]
    return {"oof": lwlrap(y, oof), "test": lwlrap(sol.to_numpy(), pt)}


def qd_baseline(layout: str) -> dict:
    from sklearn.linear_model import LogisticRegression

    from src.kit.metrics import map_at_k_scores
    from src.quickdraw import data
    from src.quickdraw.strokes import parse_drawings, rasterize

    ts = data.load_train(layout, per_class=0)
    x = rasterize(ts.ink, 32, 1).reshape(len(ts.y), -1) / 255.0
    clf = LogisticRegression(C=0.05, max_iter=1000).fit(x, ts.y)
    test = pd.read_csv(os.path.join(layout, data.TEST_CSV), dtype=str)
    ink, valid, _ = parse_drawings(test["drawing"])
    probs = clf.predict_proba(rasterize(ink, 32, 1).reshape(len(ink), -1) / 255.0)
    sol = pd.read_csv(layout.rstrip("/") + ".solution.csv", dtype=str).set_index("key_id")
    words = [data.word_to_token(w) for w in ts.words]
    truth = sol.loc[test["key_id"][valid], "word"].map({w: i for i, w in enumerate(words)}).to_numpy()
    onehot = np.eye(len(words))[truth]
    return {"map3": map_at_k_scores(onehot, probs, 3), "top1": float(np.mean(probs.argmax(1) == truth))}
