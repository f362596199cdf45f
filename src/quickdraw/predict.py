"""Predict the test drawings with every trusted fold of every run and write the submission.

    python -m src.quickdraw.predict                            # demo data, every finished run
    python -m src.quickdraw.predict --data-dir /tmp/qd-real --models cnn,inception

What counts, as for FAT2019: a fold is used only when finished (metrics.json) and trained on
categories the data has and on the folds file the data has now; anything else is named once and
left out (--strict: refused). Class probabilities are averaged over a run's folds, then blended
over runs (aligned by word; blend.json's weights when it names exactly these runs), and
key_id,word (three distinct words, spaces as '_') is written in sample_submission order to --out
atomically. The out-of-fold MAP@3 of each run and of the blend is printed. A test drawing that
cannot be read still gets three words: the most frequent training categories.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from ..kit import blend, configio, foldfile, runs, tables
from ..kit.datadir import file_sha1
from ..kit.distribute import quiet_tensorflow
from ..kit.errors import KitError, cli, list_some, warn
from ..kit.metrics import map_at_k_scores
from .config import QDConfig

DEFAULT_OUT = os.path.join("submissions", "quickdraw_submission.csv")
TRAIN_HINT = "python -m src.quickdraw.cv --fold 0"


def find_runs(work_dir: str, dataset: str, categories: list[str], names: list[str] | None, strict: bool) -> dict:
    path = foldfile.folds_path(dataset)
    if not os.path.exists(path):
        raise KitError(f"{path} is missing: no run can be matched to the data's folds; train with {TRAIN_HINT}")
    return runs.find_runs(os.path.join(work_dir, dataset), categories, file_sha1(path), names, strict,
                          subset_ok=True, train_hint=TRAIN_HINT)


def ensemble_words(found: dict, categories: list[str]) -> list[str]:
    """Every word some run knows, in the data's order."""
    known = {w for folds in found.values() for f in folds for w in f.labels}
    return [w for w in categories if w in known]


def fallback_words(found: dict, k: int = 3) -> list[str]:
    """The k most frequent training categories over every fold (ties: alphabetical)."""
    freq: dict[str, float] = {}
    for folds in found.values():
        for f in folds:
            for w, p in zip(f.labels, f.config.get("label_prior", [])):
                freq[w] = freq.get(w, 0.0) + float(p)
    return [w for w, _ in sorted(freq.items(), key=lambda t: (-t[1], t[0]))][:k]


def fold_config(fold: runs.Fold) -> QDConfig:
    return configio.from_dict(QDConfig, fold.config)


def load_model(fold: runs.Fold):
    """(the fold's network rebuilt from its config.json with its best weights, its config)."""
    from . import models

    cfg = fold_config(fold)
    model = models.build_model(cfg, len(fold.labels))
    runs.load_weights_checked(model, fold.weights)
    return model, cfg


def reference_input(config: dict) -> np.ndarray:
    """Fixed inputs whose outputs a shipped fold must reproduce after loading (see src.kernels)."""
    cfg = configio.from_dict(QDConfig, config)
    rng = np.random.default_rng(0)
    if cfg.is_sequence:
        x = np.zeros((4, cfg.max_len, 5 if cfg.stroke5 else 3), np.float32)
        x[:, :min(20, cfg.max_len)] = rng.normal(0, 0.1, (4, min(20, cfg.max_len), x.shape[2]))
        return x
    return rng.integers(0, 256, (4, cfg.raster_size, cfg.raster_size, 1)).astype(np.uint8)


