"""Reading clips: any rate, channel count, bit depth, WAV or FLAC -> mono float32 at the config rate."""
from __future__ import annotations

import numpy as np
import soundfile as sf


class BadClip(Exception):
    """A clip that cannot be used: unreadable, empty or silent. The message says which."""


def read_audio(path: str, sample_rate: int) -> np.ndarray:
    """Decode, down-mix to mono and resample. soundfile reads 8/16/24/32-bit, float and FLAC."""
    try:
        x, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types (LibsndfileError, RuntimeError, ...)
        raise BadClip(f"unreadable ({e.__class__.__name__}: {str(e).strip()[:120]})") from None
    x = x.mean(axis=1)
    if x.size == 0:
        raise BadClip("empty (no samples)")
    if sr != sample_rate:
        import librosa

        x = librosa.resample(x, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(x, dtype=np.float32)


def trim_silence(x: np.ndarray, top_db: float) -> np.ndarray:
    """Cut leading and trailing parts more than `top_db` below the peak (0 keeps everything)."""
    if top_db <= 0:
        return x
    import librosa

    trimmed, _ = librosa.effects.trim(x, top_db=top_db, frame_length=2048, hop_length=512)
    return trimmed if trimmed.size else x


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
