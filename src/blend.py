"""Choose blend weights for the trained runs on their out-of-fold lwlrap -> work/<dataset>/blend.json.

    python -m src.blend                        # every finished run of the dataset
    python -m src.blend --models cnn,cnn64     # these runs only

Weights are non-negative and sum to one, searched on a coarse grid; they are kept only if
weights chosen on part of the clips also beat equal weights on the other part (nested check),
else the blend stays equal. `python -m src.predict` uses blend.json when it names exactly the
runs it blends. Writes blend.json and blend_per_label.png (the blend's out-of-fold lwlrap per
label, worst first) beside the runs.
"""
from __future__ import annotations

import argparse
import os

import pandas as pd

from .fat2019 import data as fat_data
from .fat2019.config import FatConfig
from .kit import blend, plots, runs
from .kit.errors import KitError, cli
from .kit.metrics import lwlrap, per_class_lwlrap
from .predict import find_runs


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.blend", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="competition data folder (default: as src.cv finds it)")
    ap.add_argument("--models", default=None, help="comma-separated run names (default: every finished run)")
    ap.add_argument("--fold-mean", choices=["mean", "geo"], default="mean",
                    help="how predict averages a run's folds (recorded in blend.json)")
    ap.add_argument("--strict", action="store_true", help="refuse, instead of leaving out, unfinished or foreign folds")
    ap.add_argument("--work-dir", default="work", help="where src.cv wrote its runs (default: work)")
    args = ap.parse_args(argv)
    data = fat_data.load(FatConfig(data_dir=args.data_dir, work_dir=args.work_dir))
    found = find_runs(args.work_dir, data, args.models.split(",") if args.models else None, args.strict)
    _, ids, mats, y = runs.oof_scores(found, data.labels, lambda f: fat_data.truth(data, f), lwlrap)
    if not ids:
        raise KitError(f"runs {', '.join(found)} validated different folds: no clip has out-of-fold scores from "
                       f"all of them to choose weights on (train the same folds, e.g. --fold all)")
    fit = blend.fit(mats, y, lwlrap)
    root = os.path.join(args.work_dir, data.name)
    doc = blend.save(root, fit, args.fold_mean, len(ids), "lwlrap")
    per_class, w = per_class_lwlrap(y, runs.weighted_mean(list(mats.values()), list(fit.weights)))
    plots.plot_bars(pd.Series(per_class, index=data.labels)[w > 0], os.path.join(root, "blend_per_label.png"),
                    "out-of-fold lwlrap", f"blend of {', '.join(fit.names)}: per label")
    print(f"blend: out-of-fold lwlrap over {len(ids)} curated clips: " +
          ", ".join(f"{k} {v:.4f}" for k, v in doc["scores"].items()))
    print(f"blend: weights {doc['weights']} ({'tuned' if list(fit.weights) == list(fit.tuned) else 'equal: tuned weights did not beat them on held-out clips'})"
          f" -> {blend.path(root)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
