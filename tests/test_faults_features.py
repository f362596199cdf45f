"""Feature extraction under injected faults: a fault of the run (out of memory, an I/O error, a
worker killed) costs at most that clip for this run and is never cached; a fault of the clip
(undecodable, truncated) is cached as `.bad` and named.

Faults are injected two ways at once: `features.compute` is monkeypatched (the process itself and
forked workers see it) and FAT_FEATURE_FAULT is set (spawned workers see only that: they are used
once TensorFlow is loaded, as it is when the whole suite runs).
"""
import errno
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from src.fat2019 import features
from src.fat2019.audio import BadClip, load_clip, read_audio
from src.fat2019.config import FatConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000


def tone(seconds=1.0, f=440.0):
    t = np.arange(int(SR * seconds)) / SR
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def clips(folder, n):
    folder.mkdir(exist_ok=True)
    names = [f"c{i}.wav" for i in range(n)]
    for i, name in enumerate(names):
        sf.write(str(folder / name), tone(0.5 + 0.1 * i, 300 + 50 * i), SR)
    return names


def config(tmp_path, workers, cache="cache"):
    return FatConfig(sample_rate=SR, n_mels=32, n_fft=512, hop_length=160, cache_dir=str(tmp_path / cache),
                     workers=workers)


def inject(monkeypatch, kind, clip, times=None):
    """Make computing `clip` fail with `kind` (memory, eio or kill): every time, or only its first
    `times` attempts in this process (the count is not shared with worker processes)."""
    real, calls = features.compute, []

    def faulty(path, cfg):
        if os.path.basename(path) == clip and (times is None or len(calls) < times):
            calls.append(path)
            if kind == "memory":
                raise MemoryError()
            if kind == "eio":
                raise OSError(errno.EIO, os.strerror(errno.EIO), path)
            if kind == "kill" and os.getpid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(path, cfg)

    parent = os.getpid()
    monkeypatch.setattr(features, "compute", faulty)
    if times is None:
        monkeypatch.setenv("FAT_FEATURE_FAULT", f"{kind}:{clip}")
    return calls


def entries(tmp_path, clip, ext):
    return list((tmp_path / "cache").rglob(f"{clip}.*.{ext}"))


def test_out_of_memory_is_retried_alone_skipped_for_this_run_and_never_cached(tmp_path, monkeypatch):
    names = clips(tmp_path / "a", 3)
    cfg = config(tmp_path, workers=1)
    inject(monkeypatch, "memory", "c1.wav")
    feats, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), names)
    assert feats.fnames == ["c0.wav", "c2.wav"] and list(failed) == ["c1.wav"]
    assert failed["c1.wav"] == "out of memory while computing its features (not cached: retried once)"
    assert not entries(tmp_path, "c1.wav", "bad")                          # the next run tries again
    monkeypatch.undo()                                                     # the fault is gone
    feats, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), names)
    assert not failed and feats.fnames == names


def test_a_transient_fault_on_the_first_attempt_is_cured_by_the_retry(tmp_path, monkeypatch):
    names = clips(tmp_path / "a", 2)
    clean, _ = features.extract(config(tmp_path, 1, "clean"), "d", "s", str(tmp_path / "a"), names)
    calls = inject(monkeypatch, "memory", "c1.wav", times=1)
    feats, failed = features.extract(config(tmp_path, 1), "d", "s", str(tmp_path / "a"), names)
    assert calls and not failed and feats.fnames == names                 # retried in a fresh process
    np.testing.assert_array_equal(feats[1], clean[1])


@pytest.mark.slow
def test_an_io_error_in_a_worker_is_not_cached(tmp_path, monkeypatch):
    names = clips(tmp_path / "a", 4)
    cfg = config(tmp_path, workers=2)
    inject(monkeypatch, "eio", "c2.wav")
    feats, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), names)
    assert feats.fnames == ["c0.wav", "c1.wav", "c3.wav"] and list(failed) == ["c2.wav"]
    assert "I/O error" in failed["c2.wav"] and "not cached: retried once" in failed["c2.wav"]
    assert not entries(tmp_path, "c2.wav", "bad")
    monkeypatch.undo()
    feats, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), names)
    assert not failed and feats.fnames == names


@pytest.mark.slow
def test_a_worker_killed_by_one_clip_costs_that_clip_not_the_run(tmp_path, monkeypatch):
    names = clips(tmp_path / "a", 6)
    clean, _ = features.extract(config(tmp_path, 1, "clean"), "d", "s", str(tmp_path / "a"), names)
    cfg = config(tmp_path, workers=2)
    inject(monkeypatch, "kill", "c3.wav")
    for _ in range(2):                                                     # a rerun survives it the same way
        feats, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), names)
        assert feats.fnames == ["c0.wav", "c1.wav", "c2.wav", "c4.wav", "c5.wav"] and list(failed) == ["c3.wav"]
        assert "killed by SIGKILL" in failed["c3.wav"] and "not cached: retried once" in failed["c3.wav"]
        for i, name in enumerate(feats.fnames):
            np.testing.assert_array_equal(feats[i], clean[names.index(name)])
        assert not entries(tmp_path, "c3.wav", "bad") and not entries(tmp_path, "c3.wav", "npy")
    monkeypatch.undo()
    feats, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), names)
    assert not failed and feats.fnames == names


