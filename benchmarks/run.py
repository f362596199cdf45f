"""Speed, memory, scale and quality of the kit on the machine at hand -> benchmarks/RESULTS.md + PNGs.

    python -m benchmarks.run --quick     # under 15 minutes on a 2-core CPU
    python -m benchmarks.run             # + the real-data quality runs (hours on a 2-core CPU)
    python -m benchmarks.run --smoke --out /tmp/b   # seconds-sized, on the demo data (what the test runs)

Every ratio is measured side by side in the same run, each side in its own fresh process: these
machines are noisy, absolute times alone mean little. Sections:
  features     the kit's extraction (parallel, cached) against the public-kernel way (librosa.load +
               melspectrogram in one loop), cold and warm; librosa's numba compile timed apart
  pipeline     training samples/s through the kit's input pipeline against the same model fed from
               tensors already in memory (the ceiling)
  predict      test clips/s of the kit's batched windows against a per-clip model.predict loop, and
               the time extrapolated to FAT2019's 3,361 test clips x 5 folds
  memory       peak RSS of a training run over a FAT2019-size feature cache (25,000 clips, synthetic
               arrays of the real lengths, in the cache format), and of the Quick Draw reader over a
               generated multi-GB CSV with --per-class; Quick Draw training input drawings/s
  scale-out    two MultiWorkerMirroredStrategy workers on 127.0.0.1 against one process
  first run    the README's first command on the built-in demo, from an empty folder
  quality      FAT2019 and Quick Draw on the real data in ../shared/data, beside their non-deep
               baselines (the deep runs only without --quick, or when already trained)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
FAT_TEST_CLIPS, FAT_FOLDS = 3361, 5
QD_TEST_DRAWINGS = 112_199


@dataclass
class Size:
    """How much of everything a mode measures."""
    name: str
    feature_clips: int          # real clips extracted both ways
    pipeline_steps: int         # steps per fit
    pipeline_rounds: int        # side-by-side rounds (ceiling, then pipeline, order alternating)
    predict_clips: int
    cache_clips: tuple          # (curated, noisy) synthetic clips for the memory run
    cache_mels: int
    train_steps: int            # steps of the memory run
    qd_csv_mb: int
    multiworker: bool
    first_run: bool
    deep_quality: bool
    width: int = 16             # the CNN of the pipeline and memory runs (smoke: the harness only)

    @property
    def harness_only(self) -> bool:
        """Smoke: the predict section's CNN at `width` (else the default model's), the memory run
        with --eager: figures of no use, the harness's every line still runs."""
        return self.name == "smoke"


SIZES = {
    "smoke": Size("smoke", 4, 2, 1, 2, (10, 20), 32, 1, 1, False, False, False, width=4),
    "quick": Size("quick", 120, 8, 5, 81, (4970, 19815), 64, 10, 600, True, True, False),
    "full": Size("full", 345, 10, 9, 81, (4970, 19815), 128, 30, 2500, True, True, True),
}


@dataclass
class Results:
    rows: dict = field(default_factory=dict)        # section -> [(what, value, note)]
    figures: list = field(default_factory=list)
    commands: dict = field(default_factory=dict)

    def add(self, section: str, what: str, value, note: str = "") -> None:
        self.rows.setdefault(section, []).append((what, value, note))
        print(f"[{section}] {what}: {value} {note}", flush=True)


def py(code: str, env: dict | None = None, cwd: str | None = None, timeout: int = 3600) -> tuple[dict, float]:
    """Run `code` in a fresh Python that prints one JSON line last; (that JSON, wall s)."""
    e = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", code], cwd=cwd or os.getcwd(), env=e, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{code[:400]}\n{p.stderr[-3000:]}")
    last = [l for l in p.stdout.strip().splitlines() if l.startswith("{")]
    return (json.loads(last[-1]) if last else {}), time.time() - t0


