#!/usr/bin/env python3
"""Drawings per second of the Quick, Draw! conversions, single process, on real drawings.

    python benchmarks/quickdraw_speed.py [--drawings DIR] [--repeat 3] [--max-len 100] [--size 64]

Reads every <word>.csv of DIR (default: the 8,592 real drawings in
/work/shared/data/quickdraw/train_simplified) into memory first (CSV reading is not timed),
then times, best of --repeat, each step over all drawings:
  parse      JSON strings -> validated ragged points (json + checks + numpy)
  stroke3    ragged points -> (N, max_len, 3) stroke-3 array
  parse+stroke3  the two together: CSV `drawing` strings -> model input
  stroke5    ragged points -> (N, max_len, 5)
  raster-numpy / raster-pil   ragged points -> (N, size, size) uint8, line width 2
  augment    one random distortion of every drawing (numpy, vectorised)
in batches of --batch drawings, with numpy's threads pinned to one (OMP/OPENBLAS/MKL = 1).
"""
import os

for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(v, "1")

import argparse  # noqa: E402
import glob  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from src.quickdraw import strokes  # noqa: E402

DEFAULT = "/work/shared/data/quickdraw/train_simplified"


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--drawings", default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--max-len", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args(argv)
    files = sorted(glob.glob(os.path.join(args.drawings, "*.csv")))
    if not files:
        print(f"error: no <word>.csv in {args.drawings}", file=sys.stderr)
        return 2
    s = np.concatenate([pd.read_csv(f, usecols=["drawing"])["drawing"].to_numpy() for f in files])
    n = len(s)
    ink, valid, bad = strokes.parse_drawings(s)
    chunks = [s[i:i + args.batch] for i in range(0, n, args.batch)]
    idx = [np.arange(i, min(i + args.batch, n)) for i in range(0, n, args.batch)]
    inks = [ink.take(i) for i in idx]
    print(f"{n} real drawings from {len(files)} files in {args.drawings} ({int(valid.sum())} valid), "
          f"{ink.n_points.mean():.1f} points and {ink.n_strokes.mean():.1f} strokes per drawing; "
          f"batches of {args.batch}, best of {args.repeat}, one process, numpy threads 1")
    rng = np.random.default_rng(0)
    steps = {
        "parse": lambda: [strokes.parse_drawings(c) for c in chunks],
        "stroke3": lambda: [strokes.to_stroke3(k, args.max_len) for k in inks],
        "parse+stroke3": lambda: [strokes.to_stroke3(strokes.parse_drawings(c)[0], args.max_len) for c in chunks],
        "stroke5": lambda: [strokes.to_stroke3(k, args.max_len, stroke5=True) for k in inks],
        f"raster-numpy {args.size}px": lambda: [strokes.rasterize(k, args.size, 2) for k in inks],
        f"raster-numpy {args.size}px time-coloured":
            lambda: [strokes.rasterize(k, args.size, 2, time_colour=True) for k in inks],
        f"raster-pil {args.size}px": lambda: [strokes.rasterize_pil(k, args.size, 2) for k in inks],
        "augment": lambda: [strokes.augment(k, rng) for k in inks],
    }
    for name, fn in steps.items():
        t = best_of(fn, args.repeat)
        print(f"{name:32s} {n / t:>10,.0f} drawings/s  ({t * 1e3:.0f} ms for {n})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
