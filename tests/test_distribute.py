"""Scale-out on tf.distribute: two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy,
TF_CONFIG) train the same fold as one process on the same global batch, and only the chief
writes; TPU and bad settings get one clear line."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY_FLAGS, background_job, one, write_tiny_layout
from src.kit import distribute
from src.kit.errors import KitError

# Dropout draws a mask per replica, so it cannot match one process; everything else must.
FLAGS = [*TINY_FLAGS, "--fold", "0", "--dropout", "0", "--no-spec-augment", "--epochs", "3", "--batch-size", "8"]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@background_job("two_workers", last=True)
def _two_workers(folder):
    """One process, then two workers on 127.0.0.1 (the same command with TF_CONFIG), on one tiny
    layout: (single, worker outputs, folder)."""
    import conftest

    lane = conftest.LANE
    write_tiny_layout(os.path.join(folder, "fat"))
    cmd = [sys.executable, "-m", "src.cv", "--data-dir", "fat", *FLAGS]
    single = lane.run(cmd + ["--work-dir", "single"], cwd=folder)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    env = dict(lane.env, PYTHONPATH=ROOT)                 # the session's starting environment
    procs = [subprocess.Popen(cmd + ["--work-dir", "multi", "--strategy", "multiworker"], cwd=folder,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                                                "index": i}})},
                              start_new_session=True) for i in range(2)]
    with lane.lock:
        lane.procs.update(procs)
    deadline = time.time() + 300
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=max(1, deadline - time.time())))
    finally:
        for p in procs:                  # a worker waiting for a dead peer ignores SIGTERM
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        with lane.lock:
            lane.procs.difference_update(procs)
    return single, [(p.returncode, out, err) for p, (out, err) in zip(procs, outs)], folder


@pytest.fixture
def two_workers(background, monkeypatch):
    single, workers, folder = background.result("two_workers")
    monkeypatch.chdir(folder)
    return single, workers


@pytest.mark.slow
def test_two_workers_match_one_process_and_only_the_chief_writes(two_workers):
    single, workers = two_workers
    assert single.returncode == 0, single.stderr[-2000:]
    assert [w[0] for w in workers] == [0, 0], [w[2][-1500:] for w in workers]
    outs = [w[1:] for w in workers]
    assert "MultiWorkerMirroredStrategy, 2 replica(s) over 2 worker(s)" in outs[0][0] and "chief" in outs[0][0]
    a = pd.read_csv(one("single/fat-*/cnn/fold0/history.csv"))
    b = pd.read_csv(one("multi/fat-*/cnn/fold0/history.csv"))
    assert a["epoch"].tolist() == b["epoch"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=2e-3)            # same global batch, same result
    np.testing.assert_allclose(b["val_lwlrap"], a["val_lwlrap"], atol=0.05)
    assert os.listdir(one("multi/fat-*/cnn")) == ["fold0"]                 # one set of outputs: the chief's
    assert outs[1][0].strip().splitlines()[-1].startswith("fold 0 lwlrap")  # the other worker trained alike


@pytest.mark.slow
def test_strategy_choice_and_clear_errors(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}))
    assert not distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not distribute.is_chief()
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(KitError, match="needs TF_CONFIG on every worker"):
        distribute.get_strategy("multiworker")
    with pytest.raises(KitError, match="--strategy tpu: no TPU found"):      # no TPU on these machines
        distribute.get_strategy("tpu")
    with pytest.raises(KitError, match="unknown strategy"):
        distribute.get_strategy("horovod")
    assert distribute.get_strategy("default").num_replicas_in_sync == 1


def test_multiworker_refuses_what_workers_cannot_agree_on(tiny, capsys):
    from src import cv

    monkey = {"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}})}
    os.environ.update(monkey)
    try:
        assert cv.main(["--data-dir", "fat", *FLAGS, "--strategy", "multiworker", "--max-minutes", "5"]) == 2
    finally:
        del os.environ["TF_CONFIG"]
    assert "--resume and --max-minutes are not supported" in capsys.readouterr().err


@pytest.mark.slow
def test_jit_compiles_the_train_step_on_one_device_only_and_matches_plain_graphs():
    """--jit (XLA) is a speed-up, never a different model: one step gives the same loss and weights."""
    import keras

    from src.kit.fold_runner import FoldRun

    def build():
        m = keras.Sequential([keras.Input((6, 5, 1)), keras.layers.Conv2D(4, 3, padding="same", use_bias=False),
                              keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="sigmoid")])
        m.compile(optimizer=keras.optimizers.AdamW(1e-2), loss="binary_crossentropy")
        return m

    run = object.__new__(FoldRun)
    run.resuming = False
    x = np.random.default_rng(0).normal(size=(8, 6, 5, 1)).astype("float32")
    y = (np.arange(24).reshape(8, 3) % 2).astype("float32")
    got = {}
    for jit in (False, True):
        model, _ = run.model("default", 8, 7, build, jit=jit)
        assert model.jit_compile is jit         # Keras' own choice on a CPU-only machine is off
        losses = [float(model.train_on_batch(x, y)) for _ in range(3)]
        got[jit] = losses, [w.copy() for w in model.get_weights()]
    np.testing.assert_allclose(got[True][0], got[False][0], rtol=1e-4)
    for a, b in zip(got[True][1], got[False][1]):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    model, _ = run.model("mirrored", 8, 7, build, jit=True)
    assert not model.jit_compile               # under a tf.distribute strategy Keras' choice (off) stays
