"""Log-mel / MFCC features, computed once per clip and cached on disk.

The cache folder is named by `FatConfig.feature_key()`, a hash of every feature parameter, so a
changed parameter never reuses stale arrays. Each array is written atomically; an interrupted
extraction resumes where it stopped. Features are stored as float16 (half the memory of float32;
log-mel values in [-1, 1] lose nothing that matters).
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from tqdm import tqdm

from .kit import atomic
from .audio import BadClip, load_clip
from .config import FatConfig


def logmel(x: np.ndarray, cfg: FatConfig) -> np.ndarray:
    """(n_mels, frames) log-mel in [-1, 1]: librosa's Slaney mel, power_to_db relative to the
    clip's peak with an 80 dB floor, then scaled by 40 dB around -40 dB."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=x, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels,
        fmin=cfg.fmin, fmax=cfg.effective_fmax, power=2.0)
    db = librosa.power_to_db(mel, ref=np.max, top_db=80.0)
    return ((db + 40.0) / 40.0).astype(np.float32)


def mfcc(x: np.ndarray, cfg: FatConfig) -> np.ndarray:
    """(n_mfcc, frames) MFCC from the same mel spectrogram, each coefficient standardised."""
    import librosa

    m = librosa.feature.mfcc(y=x, sr=cfg.sample_rate, n_mfcc=cfg.n_mfcc, n_fft=cfg.n_fft,
                             hop_length=cfg.hop_length, n_mels=cfg.n_mels, fmin=cfg.fmin,
                             fmax=cfg.effective_fmax)
    m = (m - m.mean(axis=1, keepdims=True)) / (m.std(axis=1, keepdims=True) + 1e-6)
    return m.astype(np.float32)


def compute(path: str, cfg: FatConfig) -> np.ndarray:
    x = load_clip(path, cfg.sample_rate, cfg.trim_db, cfg.min_seconds)
    return mfcc(x, cfg) if cfg.feature == "mfcc" else logmel(x, cfg)


def cache_path(cfg: FatConfig, dataset: str, subset: str, fname: str) -> str:
    return os.path.join(cfg.cache_dir, dataset, cfg.feature_key(), subset, os.path.splitext(fname)[0] + ".npy")


def _extract_one(job: tuple[str, str, FatConfig]) -> str | None:
    """Worker: compute and cache one clip; returns an error message or None."""
    src, dst, cfg = job
    try:
        atomic.save_npy(dst, compute(src, cfg).astype(np.float16))
    except BadClip as e:
        return str(e)
    return None


def extract(cfg: FatConfig, dataset: str, subset: str, audio_dir: str, fnames: list[str],
            desc: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Features of `fnames` (cached ones read back), and {fname: why} for clips that failed."""
    todo = [f for f in fnames if not os.path.exists(cache_path(cfg, dataset, subset, f))]
    failed: dict[str, str] = {}
    if todo:
        workers = cfg.workers or os.cpu_count() or 1
        jobs = [(os.path.join(audio_dir, f), cache_path(cfg, dataset, subset, f), cfg) for f in todo]
        label = desc or f"features {subset}"
        if workers > 1 and len(jobs) > 8:
            with ProcessPoolExecutor(workers) as pool:
                results = list(tqdm(pool.map(_extract_one, jobs, chunksize=4), total=len(jobs),
                                    desc=label, unit="clip"))
        else:
            results = [_extract_one(j) for j in tqdm(jobs, desc=label, unit="clip")]
        failed = {f: r for f, r in zip(todo, results) if r is not None}
    feats = {f: np.load(cache_path(cfg, dataset, subset, f)) for f in fnames if f not in failed}
    return feats, failed
