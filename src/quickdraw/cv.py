"""Train Quick, Draw! models fold by fold.

    python -m src.quickdraw.cv --fold 0                  # the built-in demo, default model (cnn)
    python -m src.quickdraw.cv --data-dir /tmp/qd-real --model lstm --fold all

Outputs per fold in WORK_DIR/quickdraw-<dataset>/<model>/fold<K>/: model.keras (best epoch by
validation MAP@3), config.json, classes.json, history.csv, metrics.json, oof.csv, oof_probs.npy.
The last line printed is `fold K map@3 0.xxxx` (`fold all map@3 ...`: the overall out-of-fold score).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ..kit import atomic, configio  # noqa: E402
from ..kit.errors import KitError, cli  # noqa: E402
from .config import QDConfig  # noqa: E402


def run_dir(cfg: QDConfig, dataset: str, fold: int | None = None) -> str:
    d = os.path.join(cfg.work_dir, f"quickdraw-{dataset}", cfg.model)
    return d if fold is None else os.path.join(d, f"fold{fold}")


def folds_path(dataset: str) -> str:
    """folds/quickdraw-<dataset>.csv, beside the audio datasets' fold files."""
    from ..folds import folds_path as kit_folds_path

    return kit_folds_path(f"quickdraw-{dataset}")


def parse_fold(text: str, n_folds: int) -> list[int]:
    if text == "all":
        return list(range(n_folds))
    try:
        k = int(text)
    except ValueError:
        raise KitError(f"--fold {text!r}: give a fold number or 'all'") from None
    if not 0 <= k < n_folds:
        raise KitError(f"--fold {k}: the folds file has folds 0-{n_folds - 1}")
    return [k]


def train_folds(cfg: QDConfig, fold_arg: str, words: list[str] | None = None,
                out_root: str | None = None) -> tuple[list[dict], float | None, str]:
    """Load data, make/read folds, train the requested folds. Returns (per-fold metrics, overall
    OOF MAP@3 when every fold was run, dataset name)."""
    import numpy as np
    import pandas as pd

    from ..kit.metrics import map_at_k
    from . import data
    from .train import run_fold

    data_dir, dataset = data.resolve(cfg.data_dir)
    ts = data.load_train(data_dir, cfg.classes, cfg.per_class, cfg.seed, cfg.chunk_size, words=words)
    folds = data.ensure_folds(folds_path(dataset), ts, cfg.n_folds, cfg.seed)
    n_folds = int(folds.max()) + 1
    todo = parse_fold(fold_arg, n_folds)
    root = out_root or run_dir(cfg, dataset)
    results = [run_fold(cfg, ts, folds, k, os.path.join(root, f"fold{k}")) for k in todo]
    overall = None
    if fold_arg == "all":
        oof = pd.concat([pd.read_csv(os.path.join(root, f"fold{k}", "oof.csv"), dtype=str,
                                     keep_default_na=False) for k in todo], ignore_index=True)
        pred = oof[["pred1", "pred2", "pred3"]].to_numpy().tolist()
        overall = map_at_k(oof["word"].tolist(), pred, k=3)
        top1 = float(np.mean(oof["word"] == oof["pred1"]))
        atomic.write_csv(os.path.join(root, "oof.csv"), oof)
        atomic.write_json(os.path.join(root, "cv_metrics.json"),
                          {"model": cfg.model, "oof_map3": overall, "oof_top1": top1,
                           "folds": results, "n": len(oof)})
        print(f"overall out-of-fold: map@3 {overall:.4f}, top1 {top1:.4f} over {len(oof)} drawings",
              flush=True)
    return results, overall, dataset


@cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.quickdraw.cv", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--fold", default="0", help="fold to validate on, or 'all' (default: 0)")
    ap.add_argument("--config", default=None, help="start from this config.json (flags override it)")
    configio.add_config_args(ap, QDConfig)
    args = ap.parse_args(argv)
    base = configio.load(QDConfig, args.config) if args.config else None
    cfg = configio.from_args(QDConfig, args, base)
    results, overall, _ = train_folds(cfg, args.fold)
    if overall is not None:
        print(f"fold all map@3 {overall:.4f}")
    else:
        print(f"fold {results[0]['fold']} map@3 {results[0]['val_map3']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