def test_a_system_error_opening_a_clip_is_not_called_unreadable(tmp_path):
    with pytest.raises(OSError):
        read_audio(str(tmp_path / "gone.wav"), SR)                         # libsndfile's "System error"


def test_bad_entries_an_older_version_cached_for_faults_of_the_run_are_recomputed(tmp_path):
    names = clips(tmp_path / "a", 1)
    cfg = config(tmp_path, workers=1)
    base = features.entry_base(cfg, "d", "s", names[0], str(tmp_path / "a" / names[0]))
    os.makedirs(os.path.dirname(base))
    with open(base + ".bad", "w") as f:
        f.write("out of memory while computing its features")
    feats, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), names)
    assert not failed and feats.fnames == names and not entries(tmp_path, names[0], "bad")


def truncate(path):
    """Keep the header and the first half of the data chunk's bytes."""
    data = open(path, "rb").read()
    start = data.index(b"data") + 8
    open(path, "wb").write(data[:start + (len(data) - start) // 2])


def test_a_truncated_wav_is_named_and_cached_as_bad(tmp_path):
    (tmp_path / "a").mkdir()
    path = str(tmp_path / "a" / "t.wav")
    sf.write(path, tone(1.0), SR, subtype="PCM_16")
    truncate(path)
    why = "truncated: header says 16000 frames, file holds 8000"
    with pytest.raises(BadClip, match=why):
        read_audio(path, SR)
    with pytest.raises(BadClip, match=why):
        load_clip(path, SR, 60.0, 1.0)
    cfg = config(tmp_path, workers=1)
    for _ in range(2):                                                     # computed, then read from the cache
        feats, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), ["t.wav"])
        assert len(feats) == 0 and failed == {"t.wav": why}
    assert len(entries(tmp_path, "t.wav", "bad")) == 1


@pytest.mark.parametrize("fmt,subtype,endian,frames", [("WAV", "PCM_16", "FILE", 16000), ("WAV", "PCM_U8", "FILE", 15999),
                                                       ("WAV", "FLOAT", "FILE", 16000), ("WAV", "PCM_16", "BIG", 16000),
                                                       ("WAVEX", "PCM_24", "FILE", 16001), ("RF64", "PCM_16", "FILE", 16000),
                                                       ("WAV", "IMA_ADPCM", "FILE", 16000)])
def test_whole_wavs_are_not_called_truncated(tmp_path, fmt, subtype, endian, frames):
    path = str(tmp_path / "w.wav")
    sf.write(path, np.resize(tone(1.0), frames), SR, format=fmt, subtype=subtype, endian=endian)
    assert abs(read_audio(path, SR).size - frames) <= 1024                 # ADPCM pads its last block


def test_a_truncated_big_endian_or_rf64_wav_is_caught_too(tmp_path):
    for fmt, endian in [("WAV", "BIG"), ("RF64", "FILE")]:
        path = str(tmp_path / f"{fmt}{endian}.wav")
        sf.write(path, tone(1.0), SR, format=fmt, subtype="PCM_16", endian=endian)
        truncate(path)
        with pytest.raises(BadClip, match="truncated: header says 16000 frames, file holds 8000"):
            read_audio(path, SR)


@pytest.mark.slow
def test_workers_are_spawned_not_forked_once_tensorflow_is_loaded(tmp_path):
    """Forking a process that runs TensorFlow's thread pools can deadlock the child: with TF
    loaded the pool is spawned, and gives the same arrays. In a subprocess, so this test process
    keeps TensorFlow out (later tests here rely on forked workers inheriting their patches)."""
    names = clips(tmp_path / "a", 4)
    forked, _ = features.extract(config(tmp_path, 2, "forked"), "d", "s", str(tmp_path / "a"), names)
    if "tensorflow" not in sys.modules:
        assert features._mp_context().get_start_method() == "fork"
    script = f"""
import sys, numpy as np
import tensorflow
from src.fat2019 import features
from src.fat2019.config import FatConfig
assert features._mp_context().get_start_method() == "spawn"
cfg = FatConfig(sample_rate={SR}, n_mels=32, n_fft=512, hop_length=160, cache_dir={str(tmp_path / 'spawned')!r}, workers=2)
feats, failed = features.extract(cfg, "d", "s", {str(tmp_path / 'a')!r}, {names!r})
assert not failed, failed
np.savez({str(tmp_path / 'out.npz')!r}, *[feats[i] for i in range(len(feats))])
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("FAT_FEATURE_FAULT", None)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    spawned = np.load(tmp_path / "out.npz")
    assert len(spawned.files) == len(names)
    for i in range(len(names)):
        np.testing.assert_array_equal(spawned[f"arr_{i}"], forked[i])
