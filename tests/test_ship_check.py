"""`python -m src.kernels check NAME`: the built kernel run here as Kaggle would (fake /kaggle root,
offline, the installed kit hidden) matches local prediction; a staged weight changed after
`dataset` fails it, naming the run and fold; runs of different features are each scored on their
own; a kernel built for another staged dataset is refused; the training kernel finishes with runs
and a submission; the comparison names differing rows and columns; --kaggle-versions (slow: builds
a virtual environment once) under Kaggle's versions."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import TINY_FLAGS, background_job
from kaggle_stub import USER
from src.kit.errors import KitError
from src.ship import check, kernels


def stage_and_build(name: str, *data: str) -> None:
    assert kernels.main(["dataset", name, "--dry-run", "--owner", USER, *data]) == 0
    assert kernels.main(["build", name, "--owner", USER]) == 0


# ------------------------------------------------------------------- the kernels, run as Kaggle would

# FAT2019's predict kernel is checked on runs trained through `kernels train` (test_ship_train.py:
# test_imported_runs_ship_and_their_kernel_predicts_what_predict_writes), a changed weight included.

@pytest.mark.slow
def test_check_quickdraw_matches_local_words(qd_tiny, capsys):
    stage_and_build("quickdraw")
    capsys.readouterr()
    assert kernels.main(["check", "quickdraw"]) == 0
    out = capsys.readouterr().out
    assert "check: kernel submission.csv equals local prediction (" in out
    kernel = pd.read_csv("kernels/quickdraw/check/kernel-submission.csv", dtype=str)
    local = pd.read_csv("kernels/quickdraw/check/local-submission.csv", dtype=str)
    assert list(kernel.columns) == ["key_id", "word"] and kernel.equals(local) and len(kernel) > 0


@background_job("training_kernel_check", last=True)
def _training_kernel_check(folder):
    """On a tiny layout: the folds file, `build --kind train`, then `check --kind train` (the
    kernel trains three folds and predicts, about 50 s here), each by the lane's worker."""
    import conftest
    from conftest import TINY_FLAGS, write_tiny_layout

    write_tiny_layout(os.path.join(folder, "fat"))
    train_args = " ".join(TINY_FLAGS + ["--epochs", "1"])
    steps = [["src.folds", "--data-dir", "fat", "--n-folds", "3"],
             ["src.kernels", "build", "freesound", "--owner", USER, "--kind", "train", "--data-dir", "fat",
              "--train-args", train_args],
             ["src.kernels", "check", "freesound", "--kind", "train", "--data-dir", "fat"]]
    done = []
    for step in steps:
        done.append(conftest.LANE.module(step[0], step[1:], cwd=folder))
        if done[-1].returncode != 0:
            break
    return done, folder


@pytest.fixture
def training_kernel_check(background):
    return background.result("training_kernel_check")


@pytest.mark.slow
def test_check_training_kernel_finishes_with_runs_and_a_submission(training_kernel_check):
    done, folder = training_kernel_check
    assert [r.returncode for r in done] == [0, 0, 0], done[-1].stdout[-2000:] + done[-1].stderr[-3000:]
    out = done[-1].stdout
    assert "running kernels/freesound/build-train/kernel.py" in out
    assert "check: the training kernel finished, wrote runs cnn (3 folds) and a submission.csv (4 rows)" in out
    meta = json.load(open(os.path.join(folder, "kernels/freesound/build-train/kernel-metadata.json")))
    assert meta["id"] == f"{USER}/kit-freesound-train" and meta["dataset_sources"] == []
    assert meta["enable_internet"] is False and meta["competition_sources"] == ["freesound-audio-tagging-2019"]


