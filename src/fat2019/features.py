"""Log-mel / MFCC features, computed once per clip and cached on disk.

Cache entry: cache/<dataset>/<feature key>/<subset>/<fname>.<size>-<mtime_ns>.npy, float16,
(n_features, frames). The feature key hashes every feature parameter; the entry name keeps the
clip's extension (x.wav and x.flac are two entries) and its source's size and modification time,
so a replaced clip is recomputed, never served stale. A clip that cannot be used gets a `.bad`
entry holding the reason (retried when the file changes). An unreadable entry (a crash mid-write
on a filesystem without atomic rename, a disk error) is recomputed, not fatal.

The spectrogram is numpy's FFT over frames plus a Slaney mel filterbank, equal to
`librosa.feature.melspectrogram` (tested) but without its numba compilation (about a minute in a
fresh process) and computed in blocks of frames, so a 10-minute clip never holds its whole STFT.
"""
from __future__ import annotations

import functools
import os
import re
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import scipy.fft
from threadpoolctl import threadpool_limits

from ..kit import atomic
from ..kit.progress import progress
from .audio import BadClip, load_clip
from .config import FatConfig

FRAMES_PER_BLOCK = 2048


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), f / (200.0 / 3))


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * (200.0 / 3))


@functools.lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) Slaney-normalised triangles: librosa.filters.mel's defaults (tested
    equal), written out because importing librosa.filters pulls scipy.signal in, ~3.5 s in every
    fresh process and feature worker."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    ramps = edges[:, None] - freqs[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    """Periodic Hann, as scipy.signal.get_window('hann', n, fftbins=True) and librosa use."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)


