"""Cross-validation for any competition: train one fold (or all), print each fold's score and,
over several folds, the out-of-fold score.

Outputs: work/<dataset>/<name>/fold<K>/ (name: --name, default the model); a fold being trained
lives in fold<K>.partial/ and replaces fold<K>/ only once finished (see kit.fold_runner). One line
per fold, 'fold K <metric> 0.xxxx'; with several folds the last line is
'oof <metric> 0.xxxx over N <samples> of folds ...'.

Training length: --epochs N trains N epochs (fewer only on early stopping, a perfect score or
--max-minutes). When --epochs is not given, small data trains at least --min-steps batches: more
epochs than the default, patience stretched alike; the fold's plan line says which applied.
"""
from __future__ import annotations

import argparse

import numpy as np

from . import configio, runs
from .competition import Competition
from .errors import KitError, cli, warn
from .fold_runner import parse_folds


def epochs_rule(cfg, given: dict):
    """(config, flags given) with an explicit --epochs obeyed: the small-data stretch (--min-steps)
    is turned off, and saved so, so that --resume keeps obeying it."""
    if "epochs" not in given:
        return cfg, given
    if given.get("min_steps"):
        warn(f"--epochs {cfg.epochs} given: --min-steps {cfg.min_steps} is ignored (--epochs is obeyed exactly)")
    return cfg.replace(min_steps=0), {**given, "min_steps": 0}


def oof_line(comp: Competition, data, cfg, folds: list[int], results: list[dict]) -> str:
    found = [runs.Fold(cfg.run_name, k, runs.fold_dir(cfg.work_dir, data.name, cfg.run_name, k), {}, {}) for k in folds]
    oof = runs.read_oof(found)
    labels = list(oof.columns)
    y = comp.truth(data, oof.index.tolist(), labels)
    keep = ~np.isnan(y).any(axis=1)
    score = comp.metric(y[keep], oof.to_numpy(dtype=np.float64)[keep])
    return (f"oof {comp.metric_name} {score:.4f} over {int(keep.sum())} {comp.samples} of folds "
            f"{','.join(map(str, folds))} (mean of folds {np.mean([r['score'] for r in results]):.4f})")


def parser(comp: Competition, doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=f"python -m {comp.modules['cv']}", description=doc + "\n\n" +
                                 __doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fold", default="0", help="fold to validate on, or 'all' (default: 0)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the fold from its last finished epoch (flags given now override its config)")
    ap.add_argument("--restart", action="store_true",
                    help="discard a fold's unfinished training and start it afresh (without it, a fold with "
                         "committed unfinished epochs is refused: --resume continues it)")
    ap.add_argument("--config", default=None, help="start from this config.json (flags override it)")
    configio.add_config_args(ap, comp.config_cls)
    return ap


def run(comp: Competition, args: argparse.Namespace) -> int:
    cls = comp.config_cls
    base = configio.load(cls, args.config) if args.config else None
    cfg, given = epochs_rule(configio.from_args(cls, args, base), configio.given(cls, args))
    data = comp.open_data(cfg.data_dir)
    folds = parse_folds(args.fold, cfg.n_folds)
    if args.resume and args.restart:
        raise KitError("--resume and --restart: choose one (continue the unfinished training, or discard it)")
    results = comp.train_folds(cfg, data, folds, args.resume, given, restart=args.restart)
    for r in results:
        print(f"fold {r['fold']} {comp.metric_name} {r['score']:.4f}", flush=True)
    if len(folds) > 1:
        print(oof_line(comp, data, cfg, folds, results), flush=True)
    return 0


def main(comp: Competition, doc: str, argv: list[str] | None = None) -> int:
    return cli(lambda: run(comp, parser(comp, doc).parse_args(argv)))()