def run_measured(cmd: list[str], cwd: str, env: dict | None = None, timeout: int = 7200, cpu: bool = False):
    """(wall s, peak RSS MB, stdout) of a command, RSS of that process alone (wait4); with `cpu`
    also its user + system CPU seconds."""
    e = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=cwd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    for line in p.stdout:
        out.append(line)
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{''.join(out)[-3000:]}")
    got = (time.time() - t0, usage.ru_maxrss / 1024, "".join(out))
    return got + (usage.ru_utime + usage.ru_stime,) if cpu else got


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info, _ = py("import json, tensorflow as tf, keras, numpy, pandas, librosa, sklearn; "
                    "print(json.dumps({'gpu': [d.name for d in tf.config.list_physical_devices('GPU')], "
                    "'tensorflow': tf.__version__, 'keras': keras.__version__, 'numpy': numpy.__version__, "
                    "'pandas': pandas.__version__, 'librosa': librosa.__version__, 'scikit-learn': sklearn.__version__}))")
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": len(os.sched_getaffinity(0)), "cpu": cpu,
            "python": platform.python_version(), **info}


# ---------------------------------------------------------------------------------------- layouts

def fat_layout(work: str, demo: bool = False) -> str:
    """The real recordings laid out as Kaggle does (../shared/data), else (or with `demo`) the built-in demo."""
    out = os.path.join(work, "fat-real")
    if not demo and os.path.isdir(os.path.join(SHARED, "audio")):
        if not os.path.isdir(out):
            subprocess.run([sys.executable, os.path.join(SHARED, "make_fat_layout.py"), "--out", out], check=True,
                           capture_output=True)
        return out
    from src.fat2019 import demo as demo_data

    return demo_data.ensure(os.path.join(work, "demo-fat2019"))


def clip_paths(layout: str, n: int) -> list[str]:
    import pandas as pd

    paths = []
    for sub in ("train_curated", "train_noisy", "test"):
        csv = os.path.join(layout, f"{sub}.csv") if sub != "test" else os.path.join(layout, "sample_submission.csv")
        if os.path.exists(csv):
            paths += [os.path.join(layout, sub, f) for f in pd.read_csv(csv)["fname"]]
    return paths[:n]


# ---------------------------------------------------------------------------------------- sections

def features(res: Results, size: Size, work: str) -> None:
    layout = fat_layout(work, size.name == "smoke")
    paths = clip_paths(layout, size.feature_clips)
    listing = os.path.join(work, "clips.json")
    with open(listing, "w") as f:
        json.dump(paths, f)
    import soundfile as sf

    seconds = sum(sf.info(p).duration for p in paths)
    compile_code = f"""
import json, time, numpy as np, librosa
x = np.random.default_rng(0).normal(size=44100).astype(np.float32)
t = time.time(); librosa.feature.melspectrogram(y=x, sr=44100, n_fft=2560, hop_length=347, n_mels=128); first = time.time() - t
t = time.time(); librosa.feature.melspectrogram(y=x, sr=44100, n_fft=2560, hop_length=347, n_mels=128); second = time.time() - t
print(json.dumps({{"first": first, "second": second}}))"""
    if size.name != "smoke":                 # a minute of compiling: not in the harness's own test
        cold, _ = py(compile_code, env={"NUMBA_CACHE_DIR": tempfile.mkdtemp(dir=work)})
        res.add("features", "librosa's first melspectrogram call in a fresh process (numba compiles)",
                f"{cold['first']:.1f} s", f"(second call {cold['second'] * 1000:.0f} ms; kept out of the per-clip "
                f"times below; the kit computes its spectrogram with numpy and scipy.fft and compiles nothing)")
    public = f"""
import json, time, numpy as np, librosa
paths = json.load(open({listing!r}))
x = np.zeros(44100, np.float32); librosa.power_to_db(librosa.feature.melspectrogram(y=x, sr=44100))   # warm-up
t = time.time()
for p in paths:
    y, sr = librosa.load(p, sr=44100)
    librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, n_fft=2560, hop_length=347, n_mels=128, fmin=20), ref=np.max)
print(json.dumps({{"s": time.time() - t}}))"""
    pub, _ = py(public)
    cache = os.path.join(work, "feature-cache")
    kit = f"""
import json, time
from src.fat2019 import features
from src.fat2019.config import FatConfig
paths = json.load(open({listing!r}))
cfg = FatConfig(cache_dir={cache!r})
out = {{}}
for run in ("cold", "warm"):
    t = time.time()
    for sub in sorted({{p.split("/")[-2] for p in paths}}):
        names = [p.split("/")[-1] for p in paths if p.split("/")[-2] == sub]
        features.extract(cfg, "bench", sub, {layout!r} + "/" + sub, names)
    out[run] = time.time() - t
out["workers"] = features.usable_cpus()
print(json.dumps(out))"""
    shutil.rmtree(cache, ignore_errors=True)
    k, _ = py(kit)
    n = len(paths)
    res.add("features", f"public-kernel way ({n} clips, {seconds:.0f} s of audio, 1 process)",
            f"{n / pub['s']:.1f} clips/s", f"{seconds / pub['s']:.0f} s of audio per s")
    res.add("features", f"kit, cold cache ({k['workers']} worker(s))", f"{n / k['cold']:.1f} clips/s",
            f"{seconds / k['cold']:.0f} s of audio per s (includes starting the workers)")
    res.add("features", "kit, warm cache (second run)", f"{n / k['warm']:.0f} clips/s", "")
    res.add("features", "kit cold / public-kernel way", f"{pub['s'] / k['cold']:.2f}", "same clips, same machine, same run")
    res.commands["features"] = f"{len(paths)} real clips of {layout}"
    _bars(res, "features.png", "feature extraction, clips/s",
          {"public loop": n / pub["s"], "kit cold": n / k["cold"], "kit warm": n / k["warm"]})


