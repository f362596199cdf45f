"""Shared fixtures: a tiny FAT2019 layout, configs small enough for a 2-core CPU, and one short
demo training per competition shared by the tests that need a trained run (learning, kernels)."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "kit-test-keras-home"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from src.fat2019 import demo as demo_data

TINY_LABELS = ["Bass_drum", "Buzz", "Cricket"]


def write_tiny_layout(root: str, per_label: int = 5, noisy_per_label: int = 2, test_clips: int = 4,
                      seed: int = 0) -> str:
    """A FAT2019-layout folder of short synthetic clips (0.4–0.8 s at 44.1 kHz; the tests' config
    reads them at 16 kHz, so resampling is exercised too)."""
    rng = np.random.default_rng(seed)
    for sub in ("train_curated", "train_noisy", "test"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)

    def clip(label):
        n = int(rng.uniform(0.4, 0.8) * demo_data.SR)
        y = demo_data.GENERATORS[label](rng, n)
        return y / (np.abs(y).max() + 1e-9) * 0.8

    def write(sub, i, label):
        fname = f"{sub[6:8] if sub.startswith('train') else 'te'}{i:06d}.wav"
        sf.write(os.path.join(root, sub, fname), clip(label).astype(np.float32), demo_data.SR, subtype="PCM_16")
        return fname

    cur = [(write("train_curated", i, l), l) for i, l in enumerate(TINY_LABELS * per_label)]
    noi = [(write("train_noisy", i, l), l) for i, l in enumerate(TINY_LABELS * noisy_per_label)]
    test = [write("test", i, TINY_LABELS[i % 3]) for i in range(test_clips)]
    pd.DataFrame(cur, columns=["fname", "labels"]).to_csv(os.path.join(root, "train_curated.csv"), index=False)
    pd.DataFrame(noi, columns=["fname", "labels"]).to_csv(os.path.join(root, "train_noisy.csv"), index=False)
    sub = pd.DataFrame(0.0, index=sorted(test), columns=TINY_LABELS).rename_axis("fname").reset_index()
    sub.to_csv(os.path.join(root, "sample_submission.csv"), index=False)
    return root


TINY_FLAGS = ["--sample-rate", "16000", "--n-mels", "32", "--n-fft", "512", "--hop-length", "160",
              "--crop-frames", "32", "--width", "4", "--blocks", "2", "--epochs", "2", "--batch-size", "8",
              "--n-folds", "3", "--workers", "1", "--min-seconds", "0.3", "--no-jit"]
# --no-jit: XLA's compile (~7 s a model here) outweighs a two-epoch run; the demo fixtures below and
# test_distribute's XLA test keep the default (--jit) path covered.


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny layout under tmp_path/fat (dataset name 'fat'), with the cwd moved to tmp_path so
    folds/, work/ and cache/ land there."""
    monkeypatch.chdir(tmp_path)
    return write_tiny_layout(str(tmp_path / "fat"))


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one(pattern: str) -> str:
    """The single path matching `pattern` (dataset folders carry a hash: work/fat-1a2b3c4d/)."""
    found = glob.glob(pattern)
    assert len(found) == 1, (pattern, found)
    return found[0]


def run_module(module: str, *args: str, cwd, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m module args` in a fresh process (a kill, a lock, two replicas need one)."""
    e = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=e, capture_output=True, text=True,
                          timeout=timeout)


# The demo at a size a 2-core CPU trains in about a minute, still clearly learning.
FAT_DEMO_FLAGS = ["--sample-rate", "16000", "--n-mels", "32", "--n-fft", "1024", "--hop-length", "256",
                  "--crop-frames", "64", "--width", "8", "--blocks", "3", "--epochs", "12", "--batch-size", "16"]
QD_DEMO_FLAGS = ["--model", "cnn", "--raster-size", "32", "--cnn-filters", "8", "--cnn-blocks", "3",
                 "--per-class", "60", "--epochs", "8", "--min-steps", "0", "--batch-size", "32"]


@pytest.fixture(scope="session")
def fat_demo_run(tmp_path_factory):
    """src.cv --fold 0 on the built-in FAT2019 demo (generated), in its own folder."""
    from src import cv

    root = tmp_path_factory.mktemp("fat-demo")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    assert cv.main(["--fold", "0", *FAT_DEMO_FLAGS]) == 0
    mp.undo()
    return root


@pytest.fixture(scope="session")
def qd_demo_run(tmp_path_factory):
    """src.quickdraw.cv --fold 0 on the built-in Quick Draw demo, in its own folder."""
    from src.quickdraw import cv

    root = tmp_path_factory.mktemp("qd-demo")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    assert cv.main(["--fold", "0", *QD_DEMO_FLAGS]) == 0
    mp.undo()
    return root
