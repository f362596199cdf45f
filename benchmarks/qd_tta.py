"""Quick Draw: a run's out-of-fold MAP@3 re-scored with and without `--tta-flip` (each
validation drawing and its mirror image averaged), by the same fold models: no training.

    python -m benchmarks.qd_tta --data-dir /tmp/qd-real --work-dir work --run cnn

Tells whether test-time flipping helps a run trained without it, before spending a training on
`--aug-flip`. The answers file is never read: validation drawings only.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def rescore(data_dir: str | None, work_dir: str, run: str) -> dict[str, float]:
    """{"plain": MAP@3, "tta-flip": MAP@3} over the validation drawings of the run's trusted folds."""
    from src.kit import configio, runs
    from src.kit.distribute import quiet_tensorflow
    from src.kit.errors import KitError
    from src.quickdraw import data as qd_data
    from src.quickdraw.competition import QUICKDRAW
    from src.quickdraw.config import QDConfig
    from src.quickdraw.infer import predict_probs
    from src.quickdraw.train import scores

    data = QUICKDRAW.open_data(data_dir)
    folds = QUICKDRAW.find_runs(work_dir, data, [run]).get(run)
    if not folds:
        raise KitError(f"{os.path.join(work_dir, data.name, run)}: no finished fold")
    quiet_tensorflow()
    loaded, probs, ys = {}, {"plain": [], "tta-flip": []}, []
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
    args = ap.parse_args(argv)
    out = rescore(args.data_dir, args.work_dir, args.run)
    for name, s in out.items():
        print(f"{args.run} out-of-fold MAP@3, {name}: {s:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
