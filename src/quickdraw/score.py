"""Score a Quick, Draw! submission against an answers file with MAP@3.

    python -m src.quickdraw.score submissions/quickdraw_submission.csv /tmp/qd-real.solution.csv

Both files are key_id,word; the submission's word holds up to three guesses separated by spaces,
the answers one word (spaces or '_' inside a word are treated alike). Prints `map@3 0.xxxx`
(and top-1 accuracy) over the answers' key_ids; each must be in the submission.
"""
from __future__ import annotations

import argparse
import os

import pandas as pd

from ..kit.errors import KitError, cli, list_some
from ..kit.metrics import map_at_k


def read_key_word(path: str, what: str):
    if not os.path.isfile(path):
        raise KitError(f"{path}: no such file ({what})")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as e:
        raise KitError(f"{path}: cannot read ({e})") from None
    if not {"key_id", "word"} <= set(df.columns):
        raise KitError(f"{path}: needs columns key_id,word (has {', '.join(df.columns)})")
    return df


def score(submission: str, solution: str) -> tuple[float, float, int]:
    """(MAP@3, top-1 accuracy, n) of a submission file against an answers file."""
    sub = read_key_word(submission, "submission")
    sol = read_key_word(solution, "answers")
    guesses = dict(zip(sub["key_id"], sub["word"]))
    missing = [k for k in sol["key_id"] if k not in guesses]
    if missing:
        raise KitError(f"{submission}: {len(missing)} answer key_ids have no row ({list_some(missing, 5)})")
    actual = [w.replace(" ", "_") for w in sol["word"]]
    pred = [guesses[k].split() for k in sol["key_id"]]
    m = map_at_k(actual, pred, k=3)
    top1 = sum(1 for a, p in zip(actual, pred) if p and p[0] == a) / max(len(actual), 1)
    return m, top1, len(actual)


@cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.quickdraw.score", description=__doc__.split("\n\n")[0])
    ap.add_argument("submission")
    ap.add_argument("solution")
    args = ap.parse_args(argv)
    m, top1, n = score(args.submission, args.solution)
    print(f"{n} drawings: top1 {top1:.4f}")
    print(f"map@3 {m:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