def pipeline(res: Results, size: Size, work: str) -> None:
    code = f"""
import json, time, numpy as np, keras, tensorflow as tf
from src.fat2019.config import FatConfig
from src.fat2019 import models, pipeline as datasets
from src.kit.batches import no_autotune
from src.fat2019.features import FeatureSet
cfg = FatConfig(n_mels=64, width={size.width}, mixup_alpha=0.0, spec_augment=True)
rng = np.random.default_rng(0)
fs = object.__new__(FeatureSet)
arrays = [rng.uniform(-1, 1, (64, int(f))).astype(np.float16) for f in rng.integers(100, 2000, 400)]
fs.fnames, fs.paths, fs._arrays, fs.in_memory = [str(i) for i in range(400)], [""] * 400, arrays, True
fs.frames, fs.nbytes = np.array([a.shape[1] for a in arrays]), 0
y = np.eye(16, dtype=np.float32)[rng.integers(0, 16, 400)]
w, noisy = np.ones(400, np.float32), np.zeros(400, np.float32)
steps = {size.pipeline_steps}
def model():
    keras.utils.set_random_seed(0)
    m = models.build(cfg, 16); m.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=models.loss(cfg)); return m
def stage_rate(c):
    gen = datasets.training_batches(fs, y, w, noisy, c, 0, 0, steps)
    t = time.time(); got = [next(gen) for _ in range(steps)]
    return steps * c.batch_size / (time.time() - t), got
stage, batches = stage_rate(cfg)
augment = {{name: stage_rate(cfg.replace(**change))[0] for name, change in (
    ("no augmentation", dict(spec_augment=False)), ("SpecAugment", {{}}),
    ("+ random gain 6 dB", dict(gain_db=6.0)), ("+ mixup 0.4", dict(mixup_alpha=0.4)),
    ("+ mix-and-union 0.5", dict(mix_clips=0.5)),
    ("+ silence padding", dict(pad="silence")))}}
ceiling_ds = tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(b) for b in zip(*batches))).batch(cfg.batch_size).repeat().with_options(no_autotune())   # the same tf.data options as the kit
out = {{"stage": stage, "augment": augment}}
fed = {{"ceiling": (model(), ceiling_ds), "pipeline": (model(), datasets.training_dataset(fs, y, w, noisy, cfg, 0, 0, steps))}}
for m, ds in fed.values():
    m.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)              # traced and warm before any clock
# Rounds of one short fit each, side by side, in alternating order: a ratio per round, then their
# median, so a burst of load on a shared machine spoils one round, not the figure.
ratios, seconds = [], {{"ceiling": [], "pipeline": []}}
for r in range({size.pipeline_rounds}):
    for name in (("ceiling", "pipeline") if r % 2 == 0 else ("pipeline", "ceiling")):
        m, ds = fed[name]
        t = time.time(); m.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
        seconds[name].append(time.time() - t)
    ratios.append(seconds["ceiling"][-1] / seconds["pipeline"][-1])
out.update({{name: steps * cfg.batch_size / float(np.median(s)) for name, s in seconds.items()}})
out["ratio"], out["ratios"] = float(np.median(ratios)), ratios
print(json.dumps(out))"""
    r, _ = py(code)
    res.add("pipeline", "input stage alone (crops + SpecAugment from the feature store)", f"{r['stage']:.0f} samples/s")
    for name, rate in r["augment"].items():
        res.add("pipeline", f"input stage alone, {name}", f"{rate:.0f} samples/s",
                "each on top of SpecAugment" if name.startswith("+") else "")
    res.add("pipeline", "model fed from tensors in memory (ceiling)", f"{r['ceiling']:.1f} samples/s", "median round")
    res.add("pipeline", "model fed by the kit's pipeline", f"{r['pipeline']:.1f} samples/s", "median round")
    res.add("pipeline", "training pipeline / in-memory ceiling", f"{r['ratio']:.2f}",
            f"target >= 0.9; median of {len(r['ratios'])} side-by-side rounds "
            f"({', '.join(f'{x:.2f}' for x in r['ratios'])}); width-{size.width} CNN, 64 mels, batch 32, "
            f"{size.pipeline_steps} steps per fit")
    _bars(res, "pipeline.png", "training samples/s", {"in-memory ceiling": r["ceiling"], "kit pipeline": r["pipeline"]})


