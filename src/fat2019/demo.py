"""A small, deterministic FAT2019-layout dataset of synthetic sounds, for trying the kit with no data.

Real FAT2019 label names, sounds that a CNN can tell apart, some two-label mixtures, a noisy
subset with wrong labels, clips from 0.4 s to 4 s. Written once (a few seconds) into a folder
that git ignores, with the test answers beside it in `<folder>.solution.csv`, as the kit's real
benchmark layouts have them.
"""
from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pandas as pd
import soundfile as sf

from ..kit import atomic

SR = 44100
VERSION = "1"   # bump when the generator changes, so old demo folders are rebuilt


def _env(n: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / SR
    return np.minimum(t / max(attack, 1e-4), 1.0) * np.exp(-t / decay)


def _events(rng, n: int, rate: float, make) -> np.ndarray:
    """Repeated short events at random times (about `rate` per second)."""
    y = np.zeros(n)
    count = max(1, rng.poisson(rate * n / SR))
    for start in rng.integers(0, max(1, n - SR // 10), size=count):
        e = make()
        end = min(n, start + e.size)
        y[start:end] += e[: end - start]
    return y


def bass_drum(rng, n):
    def hit():
        m = int(0.35 * SR)
        t = np.arange(m) / SR
        f = rng.uniform(50, 70) * (1 + 2 * np.exp(-t / 0.03))
        return np.sin(2 * np.pi * np.cumsum(f) / SR) * _env(m, 0.002, 0.12)
    return _events(rng, n, 2.0, hit)


def hi_hat(rng, n):
    def hit():
        m = int(0.08 * SR)
        noise = np.diff(rng.standard_normal(m + 1))          # differenced noise: bright
        return 0.5 * noise * _env(m, 0.001, rng.uniform(0.01, 0.03))
    return _events(rng, n, 6.0, hit)


def church_bell(rng, n):
    t = np.arange(n) / SR
    f0 = rng.uniform(300, 500)
    ratios = [0.5, 1.0, 1.19, 1.5, 2.0, 2.51]
    y = sum(np.sin(2 * np.pi * f0 * r * t + rng.uniform(0, 6)) / (i + 1) for i, r in enumerate(ratios))
    return y * _env(n, 0.005, rng.uniform(0.8, 1.5))


def buzz(rng, n):
    t = np.arange(n) / SR
    f0 = rng.uniform(110, 180)
    saw = 2 * ((f0 * t) % 1.0) - 1
    return 0.6 * saw * (0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(4, 8) * t))


def cricket(rng, n):
    t = np.arange(n) / SR
    carrier = np.sin(2 * np.pi * rng.uniform(4200, 5200) * t)
    gate = (np.sin(2 * np.pi * rng.uniform(25, 35) * t) > 0) * (np.sin(2 * np.pi * rng.uniform(2, 3) * t) > -0.2)
    return 0.7 * carrier * gate


def chirp_and_tweet(rng, n):
    def chirp():
        m = int(rng.uniform(0.05, 0.12) * SR)
        f = np.linspace(rng.uniform(1800, 2500), rng.uniform(3500, 4500), m)
        return np.sin(2 * np.pi * np.cumsum(f) / SR) * np.hanning(m)
    return _events(rng, n, 5.0, chirp)


def tick_tock(rng, n):
    y = np.zeros(n)
    period = int(rng.uniform(0.25, 0.35) * SR)
    m = int(0.015 * SR)
    t = np.arange(m) / SR
    for k, start in enumerate(range(int(rng.integers(0, period)), n - m, period)):
        f = 1800 if k % 2 == 0 else 1200
        y[start:start + m] += np.sin(2 * np.pi * f * t) * _env(m, 0.0005, 0.004)
    return y


def mechanical_fan(rng, n):
    noise = rng.standard_normal(n)
    k = int(SR / rng.uniform(300, 500))
    low = np.convolve(noise, np.ones(k) / np.sqrt(k), mode="same")       # low-passed rumble
    t = np.arange(n) / SR
    return 0.5 * low + 0.2 * np.sin(2 * np.pi * rng.uniform(90, 120) * t)


GENERATORS = {
    "Bass_drum": bass_drum, "Hi-hat": hi_hat, "Church_bell": church_bell, "Buzz": buzz,
    "Cricket": cricket, "Chirp_and_tweet": chirp_and_tweet, "Tick-tock": tick_tock,
    "Mechanical_fan": mechanical_fan,
}
LABELS = sorted(GENERATORS)


def _clip(rng, labels: list[str]) -> np.ndarray:
    n = int(rng.uniform(0.4, 4.0) * SR)
    y = np.zeros(n)
    for lab in labels:
        s = GENERATORS[lab](rng, n)
        y += s / (np.abs(s).max() + 1e-9) * 10 ** (-rng.uniform(0, 6) / 20)
    y += rng.standard_normal(n) * 10 ** (-rng.uniform(35, 50) / 20)     # background hiss
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def _label_sets(rng, singles_per_label: int, mixtures: int) -> list[list[str]]:
    sets = [[lab] for lab in LABELS for _ in range(singles_per_label)]
    for _ in range(mixtures):
        sets.append(sorted(rng.choice(LABELS, size=2, replace=False).tolist()))
    return sets


def generate(out: str, seed: int = 0) -> None:
    """Write the demo layout to `out` and its answers to `out.solution.csv`.

    Built in a private temporary folder and renamed into place, so two first runs at once do not
    delete each other's files: the second one to finish finds the demo there and drops its copy.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    atomic.clean_stale(os.path.dirname(out))
    tmp = atomic.temp_name(out)
    os.remove(tmp)
    for sub in ("train_curated", "train_noisy", "test"):
        os.makedirs(os.path.join(tmp, sub))

    def write(sub: str, i: int, labels: list[str]) -> str:
        fname = hashlib.sha1(f"{seed}:{sub}:{i}".encode()).hexdigest()[:8] + ".wav"
        sf.write(os.path.join(tmp, sub, fname), _clip(rng, labels), SR, subtype="PCM_16")
        return fname

    curated = [(write("train_curated", i, s), s) for i, s in enumerate(_label_sets(rng, 14, 16))]
    noisy = []
    for i, true in enumerate(_label_sets(rng, 6, 16)):
        u = rng.random()
        if u < 0.3:            # web labels: some plainly wrong, some with an extra wrong label
            given = [str(rng.choice([l for l in LABELS if l not in true]))]
        elif u < 0.4:
            given = sorted(set(true) | {str(rng.choice([l for l in LABELS if l not in true]))})
        else:
            given = true
        noisy.append((write("train_noisy", i, true), given))
    test = [(write("test", i, s), s) for i, s in enumerate(_label_sets(rng, 4, 16))]

    def rows(items):
        return pd.DataFrame({"fname": [f for f, _ in items], "labels": [",".join(s) for _, s in items]})

    rows(curated).to_csv(os.path.join(tmp, "train_curated.csv"), index=False)
    rows(noisy).to_csv(os.path.join(tmp, "train_noisy.csv"), index=False)
    fnames = sorted(f for f, _ in test)
    sub = pd.DataFrame(0.0, index=fnames, columns=LABELS).rename_axis("fname").reset_index()
    sub.to_csv(os.path.join(tmp, "sample_submission.csv"), index=False)
    answers = dict(test)
    sol = pd.DataFrame([[int(l in answers[f]) for l in LABELS] for f in fnames], columns=LABELS)
    sol.insert(0, "fname", fnames)
    with open(os.path.join(tmp, "VERSION"), "w") as f:
        f.write(VERSION)
    atomic.write_csv(out.rstrip("/") + ".solution.csv", sol)
    if _version(out) == VERSION:            # another process finished first: keep its copy
        shutil.rmtree(tmp)
        return
    atomic.replace_dir(tmp, out)


def _version(out: str) -> str | None:
    try:
        with open(os.path.join(out, "VERSION")) as f:
            return f.read().strip()
    except OSError:
        return None


def ensure(out: str = os.path.join("data", "demo-fat2019")) -> str:
    """The demo folder, generated on first use (or when the generator changed)."""
    out = os.path.abspath(out)
    if _version(out) == VERSION:
        return out
    print(f"data: generating the built-in demo dataset in {out} ...", flush=True)
    generate(out)
    return out
