import glob
import os

import numpy as np
import pytest
import soundfile as sf

from src.fat2019 import features
from src.fat2019.audio import BadClip, load_clip, pad_to, read_audio
from src.fat2019.config import FatConfig

SHARED_FORMATS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "audio", "formats")


def tone(sr, seconds=0.5, f=440.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_U8"), ("WAV", "PCM_16"), ("WAV", "PCM_24"),
                                         ("WAV", "PCM_32"), ("WAV", "FLOAT"), ("FLAC", "PCM_16")])
def test_read_any_depth_rate_and_channels(tmp_path, fmt, subtype):
    sr = 22050
    stereo = np.stack([tone(sr), tone(sr)], axis=1)
    path = str(tmp_path / ("x." + fmt.lower()))
    sf.write(path, stereo, sr, format=fmt, subtype=subtype)
    x = read_audio(path, 44100)
    assert x.ndim == 1 and x.dtype == np.float32
    assert abs(len(x) - 2 * len(stereo)) <= 2                           # resampled to 44.1 kHz
    assert np.abs(x).max() == pytest.approx(0.5, abs=0.02)                # down-mixed, not summed


def test_downmix_averages_channels(tmp_path):
    left = tone(16000)
    sf.write(str(tmp_path / "s.wav"), np.stack([left, np.zeros_like(left)], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(str(tmp_path / "s.wav"), 16000), left / 2, atol=1e-6)


@pytest.mark.skipif(not os.path.isdir(SHARED_FORMATS), reason="shared real-format clips not present")
def test_real_clips_in_odd_formats_decode():
    paths = sorted(glob.glob(os.path.join(SHARED_FORMATS, "**", "*.*"), recursive=True))
    paths = [p for p in paths if p.lower().endswith((".wav", ".flac", ".ogg"))]
    assert paths
    for p in paths:
        x = read_audio(p, 44100)
        assert x.ndim == 1 and len(x) > 0 and np.isfinite(x).all(), p


def test_bad_clips_raise(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"not a wav at all")
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, dtype=np.float32), 16000)
    sf.write(str(tmp_path / "silent.wav"), np.zeros(8000, dtype=np.float32), 16000)
    for name, why in [("junk.wav", "unreadable"), ("empty.wav", "empty"), ("silent.wav", "silent")]:
        with pytest.raises(BadClip, match=why):
            load_clip(str(tmp_path / name), 16000, 60.0, 1.0)


def test_trim_and_pad(tmp_path):
    sr = 16000
    x = np.concatenate([np.zeros(sr), tone(sr, 0.25), np.zeros(sr)])
    sf.write(str(tmp_path / "t.wav"), x, sr, subtype="FLOAT")
    y = load_clip(str(tmp_path / "t.wav"), sr, trim_db=60.0, min_seconds=1.0)
    assert len(y) == sr                                                    # trimmed to ~0.25 s, repeated to 1 s
    assert np.abs(y[: sr // 10]).max() > 0.3                               # no leading silence left
    np.testing.assert_array_equal(pad_to(np.array([1.0, 2.0]), 5), [1, 2, 1, 2, 1])


def test_feature_cache_key_changes_with_every_feature_parameter():
    base = FatConfig()
    keys = {base.feature_key()}
    for change in [dict(n_mels=128), dict(hop_length=512), dict(sample_rate=32000), dict(fmin=0.0),
                   dict(trim_db=0.0), dict(feature="mfcc"), dict(min_seconds=2.0), dict(n_fft=1024)]:
        keys.add(base.replace(**change).feature_key())
    assert len(keys) == 9
    assert base.replace(epochs=3, lr=0.1).feature_key() == base.feature_key()   # training knobs share the cache


def test_feature_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    sr = 16000
    (tmp_path / "a").mkdir()
    sf.write(str(tmp_path / "a" / "c.wav"), tone(sr, 1.0), sr)
    cfg = FatConfig(sample_rate=sr, n_mels=32, n_fft=512, hop_length=160, cache_dir=str(tmp_path / "cache"), workers=1)
    calls = []
    real = features.compute
    monkeypatch.setattr(features, "compute", lambda p, c: calls.append(c.n_mels) or real(p, c))
    f1, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), ["c.wav"])
    assert not failed and f1[0].shape[0] == 32 and f1[0].dtype == np.float16 and f1.fnames == ["c.wav"]
    f2, _ = features.extract(cfg, "d", "s", str(tmp_path / "a"), ["c.wav"])
    assert calls == [32]                                                   # second call: read from the cache
    np.testing.assert_array_equal(f1[0], f2[0])
    f3, _ = features.extract(cfg.replace(n_mels=16), "d", "s", str(tmp_path / "a"), ["c.wav"])
    assert calls == [32, 16] and f3[0].shape[0] == 16                      # new parameter: recomputed
    assert not list((tmp_path / "cache").rglob("*.tmp*"))                  # no temporary files left


