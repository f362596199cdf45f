"""Predict the test drawings with every trained fold (and model) and write the submission.

    python -m src.quickdraw.predict                            # demo data, every model found
    python -m src.quickdraw.predict --data-dir /tmp/qd-real --models cnn,inception

Averages the class probabilities of each model's folds, then of the models (words aligned by
name), and writes key_id,word (three distinct words, spaces as '_') in sample_submission order
to --out atomically. A test drawing that cannot be read still gets three words: the most frequent
training categories.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ..kit import configio  # noqa: E402
from ..kit.errors import KitError, cli, list_some  # noqa: E402
from .config import MODELS, QDConfig  # noqa: E402

DEFAULT_OUT = os.path.join("submissions", "quickdraw_submission.csv")


def find_runs(root: str, models: list[str] | None) -> dict[str, list[str]]:
    """{model: [fold dirs with a model.keras]} under root (= WORK_DIR/quickdraw-<dataset>)."""
    found = {}
    for m in (models or MODELS):
        dirs = sorted(d for d in glob.glob(os.path.join(root, m, "fold*"))
                      if os.path.isfile(os.path.join(d, "model.keras")))
        if dirs:
            found[m] = dirs
        elif models:
            raise KitError(f"--models {m}: no trained folds in {os.path.join(root, m)} "
                           f"(run python -m src.quickdraw.cv --model {m} first)")
    if not found:
        raise KitError(f"no trained Quick, Draw! models in {root} (run python -m src.quickdraw.cv first)")
    return found


def fallback_words(class_files: list[dict], k: int = 3) -> list[str]:
    """The k most frequent training categories over every run (ties: alphabetical)."""
    counts: dict[str, int] = {}
    for c in class_files:
        for w, n in zip(c["words"], c["train_counts"]):
            counts[w] = counts.get(w, 0) + int(n)
    return [w for w, _ in sorted(counts.items(), key=lambda t: (-t[1], t[0]))][:k]


def load_runs(runs: dict[str, list[str]]):
    """Load every fold's model: ([(model name, [(keras model, cfg, its words)])], all words, class files)."""
    import keras

    from . import models as _registered  # noqa: F401  (custom layers for load_model)
    from .train import read_classes

    loaded, words, class_files = [], [], []
    for m, dirs in runs.items():
        folds = []
        for d in dirs:
            cfg = configio.load(QDConfig, os.path.join(d, "config.json"))
            cls = read_classes(d)
            class_files.append(cls)
            words += [w for w in cls["words"] if w not in words]
            model = keras.models.load_model(os.path.join(d, "model.keras"), compile=False)
            folds.append((model, cfg, cls["words"]))
        loaded.append((m, folds))
        print(f"predict: {m}: {len(dirs)} folds ({', '.join(os.path.basename(d) for d in dirs)})", flush=True)
    return loaded, words, class_files


def ensemble_probs(loaded, ink, col: dict[str, int], batch_size: int):
    """Mean over each model's folds, then over models; folds' words aligned by name (`col`)."""
    import numpy as np

    from .train import predict_probs

    probs = np.zeros((len(ink), len(col)), np.float64)
    for _, folds in loaded:
        pm = np.zeros_like(probs)
        for model, cfg, wl in folds:
            pm[:, [col[w] for w in wl]] += predict_probs(model, ink, cfg, batch_size) / len(folds)
        probs += pm / len(loaded)
    return probs


@cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.quickdraw.predict", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data-dir", default=None, help="Kaggle layout folder (default: as cv finds it)")
    ap.add_argument("--work-dir", default="work", help="where cv wrote its runs (default: work)")
    ap.add_argument("--models", default=None, help=f"comma list of {','.join(MODELS)} (default: every one found)")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"submission file (default: {DEFAULT_OUT})")
    ap.add_argument("--chunk-size", type=int, default=20000, help="test rows read and predicted at a time")
    ap.add_argument("--batch-size", type=int, default=256, help="prediction batch size")
    args = ap.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    bad_models = [m for m in models or [] if m not in MODELS]
    if bad_models:
        raise KitError(f"--models: unknown {list_some(bad_models)}; choose from {', '.join(MODELS)}")

    import numpy as np
    import pandas as pd

    from ..kit import atomic
    from . import data
    from .strokes import summarize_bad

    t0 = time.time()
    data_dir, dataset = data.resolve(args.data_dir)
    test_csv = os.path.join(data_dir, data.TEST_CSV)
    if not os.path.isfile(test_csv):
        raise KitError(f"{test_csv}: no such file (the test drawings)")
    root = os.path.join(args.work_dir, f"quickdraw-{dataset}")
    runs = find_runs(root, models)

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")          # one predict function per fold: retracing is expected
    loaded, words, class_files = load_runs(runs)
    if len(words) < 3:
        raise KitError(f"the trained models know only {len(words)} categories; three distinct words need 3")
    col = {w: i for i, w in enumerate(words)}
    fallback = fallback_words(class_files)
    tokens = np.asarray([data.word_to_token(w) for w in words], dtype=object)

    keys_all, rows_all, bad_all = [], [], {}
    from tqdm import tqdm

    bar = tqdm(desc="predicting", unit="drawing", disable=None, leave=False)
    for keys, ink, valid, bad in data.iter_test(data_dir, args.chunk_size):
        probs = ensemble_probs(loaded, ink, col, args.batch_size)
        top = np.argsort(-probs, axis=1, kind="stable")[:, :3]
        guesses = np.empty(len(keys), dtype=object)
        guesses[valid] = [" ".join(t) for t in tokens[top]]
        guesses[~valid] = " ".join(data.word_to_token(w) for w in fallback)
        keys_all.append(keys)
        rows_all.append(guesses)
        off = sum(len(k) for k in keys_all[:-1])
        bad_all.update({off + i: r for i, r in bad.items()})
        bar.update(len(keys))
    bar.close()
    keys = np.concatenate(keys_all) if keys_all else np.zeros(0, object)
    guesses = np.concatenate(rows_all) if rows_all else np.zeros(0, object)
    if bad_all:
        print(summarize_bad(bad_all, keys, "test rows") + "; they get the most frequent training "
              f"categories: {' '.join(fallback)}", file=sys.stderr, flush=True)
    sub = pd.DataFrame({"key_id": keys, "word": guesses})
    sample = os.path.join(data_dir, data.SAMPLE_CSV)
    if os.path.isfile(sample):
        order = pd.read_csv(sample, usecols=["key_id"], dtype={"key_id": str})["key_id"]
        missing = sorted(set(order) - set(keys))
        extra = sorted(set(keys) - set(order))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} key_ids only in the sample ({list_some(missing, 5)})")
            if extra:
                parts.append(f"{len(extra)} only in the test ({list_some(extra, 5)})")
            raise KitError(f"{sample} and {test_csv} disagree: " + "; ".join(parts))
        sub = sub.drop_duplicates("key_id").set_index("key_id").loc[order].reset_index()
    else:
        print(f"warning: {sample} missing; rows in test_simplified.csv order", file=sys.stderr, flush=True)
    atomic.write_csv(args.out, sub)
    print(f"wrote {args.out}: {len(sub)} drawings, models {', '.join(m for m, _ in loaded)} "
          f"({time.time() - t0:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
