"""Kaggle kernels: a kernel without its models dataset says where it looked; build and dataset
leave nothing stale; bad input gets one line; the real kaggle CLI pushes, uploads and follows them
against a local stand-in of Kaggle's API. The kernels ship the session's tiny runs (conftest
`fat_tiny`). That a built kernel, run as Kaggle runs it, writes what local prediction writes and
refuses changed weights is `kernels check`'s test (test_ship_check.py for Quick Draw and the
training kernel, test_ship_train.py for FAT2019's runs trained through `kernels train`)."""
from __future__ import annotations

import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from conftest import KIT_HIDER
from kaggle_stub import USER, kaggle_env, kaggle_stub  # noqa: F401 (fixtures)
from src.ship import kernels
from src.fat2019.competition import FAT2019

FAT_COMP, QD_COMP = "freesound-audio-tagging-2019", "quickdraw-doodle-recognition"
HIDE_KIT = KIT_HIDER        # the sitecustomize `kernels check` gives a kernel: no kit, no internet


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