def predict_speed(res: Results, size: Size, work: str) -> None:
    layout = fat_layout(work, size.name == "smoke")
    code = f"""
import json, time, numpy as np, keras
import pandas as pd
from src.fat2019 import features, models, transforms
from src.fat2019.config import FatConfig
from src.fat2019.infer import predict_clips
cfg = FatConfig(cache_dir={os.path.join(work, 'feature-cache')!r}{f", width={size.width}" if size.harness_only else ""})   # the default model
names = pd.read_csv({layout!r} + "/sample_submission.csv")["fname"].tolist()[:{size.predict_clips}]
fs, _ = features.extract(cfg, "bench", "test", {layout!r} + "/test", names)
m = models.build(cfg, 80)
predict_clips(m, fs.take(range(2)), cfg)
t = time.time(); predict_clips(m, fs, cfg, tta=cfg.tta); kit = len(fs) / (time.time() - t)
hop = int(round(cfg.eval_hop * cfg.crop_frames))
t = time.time()
for i in range(len(fs)):
    m.predict(transforms.windows(np.asarray(fs[i], np.float32), cfg.crop_frames, hop)[..., None], verbose=0).mean(axis=0)
loop = len(fs) / (time.time() - t)
print(json.dumps({{"kit": kit, "loop": loop, "n": len(fs), "width": cfg.width}}))"""
    r, _ = py(code)
    res.add("predict", f"kit: windows of many clips per model call ({r['n']} real test clips)", f"{r['kit']:.1f} clips/s")
    res.add("predict", "per-clip model.predict loop (the usual kernel way)", f"{r['loop']:.1f} clips/s")
    res.add("predict", "kit / per-clip loop", f"{r['kit'] / r['loop']:.2f}")
    t = FAT_TEST_CLIPS * FAT_FOLDS / r["kit"]
    res.add("predict", f"extrapolated: {FAT_TEST_CLIPS} test clips x {FAT_FOLDS} folds, width-{r['width']} CNN, "
                       "this CPU",
            f"{t / 60:.1f} min", "per default model; clip lengths of the real test set assumed like these")
    _bars(res, "predict.png", "test clips/s", {"per-clip loop": r["loop"], "kit": r["kit"]})