def predict_test(found: dict, data_dir: str, words: list[str], weights: dict | None, fold_how: str, out: str,
                 chunk_size: int = 20000, batch_size: int = 256, load=load_model) -> pd.DataFrame:
    """Blend every fold's probabilities over test_simplified.csv chunk by chunk, three words per
    drawing (unreadable drawings: the most frequent training categories), rows in
    sample_submission's order, written to `out` atomically. `load(fold)` -> (model, config)."""
    from ..kit import atomic
    from . import data
    from .strokes import summarize_bad
    from .infer import predict_probs

    test_csv = os.path.join(data_dir, data.TEST_CSV)
    fallback = fallback_words(found)
    tokens = np.asarray([data.word_to_token(w) for w in words], dtype=object)
    quiet_tensorflow()
    models: dict[str, tuple] = {}

    def predict(fold: runs.Fold) -> pd.DataFrame:
        if fold.path + fold.weights not in models:
            models[fold.path + fold.weights] = load(fold)
        model, cfg = models[fold.path + fold.weights]
        return pd.DataFrame(predict_probs(model, ink, cfg, batch_size), columns=fold.labels)

    from tqdm import tqdm

    keys_all, rows_all, bad_all = [], [], {}
    bar = tqdm(desc="predicting", unit="drawing", disable=None, leave=False)
    for keys, ink, valid, bad in data.iter_test(data_dir, chunk_size):
        probs = runs.ensemble(found, predict, words, weights, fold_how)
        top = np.argsort(-probs, axis=1, kind="stable")[:, :3]
        guesses = np.empty(len(keys), dtype=object)
        guesses[valid] = [" ".join(t) for t in tokens[top]]
        guesses[~valid] = " ".join(data.word_to_token(w) for w in fallback)
        off = sum(len(k) for k in keys_all)
        bad_all.update({off + i: r for i, r in bad.items()})
        keys_all.append(keys)
        rows_all.append(guesses)
        bar.update(len(keys))
    bar.close()
    keys = np.concatenate(keys_all).astype(str) if keys_all else np.zeros(0, str)
    guesses = np.concatenate(rows_all) if rows_all else np.zeros(0, object)
    tables.check_unique(keys.tolist(), test_csv, "key_id")
    if bad_all:
        warn(summarize_bad(bad_all, keys, "test rows") + "; they get the most frequent training "
             f"categories: {' '.join(fallback)}")
    sub = pd.DataFrame({"key_id": keys, "word": guesses})
    sample = os.path.join(data_dir, data.SAMPLE_CSV)
    if os.path.isfile(sample):
        order = tables.read_csv(sample, ["key_id"], "the test key_ids", id_column="key_id")["key_id"]
        missing = sorted(set(order) - set(keys))
        extra = sorted(set(keys) - set(order))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} key_ids only in the sample ({list_some(missing, 5)})")
            if extra:
                parts.append(f"{len(extra)} only in the test ({list_some(extra, 5)})")
            raise KitError(f"{sample} and {test_csv} disagree: " + "; ".join(parts))
        sub = sub.set_index("key_id").loc[order].reset_index()
    else:
        warn(f"{sample} missing; rows in test_simplified.csv order")
    atomic.write_csv(out, sub)
    return sub


def oof_report(found: dict, dataset: str, words: list[str], weights: dict | None) -> str:
    truth = pd.read_csv(foldfile.folds_path(dataset), dtype=str, keep_default_na=False).set_index("key_id")["word"]
    col = {w: i for i, w in enumerate(words)}

    def onehot(ids: list[str]) -> np.ndarray:
        y = np.full((len(ids), len(words)), np.nan)
        for r, i in enumerate(ids):
            if i in truth.index and truth[i] in col:
                y[r] = 0.0
                y[r, col[truth[i]]] = 1.0
        return y

    scores, ids, _, _ = runs.oof_scores(found, words, onehot, map_at_k_scores, weights)
    return runs.report_line(scores, len(ids), "map@3", "drawings")


@cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.quickdraw.predict", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data-dir", default=None, help="Kaggle layout folder (default: as cv finds it)")
    ap.add_argument("--work-dir", default="work", help="where cv wrote its runs (default: work)")
    ap.add_argument("--models", default=None, help="comma list of run names (default: every finished run)")
    ap.add_argument("--out", default=DEFAULT_OUT, help=f"submission file (default: {DEFAULT_OUT})")
    ap.add_argument("--fold-mean", choices=["mean", "geo"], default=None,
                    help="average of a run's folds (default: blend.json's, else mean)")
    ap.add_argument("--no-blend", action="store_true", help="ignore blend.json: equal weights")
    ap.add_argument("--strict", action="store_true", help="refuse, instead of leaving out, unfinished or foreign folds")
    ap.add_argument("--chunk-size", type=int, default=20000, help="test rows read and predicted at a time")
    ap.add_argument("--batch-size", type=int, default=256, help="prediction batch size")
    args = ap.parse_args(argv)
    from . import data

    t0 = time.time()
    data_dir, dataset = data.resolve(args.data_dir)
    test_csv = os.path.join(data_dir, data.TEST_CSV)
    if not os.path.isfile(test_csv):
        raise KitError(f"{test_csv}: no such file (the test drawings)")
    categories = data.list_categories(data_dir)
    found = find_runs(args.work_dir, dataset, categories, args.models.split(",") if args.models else None,
                      args.strict)
    weights, fold_how = (None, "mean") if args.no_blend else blend.load(os.path.join(args.work_dir, dataset),
                                                                        list(found))
    fold_how = args.fold_mean or fold_how
    words = ensemble_words(found, categories)
    if len(words) < 3:
        raise KitError(f"the trained runs know only {len(words)} categories; three distinct words need 3")
    for name, folds in found.items():
        print(f"predict: {name}: {len(folds)} fold(s) ({', '.join(str(f.fold) for f in folds)})"
              f"{f', weight {weights[name]:.2f}' if weights else ''}", flush=True)
    print(f"predict: {oof_report(found, dataset, words, weights)}", flush=True)
    sub = predict_test(found, data_dir, words, weights, fold_how, args.out, args.chunk_size, args.batch_size)
    print(f"wrote {args.out}: {len(sub)} drawings, runs {', '.join(found)} ({time.time() - t0:.0f}s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
