"""Log-mel / MFCC features, computed once per clip and cached on disk.

Cache entry: cache/<dataset>/<feature key>/<subset>/<fname>.<size>-<mtime_ns>.npy, float16,
(n_features, frames). The feature key hashes every feature parameter; the entry name keeps the
clip's extension (x.wav and x.flac are two entries) and its source's size and modification time,
so a replaced clip is recomputed, never served stale. A clip whose content cannot be used
(undecodable, truncated, empty, silent, not finite) gets a `.bad` entry holding the reason (retried
when the file changes). A fault of the run instead (out of memory, an I/O error, a worker killed by
the OOM killer or a crashing decoder) is never cached: the clip is retried once, alone in a fresh
process, and if that fails too it is skipped for this run only. An unreadable entry (a crash
mid-write on a filesystem without atomic rename, a disk error) is recomputed, not fatal.

The spectrogram is numpy's FFT over frames plus a Slaney mel filterbank, equal to
`librosa.feature.melspectrogram` (tested) but without its numba compilation (about a minute in a
fresh process) and computed in blocks of frames, so a 10-minute clip never holds its whole STFT.
"""
from __future__ import annotations

import errno
import functools
import multiprocessing
import os
import re
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

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


BAD, RETRY, ERROR = "bad", "retry", "error"   # outcomes besides None (cached features)
FAULT_ENV = "FAT_FEATURE_FAULT"


