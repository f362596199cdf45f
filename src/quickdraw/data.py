"""Quick, Draw! data in Kaggle's layout: streamed reading, class choice, folds, the demo dataset.

Layout: train_simplified/<word>.csv (countrycode,drawing,key_id,recognized,timestamp,word),
test_simplified.csv (key_id,countrycode,drawing), sample_submission.csv (key_id,word).
The real files are ~23 GB, so CSVs are read in chunks and each category stops at --per-class
valid drawings: memory is bounded by the cap, not by the file sizes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from ..kit import foldfile, tables
from ..kit.datadir import resolve_data_dir
from ..kit.errors import KitError, list_some, warn
from ..kit.progress import progress
from .config import COMPETITION, DEMO_DIR, SAMPLE_CSV, TEST_CSV, TRAIN_DIR, token_to_word, word_to_token  # noqa: F401
from .demo import make_demo
from .strokes import Ink, parse_drawings, summarize_bad

# ---------------------------------------------------------------- locating data

REBUILD = "python -m src.quickdraw.folds"


def identity(data_dir: str) -> list[bytes]:
    """What defines a Quick Draw dataset: its category files' names and sizes (the real ones
    are 23 GB: hashing their contents would cost minutes on every run)."""
    tdir = os.path.join(data_dir, TRAIN_DIR)
    if not os.path.isdir(tdir):
        return [b""]
    return [f"{f}:{os.path.getsize(os.path.join(tdir, f))}".encode() for f in sorted(os.listdir(tdir))
            if f.endswith(".csv")]


def resolve(data_dir: str | None) -> tuple[str, str]:
    """(data folder, dataset name): --data-dir, Kaggle input, ./data/<competition>, else the demo."""
    return resolve_data_dir(data_dir, COMPETITION, make_demo, DEMO_DIR, "Quick, Draw!", identity)


@dataclass
class QDData:
    """A Quick Draw data folder as the kit's generic path sees it (kit.competition.Data)."""
    root: str
    name: str                      # dataset name: folds/, work/ outputs
    labels: list[str]              # every category of train_simplified/, sorted

    def truth(self, ids: list[str]) -> np.ndarray:
        """One-hot words of training drawings by key_id, from the folds file (NaN rows for
        key_ids it lacks)."""
        path = foldfile.folds_path(self.name)
        word = pd.read_csv(path, dtype=str, keep_default_na=False).drop_duplicates("key_id").set_index("key_id")["word"]
        col = {w: i for i, w in enumerate(self.labels)}
        y = np.full((len(ids), len(self.labels)), np.nan)
        for r, i in enumerate(ids):
            if i in word.index and word[i] in col:
                y[r] = 0.0
                y[r, col[word[i]]] = 1.0
        return y

    def sample_ids(self) -> list[str]:
        """The test key_ids in sample_submission.csv's order (test_simplified.csv's when there is
        no sample file), each refused if repeated."""
        sample = os.path.join(self.root, SAMPLE_CSV)
        if os.path.isfile(sample):
            ids = tables.read_csv(sample, ["key_id"], "the test key_ids", id_column="key_id")["key_id"].astype(str)
            tables.check_unique(ids.tolist(), sample, "key_id")
            return ids.tolist()
        warn(f"{sample} missing; rows in {TEST_CSV} order")
        return test_key_ids(self.root)


def open_data(data_dir: str | None) -> QDData:
    root, name = resolve(data_dir)
    return QDData(root, name, list_categories(root))


def test_key_ids(data_dir: str, chunk_size: int = 200000) -> list[str]:
    """test_simplified.csv's key_ids (the key_id column only: cheap), refused if repeated."""
    path = os.path.join(data_dir, TEST_CSV)
    if not os.path.isfile(path):
        raise KitError(f"{path}: no such file (the test drawings)")
    keys: list[str] = []
    try:
        for df in pd.read_csv(path, usecols=["key_id"], dtype={"key_id": str}, chunksize=chunk_size,
                              keep_default_na=False):
            keys += df["key_id"].tolist()
    except (ValueError, pd.errors.ParserError) as e:
        raise KitError(f"{path}: cannot read its key_id column ({str(e).strip()[:160]})") from None
    tables.check_unique(keys, path, "key_id")
    return keys


def list_categories(data_dir: str) -> list[str]:
    tdir = os.path.join(data_dir, TRAIN_DIR)
    if not os.path.isdir(tdir):
        raise KitError(f"{tdir}: no such folder (expected Kaggle's train_simplified/<word>.csv)")
    words = sorted(f[:-4] for f in os.listdir(tdir) if f.endswith(".csv"))
    if not words:
        raise KitError(f"{tdir}: no <word>.csv files")
    return words


def choose_classes(words: list[str], n: int, seed: int) -> list[str]:
    """n categories, a fixed choice for a given seed; a smaller n keeps a subset of a larger n's."""
    if not n or n == len(words):
        return list(words)
    if n < 0 or n > len(words):
        raise KitError(f"--classes {n}: the data has {len(words)} categories")
    perm = np.random.RandomState(seed).permutation(len(words))
    return sorted(words[i] for i in perm[:n])


# ---------------------------------------------------------------- reading

@dataclass
class TrainSet:
    ink: Ink
    y: np.ndarray            # int32 index into words
    key_ids: np.ndarray      # str
    words: list[str]

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.y, minlength=len(self.words))

    def take(self, idx) -> "TrainSet":
        idx = np.asarray(idx, dtype=np.int64)
        return TrainSet(self.ink.take(idx), self.y[idx], self.key_ids[idx], self.words)