def test_check_needs_a_built_kernel(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert kernels.main(["check", "quickdraw"]) == 2
    assert "python -m src.kernels build quickdraw first" in capsys.readouterr().err
    assert kernels.main(["check", "freesound", "--kind", "train"]) == 2
    assert "python -m src.kernels build freesound --kind train first" in capsys.readouterr().err


def test_the_kernel_process_is_offline_and_cannot_import_the_kit(tmp_path):
    env = check.hide_kit(str(tmp_path), sys.executable)        # itself checks that `import src` fails
    code = "import socket\ntry:\n    socket.create_connection(('192.0.2.1', 443), timeout=1)\n" \
           "except OSError as e:\n    print(e)\n"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert "no internet (a Kaggle kernel runs offline): refused connection to 192.0.2.1" in r.stdout


# --------------------------------------------------------------------------------------- comparing

def write(path, rows, columns):
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return str(path)


FAT_COLUMNS = ["fname", "Bass_drum", "Buzz"]


def test_compare_byte_equal_and_within_tolerance(tmp_path):
    a = write(tmp_path / "a.csv", [["a.wav", 0.25, 0.5], ["b.wav", 0.125, 1.0]], FAT_COLUMNS)
    assert check.compare(a, a, "fname", 1e-4) == \
        "check: kernel submission.csv equals local prediction (2 rows, byte for byte)"
    b = write(tmp_path / "b.csv", [["a.wav", 0.25, 0.50002], ["b.wav", 0.125, 1.0]], FAT_COLUMNS)
    line = check.compare(b, a, "fname", 1e-4)
    assert line.startswith("check: kernel submission.csv equals local prediction (2 rows; scores within tolerance")
    assert "max abs score difference 2e-05 (fname a.wav, column Buzz)" in line


def test_compare_names_the_rows_and_columns_that_differ(tmp_path):
    local = write(tmp_path / "l.csv", [["a.wav", 0.25, 0.5], ["b.wav", 0.125, 1.0], ["c.wav", 0.0, 0.0]],
                  FAT_COLUMNS)
    kernel = write(tmp_path / "k.csv", [["a.wav", 0.25, 0.5], ["b.wav", 0.5, 1.0], ["c.wav", 0.0, 0.25]],
                   FAT_COLUMNS)
    with pytest.raises(KitError) as e:
        check.compare(kernel, local, "fname", 1e-4)
    msg = str(e.value)
    assert e.value.exit_code == 1 and "2 of 3 rows differ" in msg
    assert "max abs score difference 0.375 (fname b.wav, column Bass_drum)" in msg
    assert "first differing fnames: b.wav (Bass_drum: kernel 0.5, local 0.125); c.wav (Buzz: kernel 0.25" in msg

    qd = ["key_id", "word"]
    local = write(tmp_path / "ql.csv", [["9000", "cat dog owl"], ["9001", "sun car bus"]], qd)
    kernel = write(tmp_path / "qk.csv", [["9000", "cat owl dog"], ["9001", "sun car bus"]], qd)
    with pytest.raises(KitError, match=r"1 of 2 rows differ; first differing key_ids: 9000 \(word: kernel "
                                       r"'cat owl dog', local 'cat dog owl'\)"):
        check.compare(kernel, local, "key_id", 1e-4)
    kernel = write(tmp_path / "qk2.csv", [["9000", "cat dog owl"], ["9002", "sun car bus"]], qd)
    with pytest.raises(KitError, match=r"its rows differ from row 2 on \(key_id kernel 9002, local 9001\)"):
        check.compare(kernel, local, "key_id", 1e-4)
    kernel = write(tmp_path / "qk3.csv", [["9000", "cat dog owl"]], ["key_id", "words"])
    with pytest.raises(KitError, match=r"its columns differ from column 2 on"):
        check.compare(kernel, local, "key_id", 1e-4)


def test_the_versions_file_pins_kaggles_image():
    reqs = check.kaggle_requirements()
    pins = check.pins(reqs)
    assert pins == {"tensorflow": "2.20.0", "keras": "3.13.2", "numpy": "2.0.2", "pandas": "2.2.2",
                    "scipy": "1.16.3", "librosa": "0.11.0", "soundfile": "0.13.1", "scikit-learn": "1.6.1"}
    assert "the issue text of this project" in open(check.VERSIONS_FILE).read()
    assert os.path.basename(check.venv_dir(reqs)).startswith("venv-")
    assert check.venv_dir(reqs) != check.venv_dir(reqs[:-1])          # another list, another environment


# ------------------------------------------------------------------ under Kaggle's package versions

@pytest.fixture(scope="module")
def kaggle_venv():
    """The Kaggle-versions environment, built if needed (minutes, network); skipped when it cannot be."""
    t0 = time.time()
    try:
        python = check.kaggle_python()
    except (KitError, subprocess.CalledProcessError) as e:
        pytest.skip(f"the Kaggle-versions virtual environment cannot be built here (no network to PyPI?): {e}")
    print(f"kaggle venv ready in {time.time() - t0:.0f}s: {python}")
    return python


@pytest.mark.slow
def test_check_with_kaggle_versions(kaggle_venv, fat_tiny, capsys):
    got = check.installed_versions(kaggle_venv, ["tensorflow-cpu", "tensorflow", "keras", "numpy"])
    assert (got["tensorflow-cpu"] or got["tensorflow"]) == "2.20.0" and got["keras"] == "3.13.2"
    stage_and_build("freesound", "--data-dir", "fat")
    capsys.readouterr()
    assert kernels.main(["check", "freesound", "--data-dir", "fat", "--kaggle-versions"]) == 0
    out = capsys.readouterr().out
    assert "TensorFlow 2.20.0, Keras 3.13.2, numpy 2.0.2, Kaggle versions" in out
    assert "check: kernel submission.csv equals local prediction (4 rows" in out


@pytest.mark.slow
def test_check_quickdraw_with_kaggle_versions(kaggle_venv, qd_tiny, capsys):
    stage_and_build("quickdraw")
    capsys.readouterr()
    assert kernels.main(["check", "quickdraw", "--kaggle-versions"]) == 0
    out = capsys.readouterr().out
    assert "TensorFlow 2.20.0, Keras 3.13.2, numpy 2.0.2, Kaggle versions" in out
    assert "check: kernel submission.csv equals local prediction (" in out


@pytest.mark.slow
def test_kernel_scores_each_run_with_its_own_features(fat_tiny, capsys):
    """A kernel's dataset keeps every run's folds in one folder. Keyed by that folder, two runs of
    different mel bands were both scored on one run's features (the CNN takes any height, so
    nothing failed) and the kernel's submission differed from local prediction."""
    flags = list(TINY_FLAGS)
    flags[flags.index("--n-mels") + 1] = "16"            # the 'cnn' run has 32
    subprocess.run([sys.executable, "-m", "src.cv", "--data-dir", "fat", *flags, "--fold", "0", "--epochs", "1",
                    "--name", "m16"], check=True, capture_output=True)
    stage_and_build("freesound", "--data-dir", "fat", "--runs", "cnn,m16")
    capsys.readouterr()
    assert kernels.main(["check", "freesound", "--data-dir", "fat"]) == 0
    out = capsys.readouterr().out
    assert "check: kernel submission.csv equals local prediction" in out
    log = open("kernels/freesound/check/kernel.log").read()
    assert log.count("features test (logmel-") >= 2 and "m16 fold 0 loaded" in log