def synthetic_fat_layout(work: str, curated: int, noisy: int, mels: int) -> str:
    """A FAT2019-size layout whose features are already in the cache: placeholder audio files and
    float16 arrays of the real length distribution written straight into the cache format."""
    from src.fat2019 import features
    from src.fat2019.config import FatConfig

    root = os.path.join(work, "fat-size")
    if os.path.isdir(root):
        return root
    rng = np.random.default_rng(0)
    labels = [f"label{i:02d}" for i in range(80)]
    cfg = FatConfig(n_mels=mels, cache_dir=os.path.join(work, "fat-size-cache"))
    import pandas as pd

    from src.fat2019 import data as fat_data

    frames_per_s = cfg.sample_rate / cfg.hop_length
    frames = {"train_curated": np.clip(rng.lognormal(np.log(5.5), 0.8, curated), 0.3, 30),          # mean ~7.6 s
              "train_noisy": np.clip(rng.lognormal(np.log(12.0), 0.6, noisy), 1.0, 16)}              # mean ~14 s
    tables = {}
    for sub, secs in frames.items():
        os.makedirs(os.path.join(root, sub), exist_ok=True)
        names = [f"{sub[6]}{i:06d}.wav" for i in range(len(secs))]
        for n in names:
            open(os.path.join(root, sub, n), "wb").close()
        tables[sub] = pd.DataFrame({"fname": names, "labels": [labels[i % 80] for i in range(len(names))]})
        tables[sub].to_csv(os.path.join(root, f"{sub}.csv"), index=False)
    os.makedirs(os.path.join(root, "test"), exist_ok=True)
    pd.DataFrame(0.0, index=["t0.wav"], columns=labels).rename_axis("fname").reset_index().to_csv(
        os.path.join(root, "sample_submission.csv"), index=False)
    name = fat_data.load(cfg.replace(data_dir=root)).name
    for sub, secs in frames.items():
        for n, s in zip(tables[sub]["fname"], secs):
            base = features.entry_base(cfg, name, sub, n, os.path.join(root, sub, n))
            os.makedirs(os.path.dirname(base), exist_ok=True)
            np.save(base + ".npy", rng.uniform(-1, 1, (mels, int(s * frames_per_s))).astype(np.float16))
    return root


def memory(res: Results, size: Size, work: str) -> None:
    from src.fat2019.config import FatConfig

    curated, noisy = size.cache_clips
    root = synthetic_fat_layout(work, curated, noisy, size.cache_mels)
    cache = os.path.join(work, "fat-size-cache")
    on_disk = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(cache) for f in fs) / 2**30
    cmd = [sys.executable, "-m", "src.cv", "--data-dir", root, "--fold", "0", "--noisy", "all", "--n-mels",
           str(size.cache_mels), "--width", str(size.width), "--epochs", "1", "--steps-per-epoch", str(size.train_steps),
           "--eval-hop", "1.0", "--cache-dir", cache, "--work-dir", os.path.join(work, "fat-size-work")] + \
        (["--eager"] if size.harness_only else [])
    wall, rss, out = run_measured(cmd, cwd=work)
    res.add("memory", f"training run over {curated + noisy:,} clips ({curated:,} curated + {noisy:,} noisy), "
            f"{size.cache_mels} mels: features on disk", f"{on_disk:.1f} GB")
    res.add("memory", "peak RSS of that training run (fold 0, 1 epoch, whole-fold validation)", f"{rss / 1024:.2f} GB",
            f"target <= 4 GB; features read from the cache as needed (beyond --feature-ram-gb {FatConfig().feature_ram_gb:g}, curated + noisy together); {wall:.0f} s")
    res.commands["memory"] = " ".join(cmd[1:])
    qd = qd_big_csv(work, size.qd_csv_mb)
    code = f"""
import json, time
from src.quickdraw import data
t = time.time(); ts = data.load_train({qd!r}, per_class=2000); print(json.dumps({{"n": len(ts.y), "s": time.time() - t}}))"""
    wall, rss, out = run_measured([sys.executable, "-c", code], cwd=work)
    r = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    mb = sum(os.path.getsize(os.path.join(qd, "train_simplified", f)) for f in os.listdir(os.path.join(qd, "train_simplified")))
    res.add("memory", f"Quick Draw reader over {mb / 2**30:.2f} GB of train_simplified CSVs, --per-class 2000",
            f"{rss:.0f} MB peak RSS", f"{r['n']:,} drawings kept, read in {r['s']:.1f} s")
    code = f"""
import json, time, numpy as np
from src.quickdraw import data
from src.quickdraw.config import QDConfig
from src.quickdraw.pipeline import make_batches
ts = data.load_train({qd!r}, per_class=2000)
out = {{}}
for model in ("cnn", "lstm"):
    cfg = QDConfig(model=model)
    b = make_batches(ts.ink, np.zeros((len(ts.y), 1)), cfg, train=True, seed=0)
    t = time.time(); n = 0
    for i in range(min(len(b), 60)):
        n += len(b[i][0])
    out[model] = n / (time.time() - t)
print(json.dumps(out))"""
    r, _ = py(code)
    res.add("memory", "Quick Draw training input, 64-px time-coloured rasters with augmentation", f"{r['cnn']:,.0f} drawings/s", "one process")
    res.add("memory", "Quick Draw training input, stroke-3 with augmentation", f"{r['lstm']:,.0f} drawings/s", "one process")


