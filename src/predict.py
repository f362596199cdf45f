"""Score the test clips with every trusted fold of every run and write submissions/submission.csv.

    python -m src.predict                         # all finished runs under work/<dataset>/
    python -m src.predict --models cnn --tta 3    # one run, three shifted window grids per clip
    python -m src.predict --window-agg max        # a clip's score: the max over its windows

What counts: a fold is used only when finished (metrics.json) and trained on the labels and the
folds file the data has now; anything else is named once and left out (--strict: refused).
Each clip is scored on overlapping windows over its whole length, windows of many clips going
through the model together; scores are aggregated over windows, averaged over folds, then
blended over runs: with the weights of work/<dataset>/blend.json (python -m src.blend) when it
names exactly these runs, else equally. The out-of-fold lwlrap of each run and of the blend is
printed. Test files are checked first: missing ones stop the run (exit 2) unless
--allow-missing; an unreadable clip gets the training label frequencies, with a warning.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

from .fat2019 import data as fat_data, features
from .fat2019.config import FatConfig
from .kit import blend, configio, foldfile, runs
from .kit.datadir import file_sha1
from .kit.distribute import quiet_tensorflow
from .kit.errors import KitError, cli, list_some, warn
from .kit.metrics import lwlrap
from .fat2019.infer import predict_clips
from .fat2019.submission import write_submission

TRAIN_HINT = "python -m src.cv --fold 0"


def folds_sha1(dataset: str) -> str | None:
    p = foldfile.folds_path(dataset)
    return file_sha1(p) if os.path.exists(p) else None


def find_runs(work_dir: str, data: fat_data.FatData, names: list[str] | None, strict: bool) -> dict:
    sha = folds_sha1(data.name)
    if sha is None:
        raise KitError(f"{foldfile.folds_path(data.name)} is missing: no run can be matched to the data's folds; "
                       f"train with {TRAIN_HINT}")
    return runs.find_runs(os.path.join(work_dir, data.name), data.labels, sha, names, strict, train_hint=TRAIN_HINT)


def load_model(fold: runs.Fold):
    """The fold's network rebuilt from its config.json, with its best weights."""
    from .fat2019 import models

    cfg = configio.from_dict(FatConfig, fold.config)
    model = models.build(cfg, len(fold.labels))
    runs.load_weights_checked(model, fold.weights)
    return model


def reference_input(config: dict) -> np.ndarray:
    """Fixed inputs whose outputs a shipped fold must reproduce after loading (see src.kernels)."""
    cfg = configio.from_dict(FatConfig, config)
    return np.random.default_rng(0).uniform(-1, 1, (4, cfg.n_features, cfg.crop_frames, 1)).astype(np.float32)


def oof_report(found: dict, data: fat_data.FatData, weights: dict | None) -> str:
    scores, ids, _, _ = runs.oof_scores(found, data.labels, lambda f: fat_data.truth(data, f), lwlrap, weights)
    return runs.report_line(scores, len(ids), "lwlrap", "curated clips")


def test_features(configs: list[FatConfig], data: fat_data.FatData, fnames: list[str]):
    """{feature key: FeatureSet} of the test clips, and {fname: why} for clips any config could not use."""
    feats, failed = {}, {}
    for cfg in configs:
        key = cfg.feature_key()
        if key not in feats:
            feats[key], bad = features.extract(cfg, data.name, "test", data.audio_dir("test"), fnames,
                                               desc=f"features test ({key})")
            failed.update(bad)
    return feats, failed


def check_test_files(data: fat_data.FatData, fnames: list[str], allow_missing: bool) -> list[str]:
    if not fnames:
        raise KitError(f"{data.root}/sample_submission.csv lists no test clips")
    missing = fat_data.missing_files(fnames, data.audio_dir("test"))
    if missing and not allow_missing:
        raise KitError(f"{data.audio_dir('test')}: {len(missing)} of the {len(fnames)} test clips of "
                       f"sample_submission.csv are missing: {list_some(missing)}. --allow-missing writes "
                       f"the training label frequencies for them instead")
    return missing


