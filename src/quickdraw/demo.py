"""The built-in Quick, Draw! demo dataset: synthetic doodles in Kaggle's exact layout, for trying
the kit with no data. 8 categories, 120 training and 25 test doodles each, deterministic; the
answers are written beside it in <folder>.solution.csv, as the real benchmark layouts have them.
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd

from ..kit import atomic
from .config import DEMO_DIR, SAMPLE_CSV, TEST_CSV, TRAIN_DIR, word_to_token
from .strokes import fit_box


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
    atomic.clean_stale(parent)
    tmp = atomic.temp_name(demo_dir)      # private: two first runs at once never share a folder
    os.remove(tmp)
    os.makedirs(tmp)
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
        if os.path.isfile(os.path.join(demo_dir, SAMPLE_CSV)):
            return demo_dir               # another process finished first: keep its copy
        atomic.replace_dir(tmp, demo_dir)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
    print(f"demo: wrote {demo_dir} ({n_words} categories, {n_words * DEMO_TRAIN_PER_CLASS} training "
          f"and {n_words * DEMO_TEST_PER_CLASS} test doodles; answers in {solution})", flush=True)
    return demo_dir