def _csv_chunks(path: str, chunk_size: int, what: str) -> Iterator[pd.DataFrame]:
    if not os.path.isfile(path):
        raise KitError(f"{path}: no such file ({what})")
    try:
        yield from pd.read_csv(path, usecols=["key_id", "drawing"], dtype={"key_id": str, "drawing": str},
                               chunksize=chunk_size, keep_default_na=False)
    except pd.errors.ParserError as e:
        raise KitError(f"{path}: malformed CSV ({str(e).strip()})") from None
    except ValueError as e:          # missing columns
        if "Usecols" in str(e) or "columns" in str(e):
            raise KitError(f"{path}: needs columns key_id and drawing ({e})") from None
        raise
    except pd.errors.EmptyDataError:
        raise KitError(f"{path}: empty file ({what})") from None


def read_category(path: str, cap: int, chunk_size: int) -> tuple[Ink, np.ndarray, dict[str, str]]:
    """Up to `cap` valid drawings of one category file: (ink, key_ids, {bad key_id: reason})."""
    parts, keys, bad = [], [], {}
    have = 0
    for df in _csv_chunks(path, min(chunk_size, max(cap, 1)) if cap else chunk_size, "training drawings"):
        ink, valid, b = parse_drawings(df["drawing"].to_numpy())
        k = df["key_id"].to_numpy()
        for i, r in b.items():
            bad[k[i]] = r
        kv = k[valid]
        if cap and have + len(kv) > cap:
            ink, kv = ink.take(np.arange(cap - have)), kv[:cap - have]
        parts.append(ink)
        keys.append(kv)
        have += len(kv)
        if cap and have >= cap:
            break
    return Ink.concat(parts), (np.concatenate(keys) if keys else np.zeros(0, object)), bad


def load_train(data_dir: str, classes: int = 0, per_class: int = 0, seed: int = 0,
               chunk_size: int = 20000, words: list[str] | None = None) -> TrainSet:
    """Training drawings of the chosen categories (label = file name), bad ones skipped and counted."""
    all_words = list_categories(data_dir)
    if words is None:
        words = choose_classes(all_words, classes, seed)
    else:
        missing = [w for w in words if w not in all_words]
        if missing:
            raise KitError(f"{os.path.join(data_dir, TRAIN_DIR)}: no file for {list_some(missing)}")
    if len(words) < 3:
        raise KitError(f"need at least 3 categories for three guesses per drawing, got {len(words)}")

    inks, ys, keys, bad = [], [], [], {}
    for j, w in enumerate(progress(words, desc="reading train_simplified", unit="category")):
        ink, k, b = read_category(os.path.join(data_dir, TRAIN_DIR, w + ".csv"), per_class, chunk_size)
        inks.append(ink)
        keys.append(k)
        ys.append(np.full(len(k), j, np.int32))
        bad.update({key: f"{r}" for key, r in b.items()})
    if bad:
        bk = list(bad)
        warn(summarize_bad({i: bad[key] for i, key in enumerate(bk)}, bk, "training rows skipped"))
    ts = TrainSet(Ink.concat(inks), np.concatenate(ys), np.concatenate(keys).astype(object), list(words))
    tables.check_unique(ts.key_ids.astype(str).tolist(), os.path.join(data_dir, TRAIN_DIR), "key_id")
    empty = [w for w, c in zip(words, ts.counts) if c == 0]
    if empty:
        raise KitError(f"no valid training drawings for {list_some(empty)}")
    print(f"train: {len(ts.y)} drawings, {len(words)} categories "
          f"({ts.counts.min()}-{ts.counts.max()} per category){f', {len(bad)} skipped' if bad else ''}",
          flush=True)
    return ts


def iter_test(data_dir: str, chunk_size: int = 20000) -> Iterator[tuple[np.ndarray, Ink, np.ndarray, dict]]:
    """(key_ids, ink of the valid drawings, valid mask, {row: reason}) per chunk of test_simplified.csv."""
    path = os.path.join(data_dir, TEST_CSV)
    if not os.path.isfile(path):
        raise KitError(f"{path}: no such file (the test drawings)")
    for df in _csv_chunks(path, chunk_size, "test drawings"):
        ink, valid, bad = parse_drawings(df["drawing"].to_numpy())
        yield df["key_id"].to_numpy().astype(object), ink, valid, bad


# ---------------------------------------------------------------- folds

def assign_folds(y: np.ndarray, n_folds: int, seed: int, start: int = 0) -> np.ndarray:
    """Stratified folds: each category's drawings shuffled (seeded) and dealt round-robin, each
    category starting where the previous one stopped, so folds stay balanced overall too."""
    folds = np.zeros(len(y), np.int64)
    rng = np.random.RandomState(seed)
    pos = start
    for c in np.unique(y):
        idx = np.nonzero(y == c)[0]
        idx = idx[rng.permutation(len(idx))]
        folds[idx] = (pos + np.arange(len(idx))) % n_folds
        pos += len(idx)
    return folds


def fold_table(ts: TrainSet, n_folds: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame({"key_id": ts.key_ids.astype(str), "word": np.asarray(ts.words, dtype=object)[ts.y],
                         "fold": assign_folds(ts.y, n_folds, seed)})


def load_folds(dataset: str, ts: TrainSet, n_folds: int, seed: int) -> tuple[np.ndarray, str]:
    """(fold of each drawing of `ts`, the folds file's sha1) from folds/<dataset>.csv, made over
    `ts` when missing. A file made over more drawings serves any subset (fewer categories, a
    lower --per-class); one that lacks drawings now loaded is refused (rebuild it)."""
    fold_of, sha1 = foldfile.ensure(dataset, "key_id", ts.key_ids.astype(str).tolist(), n_folds,
                                    lambda: fold_table(ts, n_folds, seed), REBUILD)
    return fold_of.to_numpy(np.int64), sha1
