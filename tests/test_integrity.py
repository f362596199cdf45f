"""Kill safety and one writer per fold: a process killed (SIGKILL, at a named point via
KIT_KILL_AT) leaves either the old complete fold or a resumable new one, never a folder mixing
two runs, and predict never uses a half-made fold.

Kills are simulated in-process (conftest.killed_in_process: SimulatedKill where SIGKILL would be;
the fold's lock is released by its context manager, which a real kill does not do), except the kill
between the two renames of the move into place, a real SIGKILL of a `python -m src.cv` process: the
one that leaves a lock file and a renamed-aside folder of a dead process for the next start."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY_FLAGS, background_job, killed_in_process, one
from src import cv, predict


def cv_flags(*extra):
    return ["--data-dir", "fat", *TINY_FLAGS, "--eager", "--fold", "0", *extra]   # eager: see conftest.TINY_FLAGS


def weights_of(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.slow
def test_a_retrain_killed_midway_leaves_the_finished_fold_in_use_then_resumes(fat_tiny, capsys):
    final = one("work/fat-*/cnn/fold0")                                     # finished: 1 epoch, cv_flags' config
    before = weights_of(os.path.join(final, "best.weights.h5"))
    killed_in_process(cv.main, cv_flags("--epochs", "3", "--lr", "0.01"), "after-state-1")   # a fresh retrain
    assert weights_of(os.path.join(final, "best.weights.h5")) == before    # the finished fold is untouched
    assert json.load(open(os.path.join(final + ".partial", "state.json")))["epoch"] == 1
    capsys.readouterr()
    assert predict.main(["--data-dir", "fat"]) == 0                        # predict uses the finished ones only
    assert "1 run(s), 3 fold(s)" in capsys.readouterr().out
    assert cv.main(cv_flags("--resume", "--epochs", "3")) == 0             # continues the killed retrain
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert not os.path.exists(final + ".partial")
    h = pd.read_csv(os.path.join(final, "history.csv"))
    assert h["epoch"].tolist() == [1, 2, 3]
    assert json.load(open(os.path.join(final, "config.json")))["lr"] == 0.01


def check_complete_fold(others=()):
    final = one("work/fat-*/cnn/fold0")
    assert sorted(os.listdir(os.path.dirname(final))) == ["fold0", *others]   # no partial, no temp, no lock
    state = json.load(open(os.path.join(final, "state.json")))
    metrics = json.load(open(os.path.join(final, "metrics.json")))
    assert state["done"] and state["epoch"] == 2 == metrics["epochs_run"]
    assert pd.read_csv(os.path.join(final, "history.csv"))["epoch"].tolist() == [1, 2]
    assert not [p for p in os.listdir(final) if ".e0" in p or p.endswith(".tmp")]   # no stamped checkpoint left
    oof = pd.read_csv(os.path.join(final, "oof.csv"))
    assert metrics["val_lwlrap"] == pytest.approx(state["best"])
    assert len(oof) == metrics["n_val"]


@pytest.mark.slow
@pytest.mark.parametrize("at", ["before-state-2", "before-done", "before-move"])
def test_every_kill_point_ends_in_a_complete_fold(tiny, capsys, at):
    """Killed while committing an epoch, after metrics.json, before the move into place: a later
    start finishes or resumes it, and the fold's files all come from one run."""
    killed_in_process(cv.main, cv_flags("--epochs", "2"), at)
    assert cv.main(cv_flags("--epochs", "2", "--resume")) == 0
    check_complete_fold()


@background_job("sigkilled_between_renames", needs=("fat_tiny_runs",), last=True)
def _sigkilled_between_renames(folder):
    """A copy of the session's tiny run whose fold 0 a retrain (`python -m src.cv`) was replacing
    when SIGKILL came between the two renames: (that process, the copy)."""
    import conftest

    root = conftest.copy_fat_tiny(os.path.join(folder, "run"))
    return conftest.LANE.run([sys.executable, "-m", "src.cv", *cv_flags("--epochs", "2")], cwd=root,
                             env={"KIT_KILL_AT": "between-renames"}), root


@pytest.fixture
def sigkilled_between_renames(background, monkeypatch):
    r, root = background.result("sigkilled_between_renames")
    monkeypatch.chdir(root)
    return r


@pytest.mark.slow
def test_a_real_sigkill_between_the_renames_ends_in_a_complete_fold(sigkilled_between_renames, capsys):
    """SIGKILL of a real process while moving a finished retrain over the old fold (the old one
    renamed aside, the new one not yet in place): the next start takes over the dead process's
    lock, removes the renamed-aside folder and finishes the move."""
    from src.kit.atomic import pid_alive

    r = sigkilled_between_renames                                           # the old fold: the session's tiny run
    assert r.returncode == -9, (r.returncode, r.stdout[-1500:], r.stderr[-1500:])
    final = os.path.join(os.path.dirname(one("work/fat-*/cnn/fold1")), "fold0")
    assert not os.path.exists(final) and os.path.isfile(os.path.join(final + ".partial", "metrics.json"))
    assert [p for p in os.listdir(os.path.dirname(final)) if p.endswith(".old.tmp")]   # the old one, set aside
    assert not pid_alive(json.load(open(final + ".lock"))["pid"])         # its lock names a dead process
    assert cv.main(cv_flags("--epochs", "2", "--resume")) == 0
    check_complete_fold(["fold1", "fold2"])