def _injected_fault(src: str) -> None:
    """Test hook, read from the environment so that spawned workers see it too:
    FAT_FEATURE_FAULT="kill:a.wav,memory:b.wav,eio:c.wav" makes computing that clip kill its worker
    (SIGKILL, as the OOM killer does; never the main process), raise MemoryError, or raise EIO."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        kind, _, name = item.partition(":")
        if name != os.path.basename(src):
            continue
        if kind == "kill" and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "memory":
            raise MemoryError()
        elif kind == "eio":
            raise OSError(errno.EIO, os.strerror(errno.EIO), src)


def _extract_one(job: tuple[str, str, FatConfig]) -> tuple[str, str] | None:
    """Worker: compute and cache one clip. Returns None when cached, else (kind, why):

    BAD: the content is unusable (BadClip: undecodable, truncated, empty, silent, not finite);
    cached as `.bad`, since computing it again gives the same answer.
    RETRY: a fault of this run, not of the clip (MemoryError, OSError: EIO, ENOMEM, a full disk);
    not cached, since a `.bad` entry would make training skip the clip and the test row get
    priors until the file changes. The caller retries it once alone.
    ERROR: anything else (a bug, most likely): not cached, so a fixed version computes it.
    """
    src, base, cfg = job
    try:
        _injected_fault(src)
        feat = compute(src, cfg)
        if not np.isfinite(feat).all():
            raise BadClip("features are not finite")
        atomic.save_npy(base + ".npy", feat.astype(np.float16))
        if os.path.exists(base + ".bad"):
            os.remove(base + ".bad")              # an entry an older version cached for a fault of its run
    except BadClip as e:
        try:
            atomic.write_text(base + ".bad", str(e))
        except OSError:
            pass                  # not remembered: the next run decodes it again and finds the same
        return BAD, str(e)
    except MemoryError:
        return RETRY, "out of memory while computing its features"
    except OSError as e:
        return RETRY, f"I/O error while computing its features ({e.__class__.__name__}: {str(e).strip()[:120]})"
    except Exception as e:   # noqa: BLE001 - one clip's failure is that clip's outcome, not the run's
        return ERROR, f"failed ({e.__class__.__name__}: {str(e).strip()[:120]})"
    return None


def _mp_context():
    """fork is cheapest (workers inherit the imported modules), but forking a process in which
    TensorFlow's thread pools run can leave the child waiting forever on a lock held by a thread
    that was not copied: once TensorFlow is imported, spawn (about 1 s of imports per worker)."""
    if "tensorflow" in sys.modules:
        return multiprocessing.get_context("spawn")
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else None)


def _died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the out-of-memory killer?)" if -exitcode == signal.SIGKILL else ""
        return f"its worker process was killed by {name}{hint} while computing its features"
    return f"its worker process died (exit code {exitcode}) while computing its features"


def _alone_main(job, conn) -> None:
    _one_blas_thread()
    conn.send([_extract_one(job)])
    conn.close()


def _run_alone(job: tuple[str, str, FatConfig], ctx) -> tuple[str, str] | None:
    """One clip in a fresh process of its own, with the machine to itself: a clip that ran out of
    memory beside others may fit alone, and one that kills its process costs only itself."""
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_alone_main, args=(job, send), daemon=True)
    proc.start()
    send.close()
    try:
        answer = recv.recv()[0]
    except EOFError:                          # died before answering
        proc.join()
        return RETRY, _died(proc.exitcode)
    finally:
        recv.close()
    proc.join()
    return answer


def _outcomes(jobs: list, workers: int, ctx):
    """Yield (index, outcome) for every job: first all in this process (workers == 1) or a pool,
    then, one at a time in a fresh process, those that hit a fault of the run or were in flight
    when a worker died (a broken pool fails every unfinished task, and which one killed it is
    unknown). A pool's dispatched tasks are a prefix of those submitted, at most 2 per worker + 1
    (one running per worker, the call queue holding workers + 1), so the first that many unreceived
    are the suspects; the rest go on in a new pool."""
    alone, pending = [], list(range(len(jobs)))
    if workers <= 1:
        for i in pending:
            out = _extract_one(jobs[i])
            if out is not None and out[0] == RETRY:
                alone.append(i)
            else:
                yield i, out
        pending = []
    while pending:
        n = min(workers, len(pending))
        received = set()
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_one_blas_thread) as pool:
            futures = {pool.submit(_extract_one, jobs[i]): i for i in pending}
            for fut in as_completed(futures):
                try:
                    out = fut.result()
                except BrokenProcessPool:
                    continue
                i = futures[fut]
                received.add(i)
                if out is not None and out[0] == RETRY:
                    alone.append(i)
                else:
                    yield i, out
        lost = [i for i in pending if i not in received]
        alone += lost[:2 * n + 1]
        pending = lost[2 * n + 1:]
    for i in sorted(alone):
        out = _run_alone(jobs[i], ctx)
        if out is not None and out[0] == RETRY:
            out = RETRY, out[1] + " (not cached: retried once)"
        yield i, out


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
            why = f.read().strip() or "unusable"
        return None if _RUN_FAULT.match(why) else why
    return None


# Reasons that versions before faults were told apart cached for faults of the run, not the clip
# (memory, I/O, any exception): such an entry is recomputed, not trusted.
_RUN_FAULT = re.compile(r"out of memory|too large to decode|failed \(|unreadable \(LibsndfileError: .*System error")


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
        # Not capped by len(todo): one clip left is still computed in a worker, since the clip a
        # rerun has left may be the one that kills its process.
        workers = cfg.workers or usable_cpus()
        label = desc or f"features {subset}"
        results = dict(progress(_outcomes(todo, workers, _mp_context()), total=len(todo), desc=label, unit="clip"))
        current = {}
        for i, (f, (src, base, _)) in enumerate(zip(todo_names, todo)):
            current[f] = os.path.basename(base)
            if results[i] is None:
                entries[f] = base + ".npy"
            else:
                kind, why = results[i]
                failed[f] = why + " (not cached)" if kind == ERROR else why
        _prune(os.path.dirname(todo[0][1]), current)
    ok = [f for f in fnames if f in entries]
    budget = cfg.feature_ram_gb * 2**30 if budget_bytes is None else budget_bytes
    return FeatureSet(ok, [entries[f] for f in ok], budget), failed