def qd_big_csv(work: str, mb: int) -> str:
    """A Quick Draw layout of about `mb` MB: the demo's categories, drawings repeated under new key_ids."""
    import pandas as pd

    from src.quickdraw.demo import make_demo

    root = os.path.join(work, f"qd-{mb}mb")
    if os.path.isdir(root):
        return root
    demo = make_demo(os.path.join(work, "demo-quickdraw"))
    os.makedirs(os.path.join(root, "train_simplified"))
    files = sorted(os.listdir(os.path.join(demo, "train_simplified")))
    next_key = 10**15
    for f in files:
        base = pd.read_csv(os.path.join(demo, "train_simplified", f))
        per_row = base.to_csv(index=False).count("\n") and len(base.to_csv(index=False)) / len(base)
        reps = max(1, int(mb * 2**20 / len(files) / per_row / len(base)))
        with open(os.path.join(root, "train_simplified", f), "w") as out:
            out.write(",".join(base.columns) + "\n")
            for r in range(reps):
                chunk = base.copy()
                chunk["key_id"] = range(next_key, next_key + len(base))
                next_key += len(base)
                chunk.to_csv(out, index=False, header=False)
    return root


def scale_out(res: Results, size: Size, work: str) -> None:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        os.path.join(ROOT, "tests", "test_distribute.py::test_two_workers_match_one_process_and_only_the_chief_writes")],
                       cwd=ROOT, capture_output=True, text=True)
    res.add("scale-out", "2 MultiWorkerMirroredStrategy workers on 127.0.0.1 vs 1 process, same global batch",
            "losses agree (rtol 2e-3)" if r.returncode == 0 else "FAILED", "tests/test_distribute.py")


def first_run(res: Results, size: Size, work: str) -> None:
    d = os.path.join(work, "first-run")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    steps = [[sys.executable, "-m", "src.cv", "--fold", "0"], [sys.executable, "-m", "src.predict"],
             [sys.executable, "-m", "src.score", "submissions/submission.csv", "data/demo-fat2019.solution.csv"]]
    walls, cpus, outs = [], [], []
    for cmd in steps:
        wall, _, out, cpu = run_measured(cmd, cwd=d, env={"KERAS_HOME": os.path.join(d, "keras-home")}, cpu=True)
        walls.append(wall)
        cpus.append(cpu)
        outs.append(out)
    total = sum(walls)
    fold = [l for l in outs[0].splitlines() if l.startswith("fold 0 lwlrap")][-1].split()[-1]
    test = [l for l in outs[2].splitlines() if l.startswith("lwlrap ")][-1].split()[1]
    res.add("first run", "src.cv --fold 0 && src.predict && src.score on the demo, empty folder",
            f"{total / 60:.1f} min", f"fold-0 lwlrap {fold}, demo test lwlrap {test}; target <= 3 min, fold 0 >= 0.9")
    # Where the time went: the fold's own per-epoch clock, and how busy the CPUs were.
    import glob

    import pandas as pd

    hist = pd.read_csv(glob.glob(os.path.join(d, "work", "*", "cnn", "fold0", "history.csv"))[0])
    sec = hist["seconds"].to_numpy()
    res.add("first run", "src.cv: before the first epoch (demo data, features, TensorFlow start)",
            f"{walls[0] - sec.sum():.0f} s", "src.cv's wall time less its epochs (includes saving the fold at the end)")
    res.add("first run", "src.cv: epoch 1", f"{sec[0]:.1f} s", "includes tracing the train step (and XLA-compiling it where XLA is on)")
    plan = re.search(r"validate (\d+) curated clips.*of (\d+) steps", outs[0])
    res.add("first run", f"src.cv: epochs 2-{len(sec)}", f"{sec[1:].sum():.0f} s",
            f"{sec[1:].mean():.1f} s per epoch of {plan[2]} training steps plus scoring the {plan[1]} validation clips")
    res.add("first run", "src.predict, src.score", f"{walls[1]:.0f} s, {walls[2]:.1f} s")
    res.add("first run", "CPU time / wall time over the three commands", f"{sum(cpus) / total:.2f}",
            f"of {os.cpu_count()} core(s): the run keeps the CPUs busy, it does not wait on input")
    compute_profile(res, d)


