"""Reading clips: any rate, channel count, bit depth, WAV or FLAC -> mono float32 at the config rate.

Numpy and soxr only (no librosa here): librosa's first call in a fresh process spends about a
minute compiling with numba, which a 3-minute first run cannot afford. Results match librosa's
`resample(res_type="soxr_hq")` and `effects.trim` (tests compare them).
"""
from __future__ import annotations

import errno
import os
import struct

import numpy as np
import soundfile as sf
import soxr

BLOCK = 1 << 20          # samples per channel decoded at a time: a long stereo clip is never held twice
SF_ERR_SYSTEM = 2        # libsndfile's code for a failure of the operating system (open, read, seek)
WAV_FORMATS = ("WAV", "WAVEX", "RF64")
FRAME_ALIGNED = (0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE)   # PCM, float, A-law, mu-law, extensible: block align = a frame


class BadClip(Exception):
    """A clip whose content cannot be used: undecodable, truncated, empty, silent or not finite.
    The message says which. Faults of the run instead (MemoryError, OSError) are not BadClip:
    they say nothing about the clip, so callers must not remember them."""


def _wav_shortfall(path: str, frames_held: int) -> tuple[int, int] | None:
    """(frames the header declares, frames the file holds) when a RIFF/RIFX/RF64 WAV's data chunk
    runs past the end of the file, else None. libsndfile silently shortens such a clip to what is
    there (its `frames` already counts only that), so the declared size is read here."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
            return None
        order = ">" if head[:4] == b"RIFX" else "<"
        pos, align, tag, ds64 = 12, 0, 0, None
        while pos + 8 <= size:
            f.seek(pos)
            cid, n = struct.unpack(order + "4sI", f.read(8))
            if cid == b"ds64":
                ds64 = struct.unpack("<Q", f.read(16)[8:16])[0]
            elif cid == b"fmt ":
                tag, _, _, _, align = struct.unpack(order + "HHIIH", f.read(14))
            elif cid == b"data":
                if n == 0xFFFFFFFF and ds64 is not None:
                    n = ds64
                held = size - pos - 8
                if n in (0, 0xFFFFFFFF) or n <= held or not align:   # whole, or streamed with an unknown size
                    return None
                if tag in FRAME_ALIGNED:
                    return n // align, held // align
                return frames_held * n // max(held, 1), frames_held          # compressed: scaled by bytes
            pos += 8 + n + (n & 1)
    return None


def read_audio(path: str, sample_rate: int) -> np.ndarray:
    """Decode, down-mix to mono (block by block) and resample. soundfile reads 8/16/24/32-bit,
    float and FLAC.

    Raises BadClip for the content (the decoder rejects it, it is truncated, empty or not finite);
    MemoryError and OSError (libsndfile's "System error" included) pass through: they are faults of
    the machine, and the clip may well decode on another try."""
    try:
        with sf.SoundFile(path) as f:
            sr, declared, parts = f.samplerate, f.frames, []
            short = _wav_shortfall(path, f.frames) if f.format in WAV_FORMATS else None
            if short:
                raise BadClip("truncated: header says %d frames, file holds %d" % short)
            for block in f.blocks(blocksize=BLOCK, dtype="float32", always_2d=False):
                # mono blocks come 1-D; a matrix-vector product averages channels ~10x faster than mean(axis=1)
                parts.append(block if block.ndim == 1 else block @ np.full(block.shape[1], 1 / block.shape[1], np.float32))
            got = sum(p.shape[0] for p in parts)
            # Other formats can stop short of their header's count without an error (MP3's count is an estimate).
            if f.seekable() and f.format != "MPEG" and got < declared:
                raise BadClip(f"truncated: header says {declared} frames, file holds {got}")
    except (BadClip, MemoryError, OSError):
        raise
    except sf.LibsndfileError as e:
        if e.code == SF_ERR_SYSTEM:
            raise OSError(errno.EIO, f"system error decoding {path}: {str(e).strip()[:120]}") from None
        raise BadClip(f"unreadable ({e.__class__.__name__}: {str(e).strip()[:120]})") from None
    except Exception as e:  # soundfile raises several types (RuntimeError, ValueError, ...)
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
