"""Score a FAT2019 submission against an answers file: overall lwlrap and a per-label table.

    python -m src.score submissions/submission.csv /tmp/fat-real.solution.csv
"""
from __future__ import annotations

import argparse
import os

import pandas as pd

from .kit.errors import KitError, cli
from .kit.metrics import per_class_lwlrap


def read(path: str) -> pd.DataFrame:
    if not os.path.exists(path):
        raise KitError(f"{path}: file not found")
    df = pd.read_csv(path)
    if "fname" not in df.columns:
        raise KitError(f"{path}: no 'fname' column")
    return df.set_index("fname")


def score_table(sub: pd.DataFrame, sol: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    labels = list(sol.columns)
    missing = [l for l in labels if l not in sub.columns]
    if missing:
        raise KitError(f"submission lacks label column(s) {', '.join(missing[:10])}")
    absent = sol.index.difference(sub.index)
    if len(absent):
        raise KitError(f"submission lacks {len(absent)} clip(s) of the answers, e.g. {', '.join(absent[:5])}")
    scores = sub.loc[sol.index, labels].to_numpy()
    per_class, weights = per_class_lwlrap(sol.to_numpy(), scores)
    table = pd.DataFrame({"label": labels, "positives": sol.sum(axis=0).astype(int).to_numpy(),
                          "lwlrap": per_class}).sort_values(["lwlrap", "label"]).reset_index(drop=True)
    return float((per_class * weights).sum()), table


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("submission")
    ap.add_argument("solution")
    args = ap.parse_args(argv)
    overall, table = score_table(read(args.submission), read(args.solution))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    sol = read(args.solution)
    prior = pd.DataFrame([sol.mean(axis=0)] * len(sol), index=sol.index)      # one constant ranking
    print(f"(for scale: scoring every clip with the answers' label frequencies gives "
          f"{score_table(prior, sol)[0]:.4f})")
    print(f"lwlrap {overall:.4f} over {len(sol)} clips")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
