"""Score trained FAT2019 runs on mixtures of their folds' held-out clips, beside their plain
out-of-fold lwlrap -> work/<dataset>/mixval.json and mixval.png.

    python -m src.mixval [--models cnn,stats] [--seed 0] [--gain-db 6]

The curated clips the folds validate on are single sounds; FAT2019's test also holds clips of two
sounds at once. Each held-out clip is mixed with another clip of the same fold that shares none
of its labels (mel powers added at a random relative level, targets the union: what
`--mix-clips` trains on), and each fold's model scores the mixtures of its own held-out clips.
Every run is scored on the same mixtures. The blend line uses blend.json's weights when it names
exactly these runs, else equal weights. No test clip and no answer file is read.

Choosing between runs: each is ranked by (1 - F) x out-of-fold + F x mixtures, F the share of
mixtures the test is expected to hold (`--mix-share`; default: the share of multi-label clips
among the training clips, as a test drawn like them would hold). The line under the ranking
says at which F the pick would change.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from ..kit import atomic, blend, configio, plots, runs
from ..kit.distribute import quiet_tensorflow
from ..kit.errors import KitError, cli
from ..kit.metrics import lwlrap
from . import data as fat_data, features
from .competition import FAT2019
from .config import FatConfig
from .infer import predict_clips
from .mixval import break_even, combined, mixtures, multi_label_share


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
    ap.add_argument("--mix-share", type=float, default=None,
                    help="share of mixtures expected at test, for the ranking (default: the share of "
                         "multi-label clips among train_curated + train_noisy)")
    ap.add_argument("--strict", action="store_true", help="stop on a run the trust rules would leave out")
    args = ap.parse_args(argv)
    data = FAT2019.open_data(args.data_dir)
    found = FAT2019.find_runs(args.work_dir, data, args.models.split(",") if args.models else None, args.strict)
    if not found:
        raise KitError(f"no trained runs under {args.work_dir}/{data.name}")
    if args.mix_share is not None and not 0.0 <= args.mix_share <= 1.0:
        raise KitError(f"--mix-share {args.mix_share}: a share, from 0 to 1")
    train_labels = list(data.curated["labels"]) + list(data.noisy["labels"])
    share = args.mix_share if args.mix_share is not None else multi_label_share(train_labels)
    why = "--mix-share" if args.mix_share is not None else \
        f"the share of multi-label clips among the {len(train_labels)} training clips; --mix-share sets it"
    print(f"mixval: ranking by (1 - F) x out-of-fold + F x mixtures, F = {share:.3f} ({why})", flush=True)
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
        blended[name] = (p, y, oof)
        out[name] = {"out_of_fold": round(plain, 5), "mixtures": round(lwlrap(y, p), 5), "n_mixtures": len(y),
                     "n_clips": len(oof), "folds": [f.fold for f in folds]}
        print(f"mixval: {name}: out-of-fold lwlrap {plain:.4f} over {len(oof)} clips; on mixtures "
              f"{out[name]['mixtures']:.4f} over {len(y)} mixtures of two held-out clips", flush=True)
    if len(found) > 1:
        ys = [y for _, y, _ in blended.values()]
        if any(len(y) != len(ys[0]) or not np.array_equal(y, ys[0]) for y in ys):
            raise KitError("the runs' folds hold different clips; no blend of their mixtures")
        weights, _ = blend.load(os.path.join(args.work_dir, data.name), list(found))
        weights = weights or {n: 1.0 / len(found) for n in found}
        p = sum(weights[n] * blended[n][0] for n in found)
        first = blended[next(iter(found))][2]
        oof_p = sum(weights[n] * blended[n][2].loc[first.index, data.labels].to_numpy() for n in found)
        plain = lwlrap(fat_data.truth(data, first.index.tolist()), oof_p)
        out["blend"] = {"weights": weights, "out_of_fold": round(plain, 5), "mixtures": round(lwlrap(ys[0], p), 5),
                        "n_mixtures": len(ys[0])}
        print(f"mixval: blend {weights}: out-of-fold lwlrap {plain:.4f}; on mixtures "
              f"{out['blend']['mixtures']:.4f}", flush=True)
    for r in out.values():
        r["combined"] = round(combined(r["out_of_fold"], r["mixtures"], share), 5)
    ranked = sorted(out, key=lambda n: -out[n]["combined"])
    print("mixval: ranked: " + ", ".join(f"{n} {out[n]['combined']:.4f}" for n in ranked), flush=True)
    pick = ranked[0]
    for n in ranked[1:]:
        at = break_even((out[pick]["out_of_fold"], out[pick]["mixtures"]), (out[n]["out_of_fold"], out[n]["mixtures"]))
        if at is not None:
            print(f"mixval: {n} would rank above {pick} at F {'>' if at > share else '<'} {at:.3f}", flush=True)
    doc = {"seed": args.seed, "gain_db": args.gain_db, "mix_share": share, "pick": pick, "runs": out}
    path = os.path.join(args.work_dir, data.name, "mixval.json")
    atomic.write_json(path, doc)
    png = os.path.join(args.work_dir, data.name, "mixval.png")
    plots.plot_tradeoff({n: (r["out_of_fold"], r["mixtures"]) for n, r in out.items()}, png,
                        "out-of-fold lwlrap (single clips)", "lwlrap on mixtures of held-out clips", share,
                        f"dotted: equal (1 - F) x out-of-fold + F x mixtures, F = {share:.3f}")
    print(f"mixval: wrote {path} and {png}", flush=True)
    return 0