def test_replaced_clip_is_recomputed_and_extensions_are_kept_apart(tmp_path):
    sr = 16000
    d = tmp_path / "a"
    d.mkdir()
    sf.write(str(d / "c.wav"), tone(sr, 1.0, 440), sr)
    sf.write(str(d / "c.flac"), tone(sr, 1.5, 880), sr, format="FLAC")
    cfg = FatConfig(sample_rate=sr, n_mels=32, n_fft=512, hop_length=160, cache_dir=str(tmp_path / "cache"), workers=1)
    f1, _ = features.extract(cfg, "d", "s", str(d), ["c.wav", "c.flac"])
    assert f1[0].shape[1] != f1[1].shape[1]                                # two clips, two entries
    sf.write(str(d / "c.wav"), tone(sr, 2.0, 440), sr)                     # replaced under the same name
    f2, _ = features.extract(cfg, "d", "s", str(d), ["c.wav"])
    assert f2[0].shape[1] > f1[0].shape[1]                                 # recomputed, not served stale
    entries = sorted(p.name for p in (tmp_path / "cache").rglob("c.wav.*"))
    assert len(entries) == 1                                               # the stale entry was removed


def test_truncated_cache_entry_is_recomputed_not_fatal(tmp_path):
    sr = 16000
    (tmp_path / "a").mkdir()
    sf.write(str(tmp_path / "a" / "c.wav"), tone(sr, 1.0), sr)
    cfg = FatConfig(sample_rate=sr, n_mels=32, n_fft=512, hop_length=160, cache_dir=str(tmp_path / "cache"), workers=1)
    f1, _ = features.extract(cfg, "d", "s", str(tmp_path / "a"), ["c.wav"])
    entry = next((tmp_path / "cache").rglob("c.wav.*.npy"))
    entry.write_bytes(entry.read_bytes()[:200])                            # as a crash mid-write would leave it
    f2, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), ["c.wav"])
    assert not failed
    np.testing.assert_array_equal(f1[0], f2[0])


def test_non_finite_and_undecodable_clips_get_a_named_outcome(tmp_path):
    sr = 16000
    d = tmp_path / "a"
    d.mkdir()
    x = tone(sr, 1.0)
    x[100] = np.nan
    sf.write(str(d / "nan.wav"), x, sr, subtype="FLOAT")
    (d / "junk.wav").write_bytes(b"RIFF" + b"\x00" * 40)
    sf.write(str(d / "ok.wav"), tone(sr, 1.0), sr)
    cfg = FatConfig(sample_rate=sr, n_mels=32, n_fft=512, hop_length=160, cache_dir=str(tmp_path / "cache"), workers=2)
    feats, failed = features.extract(cfg, "d", "s", str(d), ["nan.wav", "junk.wav", "ok.wav"])
    assert feats.fnames == ["ok.wav"]
    assert "non-finite" in failed["nan.wav"] and "unreadable" in failed["junk.wav"]
    again, failed2 = features.extract(cfg, "d", "s", str(d), ["nan.wav", "junk.wav", "ok.wav"])
    assert failed2 == failed                                               # remembered, not retried


def test_feature_set_reads_from_disk_beyond_its_ram_budget(tmp_path):
    sr = 16000
    (tmp_path / "a").mkdir()
    for i in range(3):
        sf.write(str(tmp_path / "a" / f"c{i}.wav"), tone(sr, 1.0 + i, 300 + 100 * i), sr)
    cfg = FatConfig(sample_rate=sr, n_mels=32, n_fft=512, hop_length=160, cache_dir=str(tmp_path / "cache"), workers=1)
    ram, _ = features.extract(cfg, "d", "s", str(tmp_path / "a"), ["c0.wav", "c1.wav", "c2.wav"])
    disk, _ = features.extract(cfg.replace(feature_ram_gb=0), "d", "s", str(tmp_path / "a"), ["c0.wav", "c1.wav", "c2.wav"])
    assert ram.in_memory and not disk.in_memory
    for i in range(3):
        np.testing.assert_array_equal(ram[i], disk[i])
        np.testing.assert_array_equal(ram.crop(i, 5, 20), disk.crop(i, 5, 20))
    both = features.FeatureSet.concat([disk.take([2]), ram.take([0])])
    assert both.fnames == ["c2.wav", "c0.wav"] and list(both.frames) == [ram.frames[2], ram.frames[0]]


def test_logmel_equals_librosa_and_blocks_do_not_change_it(monkeypatch):
    """The kit's own STFT + Slaney mel equals librosa.feature.melspectrogram (which it replaces
    to avoid numba's minute of compiling), also across block boundaries."""
    import librosa

    cfg = FatConfig(sample_rate=16000, n_mels=40, n_fft=512, hop_length=160)
    x = np.random.default_rng(0).normal(size=16000 * 2).astype(np.float32)
    ref = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=160, n_mels=40, fmin=cfg.fmin,
                                         fmax=8000, power=2.0)
    ours = features.mel_power(x, cfg)
    np.testing.assert_allclose(ours, ref, rtol=2e-4, atol=1e-6 * ref.max())
    monkeypatch.setattr(features, "FRAMES_PER_BLOCK", 7)                  # many blocks, odd boundaries
    np.testing.assert_allclose(features.mel_power(x, cfg), ours, rtol=1e-5, atol=1e-7 * ref.max())
    np.testing.assert_allclose(features.power_to_db(ref, ref=ref.max()), librosa.power_to_db(ref, ref=np.max),
                               atol=1e-4)


