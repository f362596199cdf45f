"""Quick, Draw! data in Kaggle's layout: streamed reading, class choice, folds, the demo dataset.

Layout: train_simplified/<word>.csv (countrycode,drawing,key_id,recognized,timestamp,word),
test_simplified.csv (key_id,countrycode,drawing), sample_submission.csv (key_id,word).
The real files are ~23 GB, so CSVs are read in chunks and each category stops at --per-class
valid drawings: memory is bounded by the cap, not by the file sizes.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from ..kit import atomic
from ..kit.errors import KitError, list_some
from ..kit.datadir import resolve_data_dir
from .config import COMPETITION, DEMO_DIR
from .strokes import Ink, fit_box, parse_drawings, summarize_bad

TRAIN_DIR = "train_simplified"
TEST_CSV = "test_simplified.csv"
SAMPLE_CSV = "sample_submission.csv"


def word_to_token(word: str) -> str:
    """Submission spelling: spaces inside a word become underscores."""
    return word.replace(" ", "_")


def token_to_word(token: str) -> str:
    return token.replace("_", " ")


def warn(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- locating data

def resolve(data_dir: str | None) -> tuple[str, str]:
    """(data folder, dataset name): --data-dir, Kaggle input, ./data/<competition>, else the demo."""
    return resolve_data_dir(data_dir, COMPETITION, make_demo, DEMO_DIR, "Quick, Draw!")


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
    from tqdm import tqdm

    inks, ys, keys, bad = [], [], [], {}
    for j, w in enumerate(tqdm(words, desc="reading train_simplified", unit="category",
                               disable=None, leave=False)):
        ink, k, b = read_category(os.path.join(data_dir, TRAIN_DIR, w + ".csv"), per_class, chunk_size)
        inks.append(ink)
        keys.append(k)
        ys.append(np.full(len(k), j, np.int32))
        bad.update({key: f"{r}" for key, r in b.items()})
    if bad:
        bk = list(bad)
        msg = summarize_bad({i: bad[key] for i, key in enumerate(bk)}, bk, "training rows skipped")
        warn(msg)
    ts = TrainSet(Ink.concat(inks), np.concatenate(ys), np.concatenate(keys).astype(object), list(words))
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


def ensure_folds(path: str, ts: TrainSet, n_folds: int, seed: int) -> np.ndarray:
    """Fold of each training drawing from `path` (key_id,word,fold); the file is created when
    missing and extended (existing assignments kept) when new drawings appear."""
    keys = ts.key_ids.astype(str)
    words = np.asarray(ts.words, dtype=object)[ts.y]
    if os.path.isfile(path):
        old = pd.read_csv(path, dtype={"key_id": str, "word": str, "fold": int})
        k_file = int(old["fold"].max()) + 1 if len(old) else n_folds
        if k_file != n_folds:
            print(f"folds: {path} has {k_file} folds; using them (delete the file to re-split "
                  f"into --n-folds {n_folds})", flush=True)
        known = dict(zip(old["key_id"], old["fold"]))
        fold = np.array([known.get(k, -1) for k in keys], np.int64)
        new = fold < 0
        if new.any():
            fold[new] = assign_folds(ts.y[new], k_file, seed + len(old), start=len(old))
            add = pd.DataFrame({"key_id": keys[new], "word": words[new], "fold": fold[new]})
            atomic.write_csv(path, pd.concat([old, add], ignore_index=True))
            print(f"folds: added {int(new.sum())} drawings to {path}", flush=True)
        return fold
    fold = assign_folds(ts.y, n_folds, seed)
    atomic.write_csv(path, pd.DataFrame({"key_id": keys, "word": words, "fold": fold}))
    print(f"folds: wrote {path} ({n_folds} stratified folds over {len(keys)} drawings)", flush=True)
    return fold


# ---------------------------------------------------------------- demo dataset

DEMO_WORDS = ["circle", "hexagon", "hurricane", "square", "star", "stop sign", "triangle", "zigzag"]
DEMO_TRAIN_PER_CLASS = 120
DEMO_TEST_PER_CLASS = 25
COUNTRIES = ["US", "GB", "DE", "BR", "IN", "JP", "FR", "CA", "RU", "AU"]


def _polygon(k: int, rng, closed=True) -> np.ndarray:
    a0 = rng.uniform(0, 2 * np.pi)
    a = a0 + 2 * np.pi * np.arange(k + (1 if closed else 0)) / k
    return np.stack([np.cos(a), np.sin(a)], 1)


def _shape(word: str, rng) -> list[np.ndarray]:
    """Strokes of one jittered doodle in unit coordinates (about -1..1)."""
    if word == "circle":
        n = rng.integers(14, 26)
        a0 = rng.uniform(0, 2 * np.pi)
        a = a0 + np.linspace(0, 2 * np.pi * rng.uniform(0.95, 1.1), n)
        r = 1 + rng.normal(0, 0.03, n)
        return [np.stack([r * np.cos(a), r * np.sin(a)], 1)]
    if word in ("square", "triangle", "hexagon"):
        k = {"square": 4, "triangle": 3, "hexagon": 6}[word]
        pts = _polygon(k, rng)
        if word == "square":
            pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], float)
            pts = np.roll(pts[:-1], rng.integers(4), axis=0)
            pts = np.vstack([pts, pts[:1]])
        if rng.random() < 0.35:          # one stroke per side
            return [pts[i:i + 2] for i in range(k)]
        return [pts]
    if word == "star":
        k = 5
        a0 = rng.uniform(0, 2 * np.pi)
        if rng.random() < 0.5:           # pentagram, one stroke
            a = a0 + 2 * np.pi * (np.arange(k + 1) * 2 % k) / k
            return [np.stack([np.cos(a), np.sin(a)], 1)]
        a = a0 + np.pi * np.arange(2 * k + 1) / k
        r = np.where(np.arange(2 * k + 1) % 2 == 0, 1.0, rng.uniform(0.35, 0.5))
        return [np.stack([r * np.cos(a), r * np.sin(a)], 1)]
    if word == "zigzag":
        t = rng.integers(4, 9)
        x = np.linspace(-1, 1, t + 1)
        y = np.where(np.arange(t + 1) % 2 == 0, -0.3, 0.3) * rng.uniform(0.6, 1.6)
        return [np.stack([x, y], 1)]
    if word == "hurricane":
        turns = rng.uniform(1.5, 3.0)
        n = int(12 * turns) + rng.integers(0, 6)
        a = rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi * turns, n)
        r = np.linspace(0.05, 1, n)
        sign = rng.choice([-1, 1])
        return [np.stack([r * np.cos(a), sign * r * np.sin(a)], 1)]
    if word == "stop sign":
        octa = _polygon(8, rng) * 0.6
        octa[:, 1] -= 0.4
        strokes = [octa]
        post_x = rng.normal(0, 0.05)
        strokes.append(np.array([[post_x, 0.2], [post_x, 1.2]]))
        if rng.random() < 0.7:            # "STOP" as a scribble inside
            n = rng.integers(4, 8)
            x = np.linspace(-0.4, 0.4, n)
            y = -0.4 + rng.uniform(-0.12, 0.12, n)
            strokes.append(np.stack([x, y], 1))
        return strokes
    raise ValueError(word)


def demo_drawing(word: str, rng) -> list:
    """One synthetic doodle in Kaggle's simplified structure: ints 0-255, top-left aligned."""
    strokes = _shape(word, rng)
    th = np.deg2rad(rng.uniform(-20, 20))
    m = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) @ \
        np.diag(rng.uniform(0.75, 1.25, 2)) @ np.array([[1, rng.uniform(-0.2, 0.2)], [0, 1]])
    strokes = [s @ m.T + rng.normal(0, 0.025, s.shape) for s in strokes]
    lens = np.array([len(s) for s in strokes])
    xy = fit_box(np.concatenate(strokes).astype(np.float32) * 100, np.array([0, lens.sum()]))
    out, p = [], 0
    for n in lens:
        s = xy[p:p + n].astype(int)
        p += n
        keep = np.ones(len(s), bool)
        keep[1:] = (np.diff(s, axis=0) != 0).any(axis=1)
        s = s[keep]
        out.append([s[:, 0].tolist(), s[:, 1].tolist()])
    return out


