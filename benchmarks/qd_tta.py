"""Quick Draw: a run's out-of-fold MAP@3 re-scored with and without `--tta-flip` (each
validation drawing and its mirror image averaged), by the same fold models: no training.

    python -m benchmarks.qd_tta --data-dir /tmp/qd-real --work-dir work --run cnn

Tells whether test-time flipping helps a run trained without it, before spending a training on
`--aug-flip`. `--aug N` adds an arm: the mirror-averaged scores of each drawing and of N mildly
distorted copies (the training augmentation's rotation, scaling and shear at `--aug-frac` of their
ranges, fixed seeds, no jitter or point dropout), averaged. The answers file is never read:
validation drawings only.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def rescore(data_dir: str | None, work_dir: str, run: str, aug: int = 0, aug_frac: float = 0.5) -> dict[str, float]:
    """{"plain": MAP@3, "tta-flip": MAP@3[, "tta-flip+augN": MAP@3]} over the validation drawings of
    the run's trusted folds."""
    from src.kit import configio, runs
    from src.kit.distribute import quiet_tensorflow
    from src.kit.errors import KitError
    from src.quickdraw import data as qd_data
    from src.quickdraw.competition import QUICKDRAW
    from src.quickdraw.config import QDConfig
    from src.quickdraw.infer import predict_probs
    from src.quickdraw.strokes import augment
    from src.quickdraw.train import scores

    data = QUICKDRAW.open_data(data_dir)
    folds = QUICKDRAW.find_runs(work_dir, data, [run]).get(run)
    if not folds:
        raise KitError(f"{os.path.join(work_dir, data.name, run)}: no finished fold")
    quiet_tensorflow()
    arm = f"tta-flip+aug{aug}"
    loaded, probs, ys = {}, {"plain": [], "tta-flip": [], **({arm: []} if aug else {})}, []
    for fold in folds:
        cfg = configio.from_dict(QDConfig, fold.config)
        key = (cfg.classes, cfg.per_class, cfg.seed)
        if key not in loaded:
            ts = qd_data.load_train(data.root, cfg.classes, cfg.per_class, cfg.seed, cfg.chunk_size)
            loaded[key] = ts, {s: i for i, s in enumerate(ts.key_ids.astype(str))}
        ts, where = loaded[key]
        val = ts.take([where[s] for s in runs.read_oof([fold]).index.astype(str)])
        model = QUICKDRAW.load_model(fold)
        probs["plain"].append(predict_probs(model, val.ink, cfg.replace(tta_flip=False)))
        probs["tta-flip"].append(predict_probs(model, val.ink, cfg.replace(tta_flip=True)))
        if aug:
            views = [augment(val.ink, np.random.default_rng([12345, k]), cfg.aug_rotate * aug_frac,
                             cfg.aug_scale * aug_frac, cfg.aug_shear * aug_frac, 0.0, 0.0) for k in range(aug)]
            p = sum(predict_probs(model, v, cfg.replace(tta_flip=True)) for v in views)
            probs[arm].append((probs["tta-flip"][-1] + p) / (aug + 1))
        ys.append(val.y)
        print(f"fold {fold.fold}: {len(val.y)} drawings", flush=True)
    y = np.concatenate(ys)
    return {name: scores(np.concatenate(p), y)[0] for name, p in probs.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.qd_tta", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="competition data folder (default: as cv finds it)")
    ap.add_argument("--work-dir", default="work")
    ap.add_argument("--run", default="cnn")
    ap.add_argument("--aug", type=int, default=0, help="distorted copies averaged in, an extra arm (default 0: none)")
    ap.add_argument("--aug-frac", type=float, default=0.5, help="share of the training augmentation's ranges")
    args = ap.parse_args(argv)
    out = rescore(args.data_dir, args.work_dir, args.run, args.aug, args.aug_frac)
    for name, s in out.items():
        print(f"{args.run} out-of-fold MAP@3, {name}: {s:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