def mel_power(x: np.ndarray, cfg: FatConfig) -> np.ndarray:
    """(n_mels, frames) mel power spectrogram of centred, zero-padded frames (librosa's defaults:
    center=True, pad_mode='constant', periodic Hann), block by block."""
    n_fft, hop = cfg.n_fft, cfg.hop_length
    padded = np.pad(x.astype(np.float32, copy=False), n_fft // 2)
    n_frames = 1 + (padded.size - n_fft) // hop
    fb = mel_filters(cfg.sample_rate, n_fft, cfg.n_mels, cfg.fmin, cfg.effective_fmax)
    win = _window(n_fft)
    stride = padded.strides[0]
    out = np.empty((cfg.n_mels, n_frames), np.float32)
    for s in range(0, n_frames, FRAMES_PER_BLOCK):
        n = min(FRAMES_PER_BLOCK, n_frames - s)
        frames = np.lib.stride_tricks.as_strided(padded[s * hop:], (n, n_fft), (stride * hop, stride))
        spec = scipy.fft.rfft(frames * win, axis=1)       # float32 in, complex64 out: faster than numpy's rfft
        ri = spec.view(np.float32)                         # real, imag interleaved
        np.square(ri, out=ri)
        out[:, s:s + n] = fb @ (ri[:, 0::2] + ri[:, 1::2]).T
    return out


def power_to_db(s: np.ndarray, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0) -> np.ndarray:
    """librosa.power_to_db."""
    db = 10.0 * np.log10(np.maximum(amin, s)) - 10.0 * np.log10(max(amin, ref))
    return np.maximum(db, db.max() - top_db) if top_db is not None else db


def logmel(x: np.ndarray, cfg: FatConfig) -> np.ndarray:
    """(n_mels, frames) log-mel in [-1, 1]: Slaney mel power in dB relative to the clip's peak
    with an 80 dB floor, then scaled by 40 dB around -40 dB."""
    mel = mel_power(x, cfg)
    db = power_to_db(mel, ref=float(mel.max()), top_db=80.0)
    return ((db + 40.0) / 40.0).astype(np.float32)


def mfcc(x: np.ndarray, cfg: FatConfig) -> np.ndarray:
    """(n_mfcc, frames) MFCC (librosa.feature.mfcc: DCT-II of the dB mel), each coefficient standardised."""
    m = scipy.fft.dct(power_to_db(mel_power(x, cfg)), axis=0, type=2, norm="ortho")[:cfg.n_mfcc]
    m = (m - m.mean(axis=1, keepdims=True)) / (m.std(axis=1, keepdims=True) + 1e-6)
    return m.astype(np.float32)


def compute(path: str, cfg: FatConfig) -> np.ndarray:
    x = load_clip(path, cfg.sample_rate, cfg.trim_db, cfg.min_seconds)
    return mfcc(x, cfg) if cfg.feature == "mfcc" else logmel(x, cfg)


def entry_base(cfg: FatConfig, dataset: str, subset: str, fname: str, src: str) -> str:
    """Cache entry path without its extension; names the source's size and mtime."""
    st = os.stat(src)
    return os.path.join(cfg.cache_dir, dataset, cfg.feature_key(), subset, f"{fname}.{st.st_size}-{st.st_mtime_ns}")


def _extract_one(job: tuple[str, str, FatConfig]) -> str | None:
    """Worker: compute and cache one clip; returns why it is unusable, or None.

    Any failure is the clip's outcome, never the run's: a decoder crash, non-finite samples or
    running out of memory on a huge clip all end in a `.bad` entry naming the reason.
    """
    src, base, cfg = job
    try:
        feat = compute(src, cfg)
        if not np.isfinite(feat).all():
            raise BadClip("features are not finite")
        atomic.save_npy(base + ".npy", feat.astype(np.float16))
    except BadClip as e:
        why = str(e)
    except MemoryError:
        why = "out of memory while computing its features"
    except Exception as e:   # noqa: BLE001 - whatever a decoder or resampler raises is this clip's problem
        why = f"failed ({e.__class__.__name__}: {str(e).strip()[:120]})"
    else:
        why = None
    if why is not None:
        atomic.write_text(base + ".bad", why)
    return why


def _one_blas_thread() -> None:
    """Feature workers already use every CPU between them: BLAS's own threads on top (the mel
    matrix product) oversubscribe the CPUs and made 2 workers slower than 1 on a 2-core machine."""
    threadpool_limits(1)


def usable_cpus() -> int:
    """CPUs this process may run on (affinity and container cpusets), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:        # not Linux
        return os.cpu_count() or 1


def _read_entry(base: str) -> np.ndarray | str | None:
    """The cached array, the recorded reason a clip is bad, or None (absent or unreadable)."""
    if os.path.exists(base + ".npy"):
        try:
            return np.load(base + ".npy", mmap_mode="r")
        except (ValueError, OSError, EOFError):
            return None
    if os.path.exists(base + ".bad"):
        with open(base + ".bad", encoding="utf-8") as f:
            return f.read().strip() or "unusable"
    return None


class FeatureSet:
    """The features of a list of clips, in RAM when they fit `budget_bytes`, else read from the
    cache on demand (memory-mapped and copied per use), so a competition-size training run holds
    crops, not 11 GB of arrays."""

    def __init__(self, fnames: list[str], paths: list[str], budget_bytes: float):
        self.fnames, self.paths = list(fnames), list(paths)
        maps = [np.load(p, mmap_mode="r") for p in self.paths]
        self.frames = np.array([m.shape[1] for m in maps], dtype=np.int64)
        self.nbytes = int(sum(m.nbytes for m in maps))
        self.in_memory = self.nbytes <= budget_bytes
        self._arrays = [np.array(m) for m in maps] if self.in_memory else None

    def __len__(self) -> int:
        return len(self.fnames)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._arrays is not None:
            return self._arrays[i]
        return np.array(np.load(self.paths[i], mmap_mode="r"))

    def crop(self, i: int, start: int, n: int) -> np.ndarray:
        if self._arrays is not None:
            return self._arrays[i][:, start:start + n]
        return np.array(np.load(self.paths[i], mmap_mode="r")[:, start:start + n])

    def take(self, idx) -> "FeatureSet":
        out = object.__new__(FeatureSet)
        idx = list(idx)
        out.fnames, out.paths = [self.fnames[i] for i in idx], [self.paths[i] for i in idx]
        out.frames = self.frames[idx] if len(idx) else np.zeros(0, np.int64)
        out.in_memory = self.in_memory
        out._arrays = [self._arrays[i] for i in idx] if self._arrays is not None else None
        out.nbytes = int(sum(self[i].nbytes for i in range(len(idx)))) if out._arrays is not None else 0
        return out

    @staticmethod
    def concat(parts: list["FeatureSet"]) -> "FeatureSet":
        out = object.__new__(FeatureSet)
        out.fnames = [f for p in parts for f in p.fnames]
        out.paths = [f for p in parts for f in p.paths]
        out.frames = np.concatenate([p.frames for p in parts]) if parts else np.zeros(0, np.int64)
        out.in_memory = all(p.in_memory for p in parts)
        out._arrays = [a for p in parts for a in p._arrays] if out.in_memory else None
        out.nbytes = sum(p.nbytes for p in parts)
        return out


_ENTRY = re.compile(r"^(.+)\.\d+-\d+\.(npy|bad)$")


def _prune(folder: str, current: dict[str, str]) -> None:
    """Remove entries of these clips made from older versions of their files (one listing)."""
    for name in os.listdir(folder):
        m = _ENTRY.match(name)
        if m and m.group(1) in current and not name.startswith(current[m.group(1)] + "."):
            os.remove(os.path.join(folder, name))


def extract(cfg: FatConfig, dataset: str, subset: str, audio_dir: str, fnames: list[str],
            desc: str | None = None, budget_bytes: float | None = None) -> tuple[FeatureSet, dict[str, str]]:
    """Features of `fnames` (cached ones read back) and {fname: why} for the clips that are unusable.
    They are held in RAM when they fit `budget_bytes` (default: all of --feature-ram-gb)."""
    entries, failed, todo, todo_names = {}, {}, [], []
    for f in fnames:
        src = os.path.join(audio_dir, f)
        if not os.path.isfile(src):
            failed[f] = "missing"
            continue
        base = entry_base(cfg, dataset, subset, f, src)
        got = _read_entry(base)
        if isinstance(got, str):
            failed[f] = got
        elif got is None:
            todo.append((src, base, cfg))
            todo_names.append(f)
        else:
            entries[f] = base + ".npy"
    if todo:
        os.makedirs(os.path.dirname(todo[0][1]), exist_ok=True)
        atomic.clean_stale(os.path.dirname(todo[0][1]))
        workers = min(cfg.workers or usable_cpus(), len(todo))
        label = desc or f"features {subset}"
        if workers > 1:
            # Fork before TensorFlow starts its threads: callers extract first, import TF after.
            with ProcessPoolExecutor(workers, initializer=_one_blas_thread) as pool:
                results = list(progress(pool.map(_extract_one, todo, chunksize=4), total=len(todo), desc=label,
                                        unit="clip"))
        else:
            results = [_extract_one(j) for j in progress(todo, desc=label, unit="clip")]
        current = {}
        for f, (src, base, _), why in zip(todo_names, todo, results):
            current[f] = os.path.basename(base)
            if why is None:
                entries[f] = base + ".npy"
            else:
                failed[f] = why
        _prune(os.path.dirname(todo[0][1]), current)
    ok = [f for f in fnames if f in entries]
    budget = cfg.feature_ram_gb * 2**30 if budget_bytes is None else budget_bytes
    return FeatureSet(ok, [entries[f] for f in ok], budget), failed