def compute_profile(res: Results, work: str) -> None:
    """The default model's training step against what this CPU can do at all (a large float32
    matmul): whether the step is limited by arithmetic or by overheads."""
    code = """
import json, time, numpy as np, keras, tensorflow as tf
from src.fat2019.config import FatConfig
from src.fat2019 import models
from src.kit.flops import training_gflop
from src.kit.batches import no_autotune
from src.kit import distribute
cfg = FatConfig()
mixed, jit, why = distribute.auto_speed([], distribute.cpu_flags())     # what a fold chooses on this CPU
if mixed:
    keras.mixed_precision.set_global_policy(distribute.mixed_policy([]))
m = models.build(cfg, 80)
m.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=models.loss(cfg)); m.jit_compile = jit
rng = np.random.default_rng(0)
n = 4 * cfg.batch_size
x = rng.normal(size=(n, cfg.n_features, cfg.crop_frames, 1)).astype(np.float32)
y = (rng.random((n, 81)) < 0.05).astype(np.float32)
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(cfg.batch_size).repeat().with_options(no_autotune())
m.fit(ds, steps_per_epoch=4, epochs=1, verbose=0)         # trace + compile, off the clock
t = []
for _ in range(3):
    t0 = time.time(); m.fit(ds, steps_per_epoch=4, epochs=1, verbose=0); t.append((time.time() - t0) / 4)
a = tf.constant(rng.normal(size=(2048, 2048)).astype(np.float32))
mm = tf.function(lambda a: a @ a, jit_compile=True); mm(a).numpy()
tm = []
for _ in range(5):
    t0 = time.time(); mm(a).numpy(); tm.append(time.time() - t0)
print(json.dumps({"step": min(t), "gflop": training_gflop(m, cfg.batch_size), "matmul": 2 * 2048**3 / min(tm) / 1e9,
                  "width": cfg.width, "how": f"{keras.mixed_precision.global_policy().name}, XLA {jit}"}))"""
    r, _ = py(code, env={"KERAS_HOME": os.path.join(work, "keras-home")})
    res.add("first run", f"training step of the default CNN (width {r['width']}, batch 32, {r['how']}), best of 3",
            f"{r['step']:.2f} s", f"{r['gflop']:.0f} GFLOP of convolutions and dense layers: "
            f"{r['gflop'] / r['step']:.0f} GFLOPS")
    res.add("first run", "float32 2048x2048 matmul on this CPU (XLA), best of 5", f"{r['matmul']:.0f} GFLOPS",
            "about the most this CPU's arithmetic gives; the step above is arithmetic, not overhead")


def quality(res: Results, size: Size, work: str) -> None:
    layout = fat_layout(work, size.name == "smoke")
    from benchmarks import baselines

    b = baselines.fat_baseline(layout, os.path.join(work, "feature-cache"))
    res.add("quality", "FAT2019 real: MFCC/log-mel statistics + logistic regression, test lwlrap", f"{b['test']:.4f}",
            f"out-of-fold {b['oof']:.4f} on the same 5 folds")
    if size.name != "smoke" and os.path.isdir(os.path.join(SHARED, "quickdraw")):
        qd = os.path.join(work, "qd-real-32")
        if not os.path.isdir(qd):
            subprocess.run([sys.executable, os.path.join(SHARED, "make_quickdraw_layout.py"), "--out", qd, "--classes",
                            "32"], check=True, capture_output=True)
        q = baselines.qd_baseline(qd)
        res.add("quality", "Quick Draw real, 32 categories: 32x32 raster + logistic regression, test MAP@3",
                f"{q['map3']:.4f}", f"top-1 {q['top1']:.4f}")
    if not size.deep_quality:
        res.add("quality", "deep models on the real data", "not run", "--quick: see the README's tables, or run without --quick")
        return
    for name, cmd in deep_runs(layout, work):
        wall, _, out = run_measured(cmd, cwd=work)
        res.add("quality", name, out.strip().splitlines()[-1], f"{wall / 60:.0f} min")