def scores_by_clip(found: dict, data: fat_data.FatData, fnames: list[str], tta: int | None, window_agg: str | None,
                   weights: dict | None, fold_how: str, batch_size: int, load=load_model) -> tuple[dict, dict]:
    """({fname: blended scores}, {fname: why}) for the test clips: features first (the
    extraction workers fork before TensorFlow starts), then every fold's model (`load(fold)`)."""
    configs = {f.path: configio.from_dict(FatConfig, f.config) for folds in found.values() for f in folds}
    feats, failed = test_features(list(configs.values()), data, fnames)
    usable = [f for f in fnames if f not in failed]
    quiet_tensorflow()

    def predict(fold: runs.Fold) -> pd.DataFrame:
        cfg = configs[fold.path]
        fs = feats[cfg.feature_key()]
        pos = {f: i for i, f in enumerate(fs.fnames)}
        p = predict_clips(load(fold), fs.take([pos[f] for f in usable]), cfg,
                          tta=cfg.tta if tta is None else tta, batch_size=batch_size,
                          progress=f"{fold.run} fold{fold.fold}", window_agg=window_agg)
        return pd.DataFrame(p, columns=fold.labels)

    blended = runs.ensemble(found, predict, data.labels, weights, fold_how) if usable else \
        np.zeros((0, len(data.labels)))
    return dict(zip(usable, blended)), failed


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.predict", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="competition data folder (default: as src.cv finds it)")
    ap.add_argument("--models", default=None, help="comma-separated run names (default: every finished run)")
    ap.add_argument("--tta", type=int, default=None, help="shifted window grids per clip (default: each run's config)")
    ap.add_argument("--window-agg", choices=["mean", "max", "meanmax"], default=None,
                    help="a clip's score from its windows' (default: each run's config)")
    ap.add_argument("--fold-mean", choices=["mean", "geo"], default=None,
                    help="average of a run's folds: arithmetic or geometric (default: blend.json's, else mean)")
    ap.add_argument("--no-blend", action="store_true", help="ignore blend.json: equal weights")
    ap.add_argument("--strict", action="store_true", help="refuse, instead of leaving out, unfinished or foreign folds")
    ap.add_argument("--allow-missing", action="store_true",
                    help="write the training label frequencies for missing test clips instead of stopping")
    ap.add_argument("--work-dir", default="work", help="where src.cv wrote its runs (default: work)")
    ap.add_argument("--out", default=os.path.join("submissions", "submission.csv"), help="submission path")
    ap.add_argument("--batch-size", type=int, default=256, help="windows per model call")
    args = ap.parse_args(argv)
    data = fat_data.load(FatConfig(data_dir=args.data_dir, work_dir=args.work_dir))
    fnames = data.sample_submission["fname"].tolist()
    missing = check_test_files(data, fnames, args.allow_missing)
    found = find_runs(args.work_dir, data, args.models.split(",") if args.models else None, args.strict)
    weights, fold_how = (None, "mean") if args.no_blend else blend.load(os.path.join(args.work_dir, data.name),
                                                                        list(found))
    fold_how = args.fold_mean or fold_how
    for name, folds in found.items():
        print(f"predict: {name}: {len(folds)} fold(s) ({', '.join(str(f.fold) for f in folds)})"
              f"{f', weight {weights[name]:.2f}' if weights else ''}", flush=True)
    scores, failed = scores_by_clip(found, data, fnames, args.tta, args.window_agg, weights, fold_how, args.batch_size)
    prior = data.prior
    for f, why in sorted(failed.items()):
        warn(f"{os.path.join(data.audio_dir('test'), f)}: {why}; its row gets the training label frequencies")
        scores[f] = prior
    print(f"predict: {oof_report(found, data, weights)}", flush=True)
    write_submission(args.out, data.sample_submission, data.labels, scores)
    print(f"predict: wrote {args.out} ({len(fnames)} clips x {len(data.labels)} labels; {len(found)} run(s), "
          f"{sum(len(v) for v in found.values())} fold(s); {len(failed)} unreadable or missing"
          f"{f' ({len(missing)} missing)' if missing else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
