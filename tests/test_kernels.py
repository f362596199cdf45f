"""Kaggle kernels: the built script run as Kaggle runs it (a fake /kaggle root via KAGGLE_KIT_ROOT,
the repository's src hidden from it) writes what local prediction writes; weights that do not
load as trained are refused; bad input gets one line; the real kaggle CLI pushes, uploads and
follows them against a local stand-in of Kaggle's API. The kernels ship the session's tiny runs
(conftest `fat_tiny`, `qd_tiny`): they check that what is shipped predicts what was trained, which
any trained fold shows (the demo runs' learning is tested in test_pipeline/test_quickdraw_e2e)."""
from __future__ import annotations

import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY_FLAGS, background_job, write_tiny_layout
from kaggle_stub import USER, kaggle_env, kaggle_stub  # noqa: F401 (fixtures)
from src.ship import kernels
from src.fat2019.competition import FAT2019

FAT_COMP, QD_COMP = "freesound-audio-tagging-2019", "quickdraw-doodle-recognition"
HIDE_KIT = f"""
import os, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path[:] = [p for p in sys.path if not os.path.realpath(p or os.getcwd()).startswith({ROOT!r})]
"""


def hiding_env(d, base: dict | None = None) -> dict:
    """An environment (`base`, else this process's) whose sitecustomize, written into `d`, hides
    the installed kit."""
    d = pathlib.Path(d)
    d.mkdir(parents=True, exist_ok=True)
    (d / "sitecustomize.py").write_text(HIDE_KIT)
    env = {k: v for k, v in (base if base is not None else os.environ).items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(d)
    return env


def check_hidden(env):
    r = subprocess.run([sys.executable, "-c", "import src"], cwd=env["PYTHONPATH"], env=env, capture_output=True,
                       text=True)
    assert r.returncode != 0 and "No module named 'src'" in r.stderr


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    """A sitecustomize that hides the installed kit: `import src` fails unless the kernel unpacked it."""
    env = hiding_env(tmp_path_factory.mktemp("hide"))
    check_hidden(env)
    return env


def only_fold0():
    """Leave fold 0 alone in the copied FAT run: a smaller dataset to stage where the fold count
    does not matter."""
    for d in glob.glob("work/fat-*/cnn/fold[12]"):
        shutil.rmtree(d)


def stage_and_build(run_dir, name, monkeypatch):
    monkeypatch.chdir(run_dir)
    data = ["--data-dir", "fat"] if name == "freesound" else []          # the tiny layout; Quick Draw: the demo
    assert kernels.main(["dataset", name, "--dry-run", "--owner", USER, *data]) == 0
    assert kernels.main(["build", name, "--owner", USER]) == 0
    return run_dir / "kernels" / name


def fake_root(tmp_path, data_dir, competition, dataset_dir):
    root = tmp_path / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    os.symlink(data_dir, root / "input" / competition)
    shutil.copytree(dataset_dir, root / "input" / "my-uploaded-models")
    return root


def run_kernel(script, root, env):
    return subprocess.run([sys.executable, str(script)], cwd=root / "working", capture_output=True, text=True,
                          env={**env, "KAGGLE_KIT_ROOT": str(root)}, timeout=600)


def stage_build_predict(name: str) -> str:
    """Python code for a process in a run's folder: stage the models dataset, build the kernel,
    predict locally into local.csv (what stage_and_build and the local predict do in-process)."""
    data = ["--data-dir", "fat"] if name == "freesound" else []
    module = "src.predict" if name == "freesound" else "src.quickdraw.predict"
    return f"""
import importlib
from src.ship import kernels
print("dataset exit", kernels.main(["dataset", {name!r}, "--dry-run", "--owner", {USER!r}, *{data!r}]))
print("build exit", kernels.main(["build", {name!r}, "--owner", {USER!r}]))
print("predict exit", importlib.import_module({module!r}).main([*{data!r}, "--out", "local.csv"]))
"""


def shipped_kernel_runs(folder, run_dir, name, competition, data_dir, break_weights=False):
    """Stage, build and predict in `run_dir` (a process of its own), then run the built kernel as
    Kaggle runs it; with `break_weights`, run it again after one weight of fold 0 was halved."""
    import conftest

    lane, folder = conftest.LANE, pathlib.Path(folder)
    prep = lane.run([sys.executable, "-c", stage_build_predict(name)], cwd=run_dir)
    built = pathlib.Path(run_dir) / "kernels" / name
    if "build exit 0" not in prep.stdout:
        return prep, None, None, built, None
    root = fake_root(folder, data_dir, competition, built / "dataset")
    env = hiding_env(folder / "hide", lane.env)
    check_hidden(env)
    kernel = [sys.executable, str(built / "build" / "kernel.py")]
    env = {**env, "KAGGLE_KIT_ROOT": str(root)}
    good = lane.run(kernel, cwd=root / "working", env=env, timeout=600)
    bad = None
    if break_weights and good.returncode == 0:
        os.replace(root / "working" / "submission.csv", folder / "kaggle-submission.csv")
        weights = next((root / "input" / "my-uploaded-models").glob("cnn.fold0.weights.h5"))
        with h5py.File(weights, "r+") as f:
            w = next(n for n in _datasets(f) if f[n].ndim == 4)
            f[w][...] = f[w][...] * 0.5
        bad = lane.run(kernel, cwd=root / "working", env=env, timeout=600)
    elif good.returncode == 0:
        os.replace(root / "working" / "submission.csv", folder / "kaggle-submission.csv")
    return prep, good, bad, built, root


@background_job("freesound_kernel_runs", needs=("fat_tiny_runs",), last=True)
def _freesound_kernel_runs(folder):
    from conftest import copy_fat_tiny

    run_dir = copy_fat_tiny(os.path.join(folder, "run"))
    return shipped_kernel_runs(folder, run_dir, "freesound", FAT_COMP, run_dir / "fat", break_weights=True) + (
        run_dir, pathlib.Path(folder))


@pytest.fixture
def freesound_kernel_runs(background):
    return background.result("freesound_kernel_runs")


@pytest.mark.slow
def test_freesound_kernel_writes_what_predict_writes_and_refuses_bad_weights(freesound_kernel_runs):
    prep, r, bad, built, root, run_dir, folder = freesound_kernel_runs
    assert "dataset exit 0" in prep.stdout and "build exit 0" in prep.stdout, prep.stdout[-2000:] + prep.stderr[-3000:]
    manifest = json.load(open(built / "dataset" / "kit-manifest.json"))
    assert manifest["competition"] == FAT_COMP and list(manifest["runs"]) == ["cnn"]
    assert not list((built / "dataset").glob("*.keras"))                 # weights, not .keras files
    meta = json.load(open(built / "build" / "kernel-metadata.json"))
    assert meta["enable_internet"] is False and meta["competition_sources"] == [FAT_COMP]
    assert meta["dataset_sources"] == [f"{USER}/kit-freesound-models"]
    assert "predict exit 0" in prep.stdout                                 # the same runs, locally
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "unpacked to" in r.stdout and "reference outputs match" in r.stdout and "done in" in r.stdout
    local = pd.read_csv(run_dir / "local.csv").set_index("fname")
    kaggle = pd.read_csv(folder / "kaggle-submission.csv").set_index("fname")
    assert list(kaggle.columns) == list(local.columns) and list(kaggle.index) == list(local.index)
    assert np.abs(kaggle.to_numpy() - local.to_numpy()).max() < 1e-3

    # one weight changed in the shipped file: the kernel names the run and fold, writes nothing
    assert bad.returncode == 1
    assert "run cnn fold 0" in bad.stderr and "refusing to write a submission" in bad.stderr
    assert not (root / "working" / "submission.csv").exists()


def _datasets(f):
    out = []
    f.visititems(lambda n, o: out.append(n) if isinstance(o, h5py.Dataset) else None)
    return out


@background_job("quickdraw_kernel_run", needs=("qd_tiny_run",), last=True)
def _quickdraw_kernel_run(folder):
    import conftest

    run_dir = pathlib.Path(folder) / "run"
    shutil.copytree(conftest.LANE.result("qd_tiny_run"), run_dir, symlinks=True)
    return shipped_kernel_runs(folder, run_dir, "quickdraw", QD_COMP, run_dir / "data" / "demo-quickdraw") + (
        run_dir, pathlib.Path(folder))


@pytest.fixture
def quickdraw_kernel_run(background):
    return background.result("quickdraw_kernel_run")


@pytest.mark.slow
def test_quickdraw_kernel_writes_the_same_words(quickdraw_kernel_run):
    prep, r, _, built, root, run_dir, folder = quickdraw_kernel_run
    assert "dataset exit 0" in prep.stdout and "build exit 0" in prep.stdout, prep.stdout[-2000:] + prep.stderr[-3000:]
    assert "predict exit 0" in prep.stdout
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    local = pd.read_csv(run_dir / "local.csv", dtype=str)
    kaggle = pd.read_csv(folder / "kaggle-submission.csv", dtype=str)
    assert kaggle.equals(local)


@pytest.mark.slow
def test_kernel_without_a_models_dataset_says_where_it_looked(tmp_path, hidden, fat_tiny, monkeypatch):
    only_fold0()
    built = stage_and_build(fat_tiny, "freesound", monkeypatch)
    root = fake_root(tmp_path, fat_tiny / "fat", FAT_COMP, built / "dataset")
    shutil.rmtree(root / "input" / "my-uploaded-models")
    r = run_kernel(built / "build" / "kernel.py", root, hidden)
    assert r.returncode == 1 and "kit-manifest.json" in r.stderr and f"{root}/input/*/" in r.stderr


@pytest.mark.slow
def test_build_is_clean_and_bad_input_is_one_line(tmp_path, fat_tiny, monkeypatch, capsys):
    only_fold0()
    built = stage_and_build(fat_tiny, "freesound", monkeypatch)
    (built / "build" / "stale.py").write_text("old")
    (built / "dataset" / "old-run.fold3.weights.h5").write_text("old")
    assert kernels.main(["build", "freesound", "--owner", USER]) == 0
    assert kernels.main(["dataset", "freesound", "--dry-run", "--owner", USER, "--data-dir", "fat"]) == 0
    assert sorted(os.listdir(built / "build")) == ["kernel-metadata.json", "kernel.py"]
    assert not (built / "dataset" / "old-run.fold3.weights.h5").exists()
    monkeypatch.chdir(tmp_path)                                            # a folder with no trained runs
    capsys.readouterr()
    assert kernels.main(["dataset", "freesound", "--dry-run", "--owner", USER]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "python -m src.cv" in err[0]
    assert kernels.main(["push", "quickdraw"]) == 2
    assert "python -m src.kernels build quickdraw" in capsys.readouterr().err


def test_runs_whose_folds_differ_are_refused(tmp_path):
    from src.kit import runs
    from src.kit.errors import KitError

    folds = [runs.Fold("cnn", k, "", {"labels": ["a"], "n_mels": m}, {}) for k, m in ((0, 64), (1, 128))]
    with pytest.raises(KitError, match="run cnn: its folds were trained with different n_mels"):
        runs.check_consistent(folds, FAT2019.consistent_keys)


@pytest.mark.slow
def test_push_dataset_status_against_the_stub(fat_tiny, kaggle_stub, kaggle_env, monkeypatch, capsys):
    only_fold0()
    built = stage_and_build(fat_tiny, "freesound", monkeypatch)
    script = (built / "build" / "kernel.py").read_text()
    assert kernels.main(["push", "freesound"]) == 0
    body = kaggle_stub.calls("SaveKernel")[0]
    assert body["text"] == script and body["enableInternet"] is False and body["isPrivate"] is True
    assert body["competitionDataSources"] == [FAT_COMP]
    assert body["datasetDataSources"] == [f"{USER}/kit-freesound-models"]
    assert json.load(open(built / "build" / "pushed.json"))["version"] == 1

    kaggle_stub.refuse("SaveKernel", "Notebook size exceeds the limit")
    capsys.readouterr()
    assert kernels.main(["push", "freesound"]) == 1
    assert "Notebook size exceeds the limit" in capsys.readouterr().err

    assert kernels.main(["dataset", "freesound", "--owner", USER, "--data-dir", "fat"]) == 0   # first time: create
    names = kaggle_stub.names()
    assert "GetDatasetStatus" in names and "CreateDataset" in names and names.count("StartBlobUpload") >= 4
    created = kaggle_stub.calls("CreateDataset")[0]
    assert created["slug"] == "kit-freesound-models" and created["ownerSlug"] == USER
    uploaded = {b["name"] for b in kaggle_stub.calls("StartBlobUpload")}
    assert "kit-manifest.json" in uploaded and "cnn.fold0.weights.h5" in uploaded
    kaggle_stub.datasets.add(f"{USER}/kit-freesound-models")
    assert kernels.main(["dataset", "freesound", "--owner", USER, "--data-dir", "fat"]) == 0   # then: a new version
    assert kaggle_stub.calls("CreateDatasetVersion")

    kaggle_stub.kernel_statuses[:] = [("ERROR", "Your notebook tried to allocate more memory than is available")]
    capsys.readouterr()
    assert kernels.main(["status", "freesound"]) == 1
    err = capsys.readouterr().err
    assert "error" in err and "allocate more memory" in err
    kaggle_stub.kernel_statuses[:] = [("RUNNING", None), ("COMPLETE", None)]
    assert kernels.main(["status", "freesound", "--wait", "--poll", "0.1"]) == 0
    assert kernels.main(["submit", "freesound", "-m", "demo"]) == 0
    sub = kaggle_stub.calls("CreateCodeSubmission")[0]
    assert sub["kernelSlug"] == "kit-freesound-predict" and sub["kernelVersion"] == 1


TRAIN_ARGS = " ".join(TINY_FLAGS + ["--epochs", "1"])
PREP_TRAINING_KERNEL = f"""
from src.fat2019 import folds
from src.ship import kernels
print("folds exit", folds.main(["--data-dir", "fat", "--n-folds", "3"]))
print("build exit", kernels.main(["build", "freesound", "--owner", {USER!r}, "--kind", "train", "--data-dir", "fat",
                                  "--train-args", {TRAIN_ARGS!r}]))
"""


@background_job("training_kernel", last=True)
def _training_kernel(folder):
    """The folds file and the --kind train kernel made on a tiny layout, then the kernel run as
    Kaggle runs it: (preparation, kernel run, folder)."""
    import conftest

    folder = pathlib.Path(folder)
    write_tiny_layout(str(folder / "fat"))
    prep = conftest.LANE.run([sys.executable, "-c", PREP_TRAINING_KERNEL], cwd=folder)
    root = folder / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    os.symlink(folder / "fat", root / "input" / FAT_COMP)
    env = hiding_env(folder / "hide", conftest.LANE.env)
    check_hidden(env)
    script = folder / "kernels" / "freesound" / "build-train" / "kernel.py"
    r = conftest.LANE.run([sys.executable, str(script)], cwd=root / "working", env={**env, "KAGGLE_KIT_ROOT": str(root)},
                          timeout=600) if script.exists() else None
    return prep, r, folder


@pytest.fixture
def training_kernel(background):
    return background.result("training_kernel")


@pytest.mark.slow
def test_training_kernel_trains_every_fold_and_predicts(training_kernel):
    """--kind train: the folds file travels inside the script (iterative-stratification is not in
    Kaggle's image); the kernel trains every fold on the competition data and writes a submission."""
    prep, r, folder = training_kernel
    assert "folds exit 0" in prep.stdout and "build exit 0" in prep.stdout, prep.stdout[-2000:] + prep.stderr[-3000:]
    meta = json.load(open(folder / "kernels/freesound/build-train/kernel-metadata.json"))
    assert meta["id"] == f"{USER}/kit-freesound-train" and meta["dataset_sources"] == []
    root = folder / "kaggle"
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "oof lwlrap" in r.stdout and (root / "working" / "submission.csv").exists()
    assert len(list((root / "working" / "work").glob("freesound-audio-tagging-2019-*/cnn/fold*/best.weights.h5"))) == 3