def test_trim_and_resample_match_librosa():
    import librosa

    from src.fat2019.audio import resample, trim_silence

    sr = 16000
    x = np.concatenate([np.zeros(sr), tone(sr, 0.3), 1e-5 * tone(sr, 0.5)]).astype(np.float32)
    ref, _ = librosa.effects.trim(x, top_db=60, frame_length=2048, hop_length=512)
    assert len(trim_silence(x, 60)) == len(ref)
    y = resample(tone(22050, 0.5), 22050, 44100)
    np.testing.assert_allclose(y, librosa.resample(tone(22050, 0.5), orig_sr=22050, target_sr=44100,
                                                   res_type="soxr_hq"), atol=1e-6)


def test_logmel_range_and_mfcc_shape():
    cfg = FatConfig(sample_rate=16000, n_mels=32, n_fft=512, hop_length=160)
    x = tone(16000, 1.0)
    m = features.logmel(x, cfg)
    assert m.shape == (32, 101) and m.max() == pytest.approx(1.0) and m.min() >= -1.0
    c = features.mfcc(x, cfg.replace(feature="mfcc", n_mfcc=13))
    assert c.shape == (13, 101)



def test_out_of_memory_on_a_huge_clip_is_that_clips_outcome(tmp_path, monkeypatch):
    sr = 16000
    (tmp_path / "a").mkdir()
    sf.write(str(tmp_path / "a" / "huge.wav"), tone(sr, 1.0), sr)
    cfg = FatConfig(sample_rate=sr, n_mels=32, n_fft=512, hop_length=160, cache_dir=str(tmp_path / "cache"), workers=1)

    def boom(path, c):
        raise MemoryError()

    monkeypatch.setattr(features, "compute", boom)
    monkeypatch.setenv("FAT_FEATURE_FAULT", "memory:huge.wav")     # the retry may run in a spawned worker
    feats, failed = features.extract(cfg, "d", "s", str(tmp_path / "a"), ["huge.wav"])
    assert len(feats) == 0 and failed == {"huge.wav": "out of memory while computing its features (not cached: "
                                                      "retried once)"}


def test_a_long_clip_never_holds_its_whole_stft(monkeypatch):
    """60 s at 16 kHz: the full complex STFT would take 6,001 x 257 x 16 B = 24.7 MB; computed in
    blocks of 256 frames, the new allocations beyond one (padded) copy of the signal stay below a
    quarter of it."""
    import tracemalloc

    cfg = FatConfig(sample_rate=16000, n_mels=40, n_fft=512, hop_length=160)
    x = np.random.default_rng(0).normal(size=16000 * 60).astype(np.float32)
    monkeypatch.setattr(features, "FRAMES_PER_BLOCK", 256)
    features.mel_power(x[:16000], cfg)                                    # filterbank cached first
    tracemalloc.start()
    out = features.mel_power(x, cfg)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    full_stft = out.shape[1] * (cfg.n_fft // 2 + 1) * 16
    assert out.shape == (40, 6001) and peak - x.nbytes < full_stft / 4, (peak, full_stft)


def test_workers_default_to_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.setattr(features.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert features.usable_cpus() == 1


def test_one_feature_ram_budget_covers_curated_and_noisy_together(tiny):
    """--feature-ram-gb bounds a fold's features as a whole: a budget that holds the curated clips
    but not the noisy ones as well leaves the fold's training set read from the cache."""
    from conftest import TINY_FLAGS
    from src.fat2019 import data as fat_data, train as training
    from src.kit import configio

    def inputs(gb):
        cfg, _ = configio.parse(FatConfig, "t", "", ["--data-dir", tiny, "--noisy", "all", *TINY_FLAGS,
                                                     "--feature-ram-gb", str(gb)])
        return training.fold_inputs(cfg, fat_data.load(cfg), 0)

    everything = inputs(1.0)
    assert everything.train.in_memory and everything.val.in_memory and everything.n_noisy == 6
    curated = everything.train.take(np.flatnonzero(everything.noisy == 0)).nbytes + everything.val.nbytes
    between = inputs((curated + 1) / 2**30)          # curated fits, curated + noisy does not
    assert between.val.in_memory and not between.train.in_memory
    assert between.train.nbytes == everything.train.nbytes       # the same features, read as needed


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [(44100, 2560, 64, 20.0, 22050.0), (16000, 512, 40, 20.0, 8000.0),
                                                       (44100, 2560, 128, 0.0, 16000.0)])
def test_mel_filters_equal_librosa_without_importing_it(sr, n_fft, n_mels, fmin, fmax):
    import librosa

    np.testing.assert_allclose(features.mel_filters(sr, n_fft, n_mels, fmin, fmax),
                               librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax),
                               rtol=1e-5, atol=1e-8)
