"""Faults a run can meet and must survive: several processes taking over a dead one's lock, a
--resume that would change the network, a kill while continuing a finished fold, a fresh start
over unfinished progress, a fold whose weights do not fit its config (issue: right or absent)."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, TINY_FLAGS, one
from src import cv, predict
from src.kit.errors import KitWarning
from src.kit.fold_runner import FoldRun


class Killed(BaseException):
    """A kill at a named point, in-process: not caught by `except Exception`, so every file stays
    as the kill left it (only the fold's lock is released by its context manager)."""


def killed(argv: list[str], point: str) -> None:
    """src.cv with `argv`, killed at `point`."""
    def kill_point(name: str) -> None:
        if name == point:
            raise Killed(name)
    with pytest.MonkeyPatch.context() as mp, pytest.raises(Killed):
        mp.setattr("src.kit.fold_runner.kill_point", kill_point)
        cv.main(argv)


def cv_flags(*extra):
    return ["--data-dir", "fat", *TINY_FLAGS, "--eager", "--fold", "0", *extra]   # eager: see conftest.TINY_FLAGS


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.slow
def test_several_takeovers_of_a_dead_processs_lock_have_exactly_one_winner(tmp_path):
    lock_path = tmp_path / "fold0.lock"
    lock_path.write_text(json.dumps({"pid": 999999999, "host": os.uname().nodename, "command": "killed"}))
    start = time.time() + 2.0
    code = f"""
import sys, time
sys.path.insert(0, {ROOT!r})
from src.kit import lock
from src.kit.errors import KitError
read = lock._holder
def slow_read(path):            # widen any window between reading the holder and acting on it
    holder = read(path)
    time.sleep(0.3)
    return holder
lock._holder = slow_read
while time.time() < {start}:
    pass
try:
    with lock.exclusive({str(lock_path)!r}, "fold folder x"):
        print("won", flush=True)
        time.sleep(2.0)
except KitError:
    print("refused", flush=True)
"""
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(outs) == ["refused"] * 5 + ["won"], outs
    assert not lock_path.exists()                                  # the winner removed it when done


@pytest.mark.slow
def test_resume_refuses_a_flag_that_changes_the_network(fat_tiny, capsys):
    # fat_tiny: fold 0 trained one epoch with TINY_FLAGS
    assert cv.main(cv_flags("--resume", "--epochs", "2", "--width", "8", "--n-mels", "16")) == 2
    err = capsys.readouterr().err
    assert "--width 8 (trained with 4)" in err and "--n-mels 16 (trained with 32)" in err
    assert json.load(open(one("work/fat-*/cnn/fold0/config.json")))["width"] == 4     # nothing changed
    assert cv.main(cv_flags("--resume", "--epochs", "2", "--patience", "5")) == 0     # safe flags: continued
    assert "resuming after epoch 1" in capsys.readouterr().out


@pytest.mark.slow
def test_a_kill_while_continuing_a_finished_fold_leaves_it_as_it_was(fat_tiny, capsys):
    final = one("work/fat-*/cnn/fold0")
    before = {n: read(os.path.join(final, n)) for n in ("metrics.json", "best.weights.h5", "state.json", "oof.csv")}
    killed(cv_flags("--resume", "--epochs", "3"), "after-state-2")   # the continuation is killed after epoch 2
    with FoldRun(final, "val_lwlrap"):                              # the next start of anything on this fold
        pass
    assert {n: read(os.path.join(final, n)) for n in before} == before
    assert json.load(open(final + ".partial/state.json"))["epoch"] == 2
    capsys.readouterr()
    assert cv.main(cv_flags("--resume", "--epochs", "3")) == 0     # the continuation goes on, then replaces it
    assert "resuming after epoch 2" in capsys.readouterr().out
    assert json.load(open(os.path.join(final, "state.json")))["epoch"] == 3 and not os.path.exists(final + ".partial")


@pytest.mark.slow
def test_a_fresh_start_over_unfinished_progress_is_refused_unless_restarted(tiny, capsys):
    killed(cv_flags("--epochs", "2"), "after-state-1")
    partial = one("work/fat-*/cnn/fold0.partial")
    capsys.readouterr()
    assert cv.main(cv_flags("--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert "1 epoch(s) committed" in err and "--resume" in err and "--restart" in err
    assert json.load(open(os.path.join(partial, "state.json")))["epoch"] == 1        # kept
    assert cv.main(cv_flags("--epochs", "2", "--resume", "--restart")) == 2
    assert cv.main(cv_flags("--epochs", "2", "--restart")) == 0
    assert "restart: discarding 1 committed epoch(s)" in capsys.readouterr().out
    assert not os.path.exists(partial) and os.path.isdir(partial[:-len(".partial")])


@pytest.mark.slow
def test_predict_leaves_out_a_fold_whose_weights_do_not_fit_its_config(fat_tiny, capsys):
    # fat_tiny: three folds trained one epoch each
    cfg_path = one("work/fat-*/cnn/fold1/config.json")
    cfg = json.load(open(cfg_path))
    cfg["width"] = 8                                               # the weights are width 4
    json.dump(cfg, open(cfg_path, "w"))
    capsys.readouterr()
    with pytest.warns(KitWarning, match=r"left out, their models do not load: cnn/fold1 \("):
        assert predict.main(["--data-dir", "fat"]) == 0
    assert "2 fold(s)" in capsys.readouterr().out.splitlines()[-2]
    assert predict.main(["--data-dir", "fat", "--strict", "--out", "strict.csv"]) != 0
    assert not os.path.exists("strict.csv")


@pytest.mark.slow
def test_a_kill_inside_an_epoch_resumes_from_its_last_checkpoint_exactly(tiny, capsys):
    """--checkpoint-minutes: a checkpoint after every batch here; killed after batch 1 of epoch 2,
    the fold resumes at batch 2 and ends with the weights of an uninterrupted run."""
    import keras

    flags = cv_flags("--epochs", "3", "--checkpoint-minutes", "1e-9")
    assert cv.main(flags + ["--name", "whole"]) == 0
    assert "XLA False; eager steps;" in capsys.readouterr().out
    killed(flags + ["--name", "cut"], "after-step-state-2-1")
    state = json.load(open(one("work/fat-*/cut/fold0.partial/state.json")))
    assert (state["epoch"], state["step"]) == (1, 1)
    capsys.readouterr()
    assert cv.main(flags + ["--name", "cut", "--resume"]) == 0
    assert "resume: epoch 2 from batch 2 of 2" in capsys.readouterr().out
    whole, cut = (keras.models.load_model(one(f"work/fat-*/{n}/fold0/last.keras"), compile=False) for n in ("whole", "cut"))
    for a, b in zip(whole.get_weights(), cut.get_weights()):
        assert (a == b).all()
    assert json.load(open(one("work/fat-*/cut/fold0/state.json")))["epoch"] == 3


class Clock:
    """fold_runner's `time`: a minute passes at every reading, so --max-minutes runs out at a known batch."""

    def __init__(self):
        self.t = 0.0

    def time(self) -> float:
        self.t += 60.0
        return self.t


@pytest.mark.slow
def test_max_minutes_is_checked_inside_the_epoch(tiny, capsys):
    # fold_runner's clock readings, a minute each: the start (1); epoch 1 begins (2), its batch 1 ends
    # (3), it ends (4: its training time, 5: its time, 6: the limit check, 5 min since the start < 6:
    # go on); epoch 2 begins (7), its batch 1 ends (8: 7 min > 6), so the fold stops inside epoch 2.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("src.kit.fold_runner.time", Clock())
        assert cv.main(cv_flags("--epochs", "2", "--max-minutes", "6", "--checkpoint-minutes", "0")) == 0
    assert "--max-minutes 6.0 reached inside epoch 2, after batch 1 of 2" in capsys.readouterr().out
    final = one("work/fat-*/cnn/fold0")
    state = json.load(open(os.path.join(final, "state.json")))
    assert (state["epoch"], state["step"], state["stopped"]) == (1, 1, "time")
    assert json.load(open(os.path.join(final, "metrics.json")))["stopped"] == "time"
    assert cv.main(cv_flags("--epochs", "2", "--resume")) == 0
    assert "resume: epoch 2 from batch 2 of 2" in capsys.readouterr().out
    assert json.load(open(os.path.join(final, "state.json")))["epoch"] == 2