def deep_runs(layout: str, work: str) -> list[tuple[str, list[str]]]:
    """The default FAT2019 model's 5 folds, predict and score; Quick Draw's study and 345 categories."""
    py_ = sys.executable
    qd_all = os.path.join(work, "qd-real-345")
    if not os.path.isdir(qd_all):
        subprocess.run([py_, os.path.join(SHARED, "make_quickdraw_layout.py"), "--out", qd_all], check=True,
                       capture_output=True)
    return [("FAT2019 default, 5 folds (src.cv --fold all --resume)", [py_, "-m", "src.cv", "--data-dir", layout, "--fold", "all", "--resume"]),
            ("FAT2019 default: predict", [py_, "-m", "src.predict", "--data-dir", layout, "--out", os.path.join(work, "fat.csv")]),
            ("FAT2019 default: test lwlrap", [py_, "-m", "src.score", os.path.join(work, "fat.csv"), layout + ".solution.csv"]),
            ("Quick Draw class-count study 8/16/32", [py_, "-m", "src.quickdraw.study", "--data-dir", os.path.join(work, "qd-real-32"),
                                                     "--classes", "8,16,32", "--max-minutes", "4"]),
            ("Quick Draw 345 categories, fold 0", [py_, "-m", "src.quickdraw.cv", "--data-dir", qd_all, "--fold", "0"])]


# ---------------------------------------------------------------------------------------- report

def _bars(res: Results, name: str, title: str, values: dict) -> None:
    res.figures.append((name, title, values))


def write(res: Results, out: str, info: dict, size: Size, wall: float) -> str:
    from src.kit import atomic, plots

    os.makedirs(out, exist_ok=True)
    for name, title, values in res.figures:
        import pandas as pd

        plots.plot_values(pd.Series(values), os.path.join(out, name), title)
    lines = ["# Benchmark results", "",
             f"`python -m benchmarks.run{'' if size.name == 'full' else ' --' + size.name}` on {info['date']}: "
             f"{info['cpus']} CPU(s), {info['cpu']}, GPU: {', '.join(info['gpu']) or 'none'}; Python {info['python']}, "
             f"TensorFlow {info['tensorflow']}, Keras {info['keras']}, numpy {info['numpy']}, pandas {info['pandas']}, "
             f"librosa {info['librosa']}, scikit-learn {info['scikit-learn']}. Whole run: {wall / 60:.1f} min.", ""]
    for section, rows in res.rows.items():
        lines += [f"## {section}", "", "| measure | value | note |", "|---|---|---|"]
        lines += [f"| {w} | {v} | {n} |" for w, v, n in rows]
        if section in res.commands:
            lines += ["", f"Input: {res.commands[section]}"]
        pngs = [n for n, _, _ in res.figures if n.startswith(section.split()[0][:5])]
        lines += [""] + [f"![{p}]({p})" for p in pngs] + [""]
    path = os.path.join(out, "RESULTS.md")
    atomic.write_text(path, "\n".join(lines) + "\n")
    return path


SECTIONS = {"features": features, "pipeline": pipeline, "predict": predict_speed, "memory": memory,
            "scale-out": scale_out, "first run": first_run, "quality": quality}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="everything but the long real-data training runs")
    mode.add_argument("--smoke", action="store_true", help="seconds-sized, to check the harness itself")
    ap.add_argument("--only", default=None, help=f"comma list of sections: {', '.join(SECTIONS)}")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks"), help="where RESULTS.md and the PNGs go")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one, removed after)")
    args = ap.parse_args(argv)
    size = SIZES["smoke" if args.smoke else "quick" if args.quick else "full"]
    out_dir = os.path.abspath(args.out)
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="kit-bench-"))
    os.makedirs(work, exist_ok=True)
    os.chdir(work)                  # folds/, cache/, work/ of every step land in the scratch folder
    t0 = time.time()
    info = machine()
    res = Results()
    wanted = args.only.split(",") if args.only else list(SECTIONS)
    for name in wanted:
        if name == "scale-out" and not size.multiworker or name == "first run" and not size.first_run:
            continue
        t_section = time.time()
        try:
            SECTIONS[name](res, size, work)
        except Exception as e:          # one broken section must not lose the others' figures
            res.add(name, "section failed", "FAILED", f"{type(e).__name__}: {str(e).splitlines()[-1][:300] if str(e) else ''}")
            print(f"benchmarks: section {name} failed:\n{e}", file=sys.stderr, flush=True)
        print(f"benchmarks: {name} done in {(time.time() - t_section) / 60:.1f} min", flush=True)
    path = write(res, out_dir, info, size, time.time() - t0)
    print(f"benchmarks: wrote {path} ({(time.time() - t0) / 60:.1f} min)")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
