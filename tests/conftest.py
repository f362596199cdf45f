"""Shared fixtures: a tiny FAT2019 layout, configs small enough for a 2-core CPU, tiny trained
runs made once per test session (copied where a test changes them), and one short learning demo
training per competition (full suite only). See tests/PYRAMID.md for the tiers."""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable

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
# test_distribute's XLA test keep the default path covered (XLA or not, as kit.distribute.auto_speed
# picks for the CPU). Trainings in pytest's own process
# that test a fold's life (kills, resumes, refusals) add --eager: tracing the train step costs ~4 s a
# model there, the steps a few ms; the session's shared runs (fat_tiny_runs, qd_tiny_run, the demo
# runs, the kernels) train through traced graphs, as users do.


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny layout under tmp_path/fat (dataset name 'fat'), with the cwd moved to tmp_path so
    folds/, work/ and cache/ land there."""
    monkeypatch.chdir(tmp_path)
    return write_tiny_layout(str(tmp_path / "fat"))


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _kit_hider() -> str:
    from src.ship.check import SITECUSTOMIZE

    return SITECUSTOMIZE.format(repo=os.path.realpath(ROOT))


# A sitecustomize.py that hides this checkout (and any other copy of the kit) from a process and
# keeps it off the internet: a kernel run as Kaggle runs it must import only the kit it unpacked.
KIT_HIDER = _kit_hider()


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


def killed_in_process(main, argv: list[str], at: str) -> None:
    """`main(argv)` killed at kill point `at` in this process: src/kit/errors.py raises
    SimulatedKill (a BaseException: no `except Exception` catches it) where a real run would get
    SIGKILL. Everything stays as the kill left it, except what `with`/`finally` blocks undo (the
    fold's lock is released; a real kill leaves a lock file whose holder is dead, taken over on
    the next start: tests/test_integrity.py keeps one real SIGKILL for that)."""
    from src.kit import errors

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(errors, "SIMULATE_KILLS", True)
        mp.setenv("KIT_KILL_AT", at)
        with pytest.raises(errors.SimulatedKill) as e:
            main(argv)
    assert str(e.value) == at


def copy_run(src, tmp_path, monkeypatch):
    """A private copy of a session run's folder under tmp_path, made the cwd (for tests that
    change the data or the runs)."""
    dst = tmp_path / "run"
    shutil.copytree(src, dst, symlinks=True)
    monkeypatch.chdir(dst)
    return dst


# ------------------------------------------------------------------------ the background lane
#
# Most of this suite runs in pytest's own process, which keeps one of two cores busy (TensorFlow's
# graph tracing is single-threaded). Work that runs as a subprocess anyway and whose result tests
# only read (the trained runs shared by many tests, the benchmark smoke run, the multi-process
# runs) is queued on one background lane, started when the session starts and run one job at a
# time, in the order the selected tests first need them; tests that only check such a result run
# last. A test that needs a job not started yet runs it at once, in its own process.


class _Job:
    def __init__(self, name: str, start: Callable[[str], object], needs: tuple[str, ...], last: bool):
        self.name, self.start, self.needs, self.last = name, start, needs, last
        self.started, self.done = False, threading.Event()
        self.value, self.error, self.folder = None, None, None
        self.seconds, self.where = None, None

    def run(self) -> None:
        t0 = time.perf_counter()
        self.where = "lane" if threading.current_thread().name == "test-background-lane" else "in a test"
        try:
            self.value = self.start(self.folder)
        except BaseException as e:  # noqa: BLE001 - reported to every test that needs it
            self.error = e
        finally:
            self.seconds = time.perf_counter() - t0
            self.done.set()


JOBS: dict[str, _Job] = {}


def background_job(name: str, needs: tuple[str, ...] = (), last: bool = False):
    """Register `start(folder) -> value` as the background job `name`; the fixture of the same
    name returns `background.result(name)` (the lane finds the jobs the selected tests need by
    their fixtures' names). `needs`: jobs it reads; `last`: the tests using it run at the end of
    the session (they only read its result)."""
    def register(start):
        JOBS[name] = _Job(name, start, needs, last)
        return start
    return register


class _Worker:
    """A warm worker process (tests/lane_worker.py) and its reply pipe."""

    def __init__(self, env: dict):
        read, write = os.pipe()
        self.log = tempfile.mktemp(prefix="lane-worker-", suffix=".log")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "lane_worker.py"), str(write)],
                                         stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write,), env=env,
                                         cwd=ROOT, text=True, start_new_session=True)
        os.close(write)
        self.replies, self.busy = os.fdopen(read, encoding="utf-8"), False

    def call(self, module: str, argv: list[str], cwd) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", module, *argv]           # what it stands for, in the result
        try:
            self.proc.stdin.write(json.dumps({"module": module, "argv": list(argv), "cwd": str(cwd)}) + "\n")
            self.proc.stdin.flush()
            line = self.replies.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            return subprocess.CompletedProcess(cmd, self.proc.wait(), "", f"the lane's worker died: see {self.log}")
        reply = json.loads(line)
        return subprocess.CompletedProcess(cmd, reply["rc"], reply["stdout"], reply["stderr"])


class Lane:
    def __init__(self, jobs: list[_Job]):
        # The environment as the session started: tests change os.environ (KIT_KILL_AT, TF_CONFIG,
        # KERAS_HOME, ...) while jobs start processes, and no job may inherit that.
        self.env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.queue, self.jobs = list(jobs), {j.name: j for j in jobs}
        self.lock, self.procs, self.stopped = threading.Lock(), set(), False
        self.workers: list[_Worker] = []
        self.thread = threading.Thread(target=self._loop, name="test-background-lane", daemon=True)

    def _loop(self) -> None:
        while True:
            with self.lock:
                if self.stopped or not self.queue:
                    return
                job = self.queue.pop(0)
                job.started = True
            job.run()

    def result(self, name: str):
        """The job's value, once it has run (now, here, if it had not started yet). Waiting for a
        `last` job, this process runs the other queued `last` jobs meanwhile (a second lane at the
        end of the session, when only tests that read such results are left)."""
        with self.lock:
            if name not in self.jobs:                     # not foreseen from the selected tests
                self.jobs[name] = JOBS[name]
                self.jobs[name].folder = tempfile.mkdtemp(prefix=f"{name}-")
            job = self.jobs[name]
            here = not job.started
            if here:
                if job in self.queue:
                    self.queue.remove(job)
                job.started = True
        if here:
            job.run()
        while job.last and not job.done.is_set():
            with self.lock:
                other = next((j for j in self.queue if j.last), None)
                if other is not None:
                    self.queue.remove(other)
                    other.started = True
            if other is None:
                break
            other.run()
        job.done.wait()
        if job.error is not None:
            raise RuntimeError(f"background job {name} failed: {job.error!r}") from job.error
        return job.value

    def run(self, cmd: list[str], cwd, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
        """subprocess.run with capture, in the session's starting environment (`self.env`, with
        `env` on top), killed (its process group) when the session ends early."""
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.Popen(cmd, cwd=cwd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        with self.lock:
            self.procs.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
            with self.lock:
                self.procs.discard(p)
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)

    def module(self, module: str, argv: list[str], cwd) -> subprocess.CompletedProcess:
        """`python -m module argv` in `cwd`, run by a warm worker of the lane (tests/lane_worker.py:
        the kit's CLI `main` in a process that has TensorFlow loaded already; a second one starts
        when the end of the session runs two jobs at once). What needs a process of its own (a
        kill, an environment, a strategy's devices) uses `run`."""
        with self.lock:
            worker = next((w for w in self.workers if not w.busy), None)
            if worker is None:
                worker = _Worker(self.env)
                self.workers.append(worker)
                self.procs.add(worker.proc)
            worker.busy = True
        try:
            return worker.call(module, argv, cwd)
        finally:
            worker.busy = worker.proc.poll() is not None     # a dead worker is never handed a job again

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            procs = list(self.procs)
        for p in procs:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass


LANE: Lane | None = None


def _jobs_for(items) -> list[_Job]:
    """The jobs the selected items need (with what those jobs need), in order of first need."""
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        for name in getattr(item, "fixturenames", ()):
            if name in JOBS:
                first.setdefault(name, i)
    order: list[str] = []

    def add(name):
        for dep in JOBS[name].needs:
            add(dep)
        if name not in order:
            order.append(name)

    for name in sorted(first, key=first.get):
        add(name)
    return [JOBS[n] for n in order]


@pytest.fixture(scope="session", autouse=True)
def background(request, tmp_path_factory):
    """The session's background lane (see above), started with the first test."""
    global LANE
    jobs = _jobs_for(request.session.items)
    for job in jobs:
        job.folder = str(tmp_path_factory.mktemp(job.name))
    LANE = Lane(jobs)
    LANE.thread.start()
    yield LANE
    LANE.stop()


def trained(lane: Lane, folder: str, module: str, *args: str) -> str:
    """`python -m module args` (a training, by the lane's worker) in `folder`, which it returns; a
    failure raises."""
    r = lane.module(module, list(args), cwd=folder)
    if r.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return folder


# ----------------------------------------------------------------------- tiny runs, made once

@background_job("fat_tiny_runs")
def _fat_tiny_runs(folder):
    write_tiny_layout(os.path.join(folder, "fat"))
    return trained(LANE, folder, "src.cv", "--data-dir", "fat", *TINY_FLAGS, "--fold", "all", "--epochs", "1")


@pytest.fixture(scope="session")
def fat_tiny_runs(background):
    """src.cv --fold all --epochs 1 on the tiny layout (cwd-relative: fat/, folds/, work/), 3
    folds of run 'cnn'. Read-only: tests that change it take `fat_tiny`, a copy."""
    import pathlib

    return pathlib.Path(background.result("fat_tiny_runs"))


def copy_fat_tiny(dst):
    """A copy of fat_tiny_runs at `dst`. A --data-dir's dataset name hashes its path, so the copy's
    folds/, cache/ and work/ entries are renamed to the copy's name (as if trained there). Changes
    no cwd and prints nothing (background jobs use it too)."""
    import pathlib

    from src.fat2019 import data as fat_data
    from src.kit import datadir

    dst = pathlib.Path(dst)
    shutil.copytree(LANE.result("fat_tiny_runs"), dst, symlinks=True)
    old = os.path.basename(one(str(dst / "work" / "fat-*")))
    new = datadir.dataset_name(str(dst / "fat"), fat_data.identity)
    for p in glob.glob(str(dst / "*" / (old + "*"))):
        os.rename(p, p.replace(old, new))
    return dst


@pytest.fixture
def fat_tiny(fat_tiny_runs, tmp_path, monkeypatch):
    """A private copy of fat_tiny_runs (see copy_fat_tiny), the cwd."""
    root = copy_fat_tiny(tmp_path / "run")
    monkeypatch.chdir(root)
    return root


# Quick Draw at tiny sizes (the demo data, 12 drawings per category, 3 folds).
QD_TINY = ["--per-class", "12", "--epochs", "1", "--min-steps", "0", "--batch-size", "32", "--n-folds", "3",
           "--no-jit"]
QD_TINY_CNN = QD_TINY + ["--model", "cnn", "--raster-size", "32", "--cnn-filters", "4", "--cnn-blocks", "2"]


@background_job("qd_tiny_run")
def _qd_tiny_run(folder):
    return trained(LANE, folder, "src.quickdraw.cv", "--fold", "0", *QD_TINY_CNN)


@pytest.fixture(scope="session")
def qd_tiny_run(background):
    """src.quickdraw.cv --fold 0 with QD_TINY_CNN on the generated demo (data/, folds/, work/),
    run 'cnn'. Read-only: tests that change it take `qd_tiny`, a copy."""
    import pathlib

    return pathlib.Path(background.result("qd_tiny_run"))


@pytest.fixture
def qd_tiny(qd_tiny_run, tmp_path, monkeypatch):
    """A private copy of qd_tiny_run, the cwd (the demo's dataset name does not hash its path)."""
    return copy_run(qd_tiny_run, tmp_path, monkeypatch)


# ------------------------------------------------------------ learning demo runs (full suite)

# The demo at a size a 2-core CPU trains in about a minute, still clearly learning.
FAT_DEMO_FLAGS = ["--sample-rate", "16000", "--n-mels", "32", "--n-fft", "1024", "--hop-length", "256",
                  "--crop-frames", "64", "--width", "8", "--blocks", "3", "--epochs", "12", "--batch-size", "16"]
QD_DEMO_FLAGS = ["--model", "cnn", "--raster-size", "32", "--cnn-filters", "8", "--cnn-blocks", "3",
                 "--per-class", "60", "--epochs", "8", "--min-steps", "0", "--batch-size", "32"]


@background_job("fat_demo_run")
def _fat_demo_run(folder):
    return trained(LANE, folder, "src.cv", "--fold", "0", *FAT_DEMO_FLAGS)


@background_job("qd_demo_run")
def _qd_demo_run(folder):
    return trained(LANE, folder, "src.quickdraw.cv", "--fold", "0", *QD_DEMO_FLAGS)


@pytest.fixture(scope="session")
def fat_demo_run(background):
    """src.cv --fold 0 on the built-in FAT2019 demo (generated; the default precision and XLA for this CPU), in its
    own folder: for the tests that need a model that learned (marked slow, see below)."""
    import pathlib

    return pathlib.Path(background.result("fat_demo_run"))


@pytest.fixture(scope="session")
def qd_demo_run(background):
    """src.quickdraw.cv --fold 0 on the built-in Quick Draw demo, in its own folder."""
    import pathlib

    return pathlib.Path(background.result("qd_demo_run"))


# Tests that need a learning demo run, or a real `kernels train` (tests/test_ship_train.py), are
# full-suite only, whoever wrote them.
SLOW_FIXTURES = {"fat_demo_run", "qd_demo_run", "kaggle_trained"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    # Order, for the background lane: first the test files that need none of its jobs (the lane
    # works meanwhile), then those that do (file order and contiguity kept, so module fixtures
    # are made once), and at the end the tests that only read a `last` job's result.
    def jobs(item):
        return [JOBS[n] for n in getattr(item, "fixturenames", ()) if n in JOBS]

    late = [i for i in items if any(j.last for j in jobs(i))]
    late_ids = {id(i) for i in late}
    waiting = {i.path for i in items if id(i) not in late_ids and jobs(i)}
    rest = [i for i in items if id(i) not in late_ids]
    items[:] = [i for i in rest if i.path not in waiting] + [i for i in rest if i.path in waiting] + late


def pytest_terminal_summary(terminalreporter):
    """How long each background job took and where it ran: what to move when the suite slows."""
    if LANE is None or not LANE.jobs:
        return
    done = [j for j in LANE.jobs.values() if j.seconds is not None]
    if done:
        terminalreporter.write_line(f"background jobs ({sum(j.seconds for j in done):.0f}s): " + ", ".join(
            f"{j.name} {j.seconds:.0f}s ({j.where})" for j in sorted(done, key=lambda j: -j.seconds)))