@pytest.mark.slow
def test_a_second_process_on_the_same_fold_is_refused_by_name(fat_tiny, capsys):
    from src.fat2019 import data as fat_data
    from src.fat2019.config import FatConfig

    name = fat_data.load(FatConfig(data_dir="fat")).name
    lock_path = os.path.join("work", name, "cnn", "fold0.lock")
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
sys.path.insert(0, {ROOT!r})
from src.kit import lock
with lock.exclusive({lock_path!r}, "x"):
    print("held", flush=True)
    time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert cv.main(cv_flags("--epochs", "1")) == 2
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "in use by another process" in err and "-c" in err
    finally:
        holder.kill()
        holder.wait()
    capsys.readouterr()
    assert cv.main(cv_flags("--epochs", "1", "--resume")) == 0             # the dead holder's lock is taken over
    assert "already finished" in capsys.readouterr().out                   # (the session's tiny run: no training)


@background_job("two_demo_generations", last=True)
def _two_demo_generations(folder):
    """Two processes generating both built-in demos into the same empty folder at once."""
    code = f"""
import sys
sys.path.insert(0, {ROOT!r})
from src.fat2019 import demo as demo_data
from src.quickdraw.demo import make_demo
print(demo_data.ensure("data/demo-fat2019"), make_demo("data/demo-quickdraw"))
"""
    import conftest

    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=folder, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=conftest.LANE.env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    return procs, outs, pathlib.Path(folder)


@pytest.fixture
def two_demo_generations(background):
    return background.result("two_demo_generations")


@pytest.mark.slow
def test_two_first_demo_generations_at_once_both_succeed(two_demo_generations):
    procs, outs, tmp_path = two_demo_generations
    assert all(p.returncode == 0 for p in procs), [o[1][-800:] for o in outs]
    fat = tmp_path / "data" / "demo-fat2019"
    cur = pd.read_csv(fat / "train_curated.csv")
    assert all((fat / "train_curated" / f).is_file() for f in cur["fname"])
    assert sorted(os.listdir(tmp_path / "data")) == ["demo-fat2019", "demo-fat2019.solution.csv",
                                                     "demo-quickdraw", "demo-quickdraw.solution.csv"]


def test_oof_rows_of_clips_no_longer_in_the_data_are_dropped_not_fatal(tmp_path):
    from src.kit import runs
    from src.kit.metrics import lwlrap

    d = tmp_path / "r" / "fold0"
    d.mkdir(parents=True)
    pd.DataFrame({"fname": ["a.wav", "gone.wav", "b.wav"], "X": [0.9, 0.5, 0.1], "Y": [0.1, 0.5, 0.9]}).to_csv(
        d / "oof.csv", index=False)
    truth = {"a.wav": [1, 0], "b.wav": [0, 1]}
    scores, ids, _, _ = runs.oof_scores(
        {"r": [runs.Fold("r", 0, str(d), {}, {})]}, ["X", "Y"],
        lambda f: np.array([truth.get(i, [np.nan, np.nan]) for i in f], dtype=float), lwlrap)
    assert ids == ["a.wav", "b.wav"] and scores["r"] == 1.0


def test_a_perfect_score_ends_the_fold_with_the_same_best_epoch_and_resume_keeps_it(tmp_path):
    """lwlrap and MAP@3 cannot beat 1.0, so the epochs patience would still wait are skipped;
    the kept epoch is the one patience alone keeps, and --resume does not train past the stop."""
    import keras

    from src.kit.fold_runner import EpochScore, FoldRun

    scores = [0.5, 1.0, 0.9, 1.0, 0.7, 0.8, 0.9, 0.6, 0.6, 0.6]
    x, y = np.zeros((4, 2), "float32"), np.zeros((4, 1), "float32")

    def train(name, best_possible, resume=False):
        with FoldRun(str(tmp_path / name), "score") as run:
            if not run.begin({"epochs": 10}, 10, resume):
                return None
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            model.compile("sgd", "mse")

            def evaluate(m):
                s = scores[run.epoch]              # run.epoch: epochs committed before this one
                return EpochScore(s, pd.DataFrame({"fname": ["a"], "p": [s]}))

            model.fit(x, y, epochs=run.last_epoch, initial_epoch=run.epoch, verbose=0,
                      callbacks=[run.callback(evaluate, 3, 0, 0, best_possible=best_possible)])
            return run.finish(model, name)

    waited, stopped = train("patience", np.inf), train("perfect", 1.0)
    assert (waited["stopped"], waited["epochs_run"], waited["best_epoch"]) == ("early", 5, 2)
    assert (stopped["stopped"], stopped["epochs_run"], stopped["best_epoch"]) == ("perfect", 2, 2)
    assert stopped["score"] == waited["score"] == 1.0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "perfect" / "oof.csv"),
                                  pd.read_csv(tmp_path / "patience" / "oof.csv"))
    assert train("perfect", 1.0, resume=True) is None
