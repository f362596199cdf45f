"""Score the test clips with every trained fold of every model and write submissions/submission.csv.

    python -m src.predict                         # all models found under work/<dataset>/
    python -m src.predict --models cnn --tta 3    # three shifted window grids per clip
    python -m src.predict --models cnn,cnn128     # runs trained with --name cnn128 ensemble too

Each clip is scored on overlapping windows over its whole length (eval_hop of the model's
config), plus shifted grids with --tta; windows of many clips go through the model together.
Scores are averaged over windows, then folds, then models (runs); the out-of-fold lwlrap of
each run and of the blend is printed when every fold has its oof.csv. Unreadable test clips still get a
row, filled with the training label frequencies, and are named in a warning.
"""
from __future__ import annotations

import argparse
import glob
import os
import warnings

import numpy as np
import pandas as pd

from . import data as fat_data, features
from .kit import configio
from .config import FatConfig
from .kit.distribute import quiet_tensorflow
from .ensemble import weighted_mean
from .kit.errors import KitError, cli
from .kit.metrics import lwlrap
from .predictor import predict_clips
from .submission import write_submission


def trained_folds(work_dir: str, dataset: str, models: list[str] | None) -> dict[str, list[str]]:
    """{model: [fold dirs with a best.keras]} under work/<dataset>/."""
    root = os.path.join(work_dir, dataset)
    found: dict[str, list[str]] = {}
    for d in sorted(glob.glob(os.path.join(root, "*", "fold*", "best.keras"))):
        fold_dir = os.path.dirname(d)
        model = os.path.basename(os.path.dirname(fold_dir))
        if models is None or model in models:
            found.setdefault(model, []).append(fold_dir)
    if not found:
        raise KitError(f"no trained folds under {root}/{'{' + ','.join(models) + '}' if models else '*'}"
                       f"/fold*/best.keras; run python -m src.cv first")
    if models:
        absent = [m for m in models if m not in found]
        if absent:
            raise KitError(f"--models: no trained folds for {', '.join(absent)} under {root}")
    return found


def oof_report(runs: dict[str, list[str]], data: fat_data.FatData) -> str | None:
    """Out-of-fold lwlrap of each run and of their equal-weight blend: the validation score of
    the very ensemble being submitted. None when the runs do not cover the same clips."""
    oofs = {}
    for name, fold_dirs in runs.items():
        paths = [os.path.join(fd, "oof.csv") for fd in fold_dirs]
        if not all(os.path.exists(p) for p in paths):
            return None
        oofs[name] = pd.concat([pd.read_csv(p) for p in paths]).set_index("fname").sort_index()
    index = next(iter(oofs.values())).index
    if any(not o.index.equals(index) for o in oofs.values()):
        return None
    truth = fat_data.label_matrix(data.curated.set_index("fname").loc[index].reset_index(), data.labels)
    parts = [f"{n} {lwlrap(truth, o[data.labels].to_numpy()):.4f}" for n, o in oofs.items()]
    if len(oofs) > 1:
        blend = weighted_mean([o[data.labels].to_numpy() for o in oofs.values()])
        parts.append(f"blend {lwlrap(truth, blend):.4f}")
    return f"out-of-fold lwlrap over {len(index)} curated clips: " + ", ".join(parts)


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.predict", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="competition data folder (default: as src.cv finds it)")
    ap.add_argument("--models", default=None, help="comma-separated model names (default: every model found)")
    ap.add_argument("--tta", type=int, default=None, help="shifted window grids per clip (default: each model's config)")
    ap.add_argument("--work-dir", default="work", help="where src.cv wrote its runs (default: work)")
    ap.add_argument("--out", default=os.path.join("submissions", "submission.csv"), help="submission path")
    ap.add_argument("--batch-size", type=int, default=256, help="windows per model call")
    args = ap.parse_args(argv)
    base = FatConfig(data_dir=args.data_dir, work_dir=args.work_dir)
    data = fat_data.load(base)
    runs = trained_folds(args.work_dir, data.name, args.models.split(",") if args.models else None)
    fnames = data.sample_submission["fname"].tolist()
    # Features first (one extraction per distinct feature config), TensorFlow after: the
    # extraction workers fork before TF starts its threads.
    configs = {fd: configio.load(FatConfig, os.path.join(fd, "config.json")).replace(
        data_dir=args.data_dir, work_dir=args.work_dir) for fds in runs.values() for fd in fds}
    test_feats, failed_all = {}, {}
    for cfg in configs.values():
        key = cfg.feature_key()
        if key not in test_feats:
            test_feats[key], failed = features.extract(cfg, data.name, "test", data.audio_dir("test"), fnames,
                                                       desc=f"features test ({key})")
            failed_all.update(failed)
    quiet_tensorflow()
    import keras

    model_scores = []
    for model_name, fold_dirs in runs.items():
        fold_scores = []
        for fd in fold_dirs:
            cfg = configs[fd]
            feats = test_feats[cfg.feature_key()]
            ok = [f for f in fnames if f in feats]
            model = keras.models.load_model(os.path.join(fd, "best.keras"), compile=False)
            tta = args.tta if args.tta is not None else cfg.tta
            p = predict_clips(model, [feats[f] for f in ok], cfg, tta=tta, batch_size=args.batch_size,
                              progress=f"{model_name} {os.path.basename(fd)}")
            fold_scores.append(dict(zip(ok, p)))
        common = [f for f in fnames if all(f in s for s in fold_scores)]
        avg = weighted_mean([np.stack([s[f] for f in common]) for s in fold_scores])
        model_scores.append(dict(zip(common, avg)))
        print(f"predict: {model_name}: {len(fold_dirs)} fold(s)", flush=True)
    usable = [f for f in fnames if all(f in s for s in model_scores)]
    avg = weighted_mean([np.stack([s[f] for f in usable]) for s in model_scores]) if usable else np.zeros((0, len(data.labels)))
    scores = dict(zip(usable, avg))
    if failed_all:
        prior = fat_data.label_matrix(data.curated, data.labels).mean(axis=0)
        for f, why in sorted(failed_all.items()):
            warnings.warn(f"{os.path.join(data.audio_dir('test'), f)}: {why}; its row gets the training label frequencies")
            scores[f] = prior
    report = oof_report(runs, data)
    if report:
        print(f"predict: {report}", flush=True)
    path = args.out
    write_submission(path, data.sample_submission, data.labels, scores)
    print(f"predict: wrote {path} ({len(fnames)} clips x {len(data.labels)} labels; "
          f"{len(runs)} model(s), {sum(len(v) for v in runs.values())} fold(s); {len(failed_all)} unreadable)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
