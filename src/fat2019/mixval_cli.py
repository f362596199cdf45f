"""Score trained FAT2019 runs on mixtures of their folds' held-out clips, beside their plain
out-of-fold lwlrap -> work/<dataset>/mixval.json.

    python -m src.mixval [--models cnn,stats] [--seed 0] [--gain-db 6]

The curated clips the folds validate on are single sounds; FAT2019's test also holds clips of two
sounds at once. Each held-out clip is mixed with another clip of the same fold that shares none
of its labels (mel powers added at a random relative level, targets the union: what
`--mix-clips` trains on), and each fold's model scores the mixtures of its own held-out clips.
Every run is scored on the same mixtures. The blend line uses blend.json's weights when it names
exactly these runs, else equal weights. No test clip and no answer file is read.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from ..kit import atomic, blend, configio, runs
from ..kit.distribute import quiet_tensorflow
from ..kit.errors import KitError, cli
from ..kit.metrics import lwlrap
from . import data as fat_data, features
from .competition import FAT2019
from .config import FatConfig
from .infer import predict_clips
from .mixval import mixtures


def held_out(data: fat_data.FatData, fold: runs.Fold, cache_dir: str | None):
    """(config, the fold's held-out curated clips' features, their 0/1 targets): the clips of its
    oof.csv, so exactly those its out-of-fold score was computed on."""
    cfg = configio.from_dict(FatConfig, fold.config)
    if cache_dir:
        cfg = cfg.replace(cache_dir=cache_dir)
    if cfg.feature != "logmel":
        raise KitError(f"run {fold.run}: mixtures are made of log-mel powers; its --feature is {cfg.feature}")
    val = runs.read_oof([fold]).index.tolist()
    feats, _ = features.extract(cfg, data.name, "train_curated", data.audio_dir("train_curated"), val,
                                desc=f"features {fold.run} fold{fold.fold}")
    return cfg, feats, fat_data.truth(data, feats.fnames)


@cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.mixval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="competition data folder (default: as cv finds it)")
    ap.add_argument("--work-dir", default="work", help="runs folder (default: work)")
    ap.add_argument("--models", default=None, help="comma list of runs (default: every trained run)")
    ap.add_argument("--seed", type=int, default=0, help="which pairs and levels (the same for every run)")
    ap.add_argument("--gain-db", type=float, default=6.0, help="relative level of the two clips: uniform in +-this")
    ap.add_argument("--cache-dir", default=None, help="feature cache (default: each run's own --cache-dir)")
    ap.add_argument("--strict", action="store_true", help="stop on a run the trust rules would leave out")
    args = ap.parse_args(argv)
    data = FAT2019.open_data(args.data_dir)
    found = FAT2019.find_runs(args.work_dir, data, args.models.split(",") if args.models else None, args.strict)
    if not found:
        raise KitError(f"no trained runs under {args.work_dir}/{data.name}")
    # every fold's features first: extraction workers fork before TensorFlow starts
    held = {(f.run, f.fold): held_out(data, f, args.cache_dir) for folds in found.values() for f in folds}
    quiet_tensorflow()
    out, blended = {}, {}
    for name, folds in found.items():
        oof = runs.read_oof(folds)
        plain = lwlrap(fat_data.truth(data, oof.index.tolist()), oof[data.labels].to_numpy())
        preds, ys = [], []
        for f in folds:
            cfg, feats, truth = held[(f.run, f.fold)]
            specs, y = mixtures(feats, truth, args.seed * 1000 + f.fold, args.gain_db)
            preds.append(predict_clips(FAT2019.load_model(f), specs, cfg))
            ys.append(y)
        p, y = np.concatenate(preds), np.concatenate(ys)
        blended[name] = (p, y)
        out[name] = {"out_of_fold": round(plain, 5), "mixtures": round(lwlrap(y, p), 5), "n_mixtures": len(y),
                     "n_clips": len(oof), "folds": [f.fold for f in folds]}
        print(f"mixval: {name}: out-of-fold lwlrap {plain:.4f} over {len(oof)} clips; on mixtures "
              f"{out[name]['mixtures']:.4f} over {len(y)} mixtures of two held-out clips", flush=True)
    if len(found) > 1:
        ys = [y for _, y in blended.values()]
        if any(len(y) != len(ys[0]) or not np.array_equal(y, ys[0]) for y in ys):
            raise KitError("the runs' folds hold different clips; no blend of their mixtures")
        weights, _ = blend.load(os.path.join(args.work_dir, data.name), list(found))
        weights = weights or {n: 1.0 / len(found) for n in found}
        p = sum(weights[n] * blended[n][0] for n in found)
        out["blend"] = {"weights": weights, "mixtures": round(lwlrap(ys[0], p), 5), "n_mixtures": len(ys[0])}
        print(f"mixval: blend {weights}: on mixtures {out['blend']['mixtures']:.4f}", flush=True)
    doc = {"seed": args.seed, "gain_db": args.gain_db, "runs": out}
    path = os.path.join(args.work_dir, data.name, "mixval.json")
    atomic.write_json(path, doc)
    print(f"mixval: wrote {path}", flush=True)
    return 0
