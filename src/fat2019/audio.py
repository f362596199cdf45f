"""Reading clips: any rate, channel count, bit depth, WAV or FLAC -> mono float32 at the config rate.

Numpy and soxr only (no librosa here): librosa's first call in a fresh process spends about a
minute compiling with numba, which a 3-minute first run cannot afford. Results match librosa's
`resample(res_type="soxr_hq")` and `effects.trim` (tests compare them).
"""
from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr

BLOCK = 1 << 20          # samples per channel decoded at a time: a long stereo clip is never held twice


class BadClip(Exception):
    """A clip that cannot be used: unreadable, empty, silent or not finite. The message says which."""


def read_audio(path: str, sample_rate: int) -> np.ndarray:
    """Decode, down-mix to mono (block by block) and resample. soundfile reads 8/16/24/32-bit,
    float and FLAC."""
    try:
        with sf.SoundFile(path) as f:
            sr, parts = f.samplerate, []
            for block in f.blocks(blocksize=BLOCK, dtype="float32", always_2d=False):
                # mono blocks come 1-D; a matrix-vector product averages channels ~10x faster than mean(axis=1)
                parts.append(block if block.ndim == 1 else block @ np.full(block.shape[1], 1 / block.shape[1], np.float32))
    except MemoryError:
        raise BadClip("too large to decode in the memory available") from None
    except Exception as e:  # soundfile raises several types (LibsndfileError, RuntimeError, ...)
        raise BadClip(f"unreadable ({e.__class__.__name__}: {str(e).strip()[:120]})") from None
    x = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if x.size == 0:
        raise BadClip("empty (no samples)")
    if not np.isfinite(x).all():
        raise BadClip(f"{int((~np.isfinite(x)).sum())} non-finite (NaN/inf) samples")
    if sr != sample_rate:
        x = resample(x, sr, sample_rate)
    return np.ascontiguousarray(x, dtype=np.float32)


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """soxr 'HQ', length fixed to ceil(n * ratio): what librosa.resample(res_type='soxr_hq') gives."""
    n = int(np.ceil(x.size * target_sr / orig_sr))
    y = soxr.resample(x, orig_sr, target_sr, quality="soxr_hq")
    return np.pad(y, (0, max(0, n - y.size)))[:n]


def trim_silence(x: np.ndarray, top_db: float, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Cut leading and trailing parts more than `top_db` below the loudest frame (RMS over
    centred frames, as librosa.effects.trim); 0 keeps everything."""
    if top_db <= 0:
        return x
    padded = np.pad(x, frame_length // 2)
    n = 1 + (padded.size - frame_length) // hop_length
    # Each frame's sum of squares from one running sum (one pass, not frame_length / hop_length).
    run = np.concatenate([[0.0], np.cumsum(np.square(padded, dtype=np.float64))])
    starts = np.arange(n) * hop_length
    rms = np.sqrt(np.maximum(run[starts + frame_length] - run[starts], 0.0) / frame_length)
    db = 20 * np.log10(np.maximum(rms, 1e-5)) - 20 * np.log10(max(rms.max(), 1e-5))
    loud = np.flatnonzero(db > -top_db)
    if loud.size == 0:
        return x
    start, end = loud[0] * hop_length, min(x.size, (loud[-1] + 1) * hop_length)
    return x[start:end] if end > start else x


def pad_to(x: np.ndarray, n: int) -> np.ndarray:
    """Repeat a short clip until it has `n` samples: a repeated sound is closer to the data
    than silence, and every crop then holds signal."""
    if x.size >= n:
        return x
    reps = int(np.ceil(n / x.size))
    return np.tile(x, reps)[:n]


def load_clip(path: str, sample_rate: int, trim_db: float, min_seconds: float) -> np.ndarray:
    x = read_audio(path, sample_rate)
    if not np.any(np.abs(x) > 1e-6):
        raise BadClip("silent (all samples zero)")
    x = trim_silence(x, trim_db)
    return pad_to(x, int(round(min_seconds * sample_rate)))
