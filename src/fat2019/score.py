"""Score a FAT2019 submission against an answers file: overall lwlrap and a per-label table.

    python -m src.score submissions/submission.csv /tmp/fat-real.solution.csv

The answers file is fname plus one 0/1 column per label, as the kit's answer files and Kaggle's
solution files are; a `Usage` column (Kaggle's Public/Private split) is not a label: with it,
the Public and Private parts are scored separately as well. When the answers hold both single-label
and multi-label clips (the developers' real test set mixes two clips), each kind is scored too.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from ..kit import tables
from ..kit.errors import KitError, cli, list_some
from ..kit.metrics import per_class_lwlrap

USAGE = "Usage"


def read(path: str, what: str) -> pd.DataFrame:
    df = tables.read_csv(path, ["fname"], what, id_column="fname").set_index("fname")
    labels = [c for c in df.columns if c != USAGE]
    try:
        df[labels] = df[labels].astype(float)
    except ValueError as e:
        raise KitError(f"{path}: label columns must be numbers ({e})") from None
    return df


def score_table(sub: pd.DataFrame, sol: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    labels = [c for c in sol.columns if c != USAGE]
    missing = [l for l in labels if l not in sub.columns]
    if missing:
        raise KitError(f"submission lacks label column(s) {list_some(missing, 10)}")
    absent = sol.index.difference(sub.index)
    if len(absent):
        raise KitError(f"submission lacks {len(absent)} clip(s) of the answers, e.g. {list_some(list(absent), 5)}")
    scores = sub.loc[sol.index, labels].to_numpy(dtype=float)
    if not np.isfinite(scores).all():
        raise KitError(f"submission has {int((~np.isfinite(scores)).sum())} missing or non-finite scores")
    truth = sol[labels].to_numpy()
    per_class, weights = per_class_lwlrap(truth, scores)
    table = pd.DataFrame({"label": labels, "positives": truth.sum(axis=0).astype(int),
                          "lwlrap": per_class}).sort_values(["lwlrap", "label"]).reset_index(drop=True)
    return float((per_class * weights).sum()), table


def by_label_count(truth: pd.DataFrame) -> dict[str, pd.Index]:
    """The clips with one label ("single-label") and with several ("multi-label"), when both
    kinds are there: where validation (mostly singles) and a test with mixtures part ways."""
    n = truth.sum(axis=1)
    parts = {"single-label": truth.index[n == 1], "multi-label": truth.index[n > 1]}
    return parts if all(len(p) for p in parts.values()) else {}


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.score", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("submission")
    ap.add_argument("solution")
    args = ap.parse_args(argv)
    sub, sol = read(args.submission, "submission"), read(args.solution, "answers")
    overall, table = score_table(sub, sol)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    labels = [c for c in sol.columns if c != USAGE]
    prior = pd.DataFrame([sol[labels].mean(axis=0)] * len(sol), index=sol.index)      # one constant ranking
    print(f"(for scale: scoring every clip with the answers' label frequencies gives "
          f"{score_table(prior, sol)[0]:.4f})")
    if USAGE in sol.columns:
        for usage, part in sol.groupby(USAGE):
            print(f"{usage}: lwlrap {score_table(sub, part)[0]:.4f} over {len(part)} clips")
    for kind, part in by_label_count(sol[labels]).items():
        print(f"{kind}: lwlrap {score_table(sub, sol.loc[part])[0]:.4f} over {len(part)} clips")
    print(f"lwlrap {overall:.4f} over {len(sol)} clips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