def make_demo(demo_dir: str = DEMO_DIR, seed: int = 0) -> str:
    """Write the demo dataset (once): 8 categories, 120 training and 25 test doodles each, plus
    the answers in <demo_dir>.solution.csv. Deterministic; takes about a second."""
    demo_dir = os.path.abspath(demo_dir)
    solution = demo_dir.rstrip("/") + ".solution.csv"
    if os.path.isfile(os.path.join(demo_dir, SAMPLE_CSV)) and os.path.isfile(solution):
        return demo_dir
    rng = np.random.default_rng(seed)
    n_words = len(DEMO_WORDS)
    per = DEMO_TRAIN_PER_CLASS + DEMO_TEST_PER_CLASS
    keys = np.unique(rng.integers(4_000_000_000_000_000, 6_000_000_000_000_000, n_words * per * 2))
    keys = rng.permutation(keys)[:n_words * per].reshape(n_words, per)
    parent = os.path.dirname(demo_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix="." + os.path.basename(demo_dir) + ".")
    try:
        os.makedirs(os.path.join(tmp, TRAIN_DIR))
        test_rows = []
        for j, w in enumerate(DEMO_WORDS):
            rows = []
            for i in range(per):
                rows.append({"countrycode": COUNTRIES[rng.integers(len(COUNTRIES))],
                             "drawing": json.dumps(demo_drawing(w, rng)),
                             "key_id": int(keys[j, i]),
                             "recognized": bool(rng.random() < 0.9),
                             "timestamp": f"2017-03-{1 + i % 28:02d} 12:{i % 60:02d}:00.000000",
                             "word": w})
            train, test = rows[:DEMO_TRAIN_PER_CLASS], rows[DEMO_TRAIN_PER_CLASS:]
            pd.DataFrame(train).to_csv(os.path.join(tmp, TRAIN_DIR, w + ".csv"), index=False)
            test_rows += test
        order = rng.permutation(len(test_rows))
        test = pd.DataFrame([test_rows[i] for i in order])
        test[["key_id", "countrycode", "drawing"]].to_csv(os.path.join(tmp, TEST_CSV), index=False)
        guess = " ".join(word_to_token(w) for w in DEMO_WORDS[:3])
        pd.DataFrame({"key_id": test["key_id"], "word": guess}).to_csv(os.path.join(tmp, SAMPLE_CSV), index=False)
        atomic.write_csv(solution, pd.DataFrame({"key_id": test["key_id"],
                                                 "word": test["word"].map(word_to_token)}))
        if os.path.isdir(demo_dir):       # a half-made folder from an older version
            shutil.rmtree(demo_dir)
        os.replace(tmp, demo_dir)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
    print(f"demo: wrote {demo_dir} ({n_words} categories, {n_words * DEMO_TRAIN_PER_CLASS} training "
          f"and {n_words * DEMO_TEST_PER_CLASS} test doodles; answers in {solution})", flush=True)
    return demo_dir
