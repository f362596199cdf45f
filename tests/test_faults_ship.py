"""Shipping faults, each reproduced first: a stale submission.csv submitted after a failed kernel
run, a kernel that accepts any models dataset of its competition, a dataset upload that loses a
file without a word, competition data mounted at /kaggle/input/competitions/<slug>/.

All traffic on loopback (tests/kaggle_stub.py); kernels run under a fake /kaggle root
(KAGGLE_KIT_ROOT) in a process that cannot import the repository's `src`.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import KIT_HIDER
from kaggle_stub import USER, kaggle_env, kaggle_stub  # noqa: F401 (fixtures)
from src.kit.errors import KitError
from src.ship import client as kc
from src.ship import kernels, runtime

QD_COMP = "quickdraw-doodle-recognition"
QD_KERNEL = f"{USER}/kit-quickdraw-predict"
HIDE_KIT = KIT_HIDER        # the sitecustomize `kernels check` gives a kernel: no kit, no internet


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    """Environment whose sitecustomize hides the installed kit: `import src` fails unless the
    kernel unpacked its own copy."""
    d = tmp_path_factory.mktemp("hide")
    (d / "sitecustomize.py").write_text(HIDE_KIT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(d)
    r = subprocess.run([sys.executable, "-c", "import src"], cwd=d, env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "No module named 'src'" in r.stderr
    return env


def run_kernel(script, root, env):
    return subprocess.run([sys.executable, str(script)], cwd=root / "working", capture_output=True, text=True,
                          env={**env, "KAGGLE_KIT_ROOT": str(root)}, timeout=600)


def empty_root(tmp_path):
    root = tmp_path / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    return root


def sha1(path) -> str:
    return hashlib.sha1(open(path, "rb").read()).hexdigest()


def build_info(script) -> dict:
    """The KIT_BUILD dict a built kernel.py carries."""
    line = next(ln for ln in open(script, encoding="utf-8") if ln.startswith("KIT_BUILD = "))
    return ast.literal_eval(line[len("KIT_BUILD = "):])


def one_line_error(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


# ---- 1: output / submit record and check the kernel version and status -------------------------

def hand_built_quickdraw_kernel(tmp_path, monkeypatch):
    """kernels/quickdraw/build/ as `build` leaves it (metadata + script), without a trained run."""
    monkeypatch.chdir(tmp_path)
    build = tmp_path / "kernels" / "quickdraw" / "build"
    meta = kc.kernel_metadata(USER, "kit-quickdraw-predict", "Kit quickdraw predict", "kernel.py", QD_COMP,
                              [f"{USER}/kit-quickdraw-models"], True)
    kc.write_json(build, kc.KERNEL_METADATA_FILE, meta)
    (build / "kernel.py").write_text("print('the kit kernel')\n")
    return tmp_path / "kernels" / "quickdraw"


@pytest.mark.slow
def test_output_of_a_failed_run_leaves_nothing_to_submit(kaggle_stub, kaggle_env, tmp_path, monkeypatch, capsys):
    kit = hand_built_quickdraw_kernel(tmp_path, monkeypatch)
    good = b"key_id,word\n1,cat dog owl\n"
    assert kernels.main(["push", "quickdraw"]) == 0                        # version 1 ...
    kaggle_stub.kernel_statuses[:] = [("COMPLETE", None)]                  # ... completes
    kaggle_stub.output_files = {"submission.csv": good}
    assert kernels.main(["output", "quickdraw"]) == 0
    assert kernels.main(["submit", "quickdraw", "-m", "v1"]) == 0
    assert len(kaggle_stub.calls("CreateSubmission")) == 1 and good in kaggle_stub.uploads.values()

    assert kernels.main(["push", "quickdraw"]) == 0                        # version 2 fails on Kaggle
    kaggle_stub.kernel_statuses[:] = [("ERROR", "Traceback: the models dataset is missing")]
    kaggle_stub.output_files = {}
    kaggle_stub.kernel_log = '[{"stream_name":"stderr","data":"Traceback"}]'
    capsys.readouterr()
    assert kernels.main(["output", "quickdraw"]) == 0
    assert not (kit / "output" / "submission.csv").exists()                # nothing left of version 1
    assert sorted(os.listdir(kit / "output")) == ["kit-output.json", "kit-quickdraw-predict.log"]
    record = json.load(open(kit / "output" / "kit-output.json"))
    assert (record["kernel"], record["version"], record["status"]) == (QD_KERNEL, 2, "error")
    assert record["downloaded"]
    # the status and the files asked for are the pushed version's
    assert kaggle_stub.calls("GetKernelSessionStatus")[-1].get("versionLabel") == "v2"
    assert kaggle_stub.calls("ListKernelSessionOutput")[-1].get("versionLabel") == "v2"
    out = capsys.readouterr().out
    assert "version 2" in out and "error" in out

    assert kernels.main(["submit", "quickdraw", "-m", "v2"]) != 0
    err = one_line_error(capsys)
    assert "version 2" in err and "error" in err
    assert len(kaggle_stub.calls("CreateSubmission")) == 1                 # nothing submitted


@pytest.mark.slow
def test_submit_refuses_the_output_of_an_older_version(kaggle_stub, kaggle_env, tmp_path, monkeypatch, capsys):
    hand_built_quickdraw_kernel(tmp_path, monkeypatch)
    assert kernels.main(["push", "quickdraw"]) == 0
    kaggle_stub.output_files = {"submission.csv": b"key_id,word\n1,cat dog owl\n"}
    assert kernels.main(["output", "quickdraw"]) == 0                     # version 1, complete
    assert kernels.main(["push", "quickdraw"]) == 0                        # version 2, output not fetched
    capsys.readouterr()
    assert kernels.main(["submit", "quickdraw", "-m", "stale"]) != 0
    err = one_line_error(capsys)
    assert "version 1" in err and "version 2" in err
    assert kaggle_stub.calls("CreateSubmission") == []

    (tmp_path / "kernels" / "quickdraw" / "output" / "kit-output.json").unlink()   # no record: refused too
    assert kernels.main(["submit", "quickdraw", "-m", "unknown"]) != 0
    assert "python -m src.kernels output quickdraw" in one_line_error(capsys)
    assert kaggle_stub.calls("CreateSubmission") == []


def test_submit_obeys_file_given_and_says_so(kaggle_stub, kaggle_env, tmp_path, monkeypatch, capsys):
    hand_built_quickdraw_kernel(tmp_path, monkeypatch)
    mine = tmp_path / "mine.csv"
    mine.write_bytes(b"key_id,word\n7,owl cat dog\n")
    capsys.readouterr()
    assert kernels.main(["submit", "quickdraw", "-m", "by hand", "--file", str(mine)]) == 0
    assert mine.read_bytes() in kaggle_stub.uploads.values()
    said = [ln for ln in capsys.readouterr().out.splitlines() if "--file" in ln]
    assert len(said) == 1 and str(mine) in said[0]


# ---- 2: the kernel runs only with the models dataset it was built with ------------------------

def fake_staged_dataset(kit_dir, created="2024-05-01 10:00:00") -> dict:
    manifest = {"kit": "kaggle-audio-doodle-kit", "competition": QD_COMP, "labels": ["cat", "dog", "owl"],
                "blend": {"weights": None, "fold_mean": "mean"}, "runs": {}, "created": created}
    os.makedirs(kit_dir / "dataset", exist_ok=True)
    with open(kit_dir / "dataset" / "kit-manifest.json", "w") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def test_build_without_a_staged_dataset_refuses_except_train(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert kernels.main(["build", "quickdraw", "--owner", USER]) == 2
    err = one_line_error(capsys)
    assert "python -m src.kernels dataset quickdraw first" in err and os.path.join("kernels", "quickdraw",
                                                                                   "dataset") in err
    assert not (tmp_path / "kernels" / "quickdraw" / "build").exists()
    assert kernels.main(["build", "quickdraw", "--owner", USER, "--kind", "train"]) == 0   # needs no dataset
    assert "manifest_sha1" not in build_info(tmp_path / "kernels" / "quickdraw" / "build-train" / "kernel.py")


def test_build_records_the_staged_manifest_hash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    kit = tmp_path / "kernels" / "quickdraw"
    fake_staged_dataset(kit)
    assert kernels.main(["build", "quickdraw", "--owner", USER]) == 0
    info = build_info(kit / "build" / "kernel.py")
    assert info["manifest_sha1"] == sha1(kit / "dataset" / "kit-manifest.json")
    assert info["manifest_sha1"][:12] in capsys.readouterr().out


def test_kernel_refuses_a_models_dataset_it_was_not_built_with(tmp_path, hidden, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kit = tmp_path / "kernels" / "quickdraw"
    manifest = fake_staged_dataset(kit)
    assert kernels.main(["build", "quickdraw", "--owner", USER]) == 0
    built = sha1(kit / "dataset" / "kit-manifest.json")
    root = empty_root(tmp_path)
    (root / "input" / QD_COMP).mkdir()
    older = root / "input" / "kit-quickdraw-models"                        # an older upload of the dataset
    older.mkdir()
    with open(older / "kit-manifest.json", "w") as f:
        json.dump({**manifest, "created": "2024-04-01 09:00:00"}, f, indent=2)
    r = run_kernel(kit / "build" / "kernel.py", root, hidden)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    assert built in r.stderr and sha1(older / "kit-manifest.json") in r.stderr and str(older) in r.stderr
    assert "reference outputs" not in r.stdout and not (root / "working" / "submission.csv").exists()


# ---- 3: dataset uploads verified file by file -------------------------------------------------

def test_dataset_upload_that_loses_a_file_fails_naming_it(qd_demo_run, kaggle_stub, kaggle_env, monkeypatch,
                                                          capsys):
    monkeypatch.chdir(qd_demo_run)
    assert kernels.main(["dataset", "quickdraw", "--owner", USER, "--dry-run"]) == 0
    staged = sorted(n for n in os.listdir("kernels/quickdraw/dataset") if n != kc.DATASET_METADATA_FILE)
    lost = next(n for n in staged if n.endswith(".weights.h5"))
    kaggle_stub.drop_files = {lost}                                        # accepted, then left out
    capsys.readouterr()
    assert kernels.main(["dataset", "quickdraw", "--owner", USER, "--poll", "0.05"]) == 1
    captured = capsys.readouterr()
    assert lost in captured.err and len(captured.err.strip().splitlines()) == 1
    assert "uploaded" not in captured.out.replace("Upload successful", "")
    assert kaggle_stub.calls("ListDatasetFiles")

    kaggle_stub.drop_files = set()                                         # again: a new version, all there
    ref = f"{USER}/kit-quickdraw-models"
    kaggle_stub.dataset_statuses[ref] = ["BLOBS_RECEIVED", "READY"]        # Kaggle still processing at first
    assert kernels.main(["dataset", "quickdraw", "--owner", USER, "--poll", "0.05"]) == 0
    assert kaggle_stub.calls("CreateDatasetVersion")
    assert sorted(n for n, _ in kaggle_stub.dataset_files[ref]) == staged
    assert f"{len(staged)} file(s)" in capsys.readouterr().out


@pytest.mark.slow
def test_verify_dataset_reads_every_page_and_names_what_is_missing(kaggle_stub, kaggle_env, tmp_path):
    folder = tmp_path / "ds"
    kc.write_json(folder, kc.DATASET_METADATA_FILE, kc.dataset_metadata(USER, "kit-weights", "Kit model weights"))
    for i in range(5):
        (folder / f"part{i}.bin").write_bytes(bytes([i]) * (10 + i))
    kaggle_stub.max_page_size = 2
    kc.dataset_create(folder, dir_mode="skip")
    assert sorted(kc.verify_dataset(folder, poll_s=0.01)) == [f"part{i}.bin" for i in range(5)]

    kaggle_stub.drop_files = {"part3.bin"}
    kc.dataset_version(folder, "v2", dir_mode="skip")
    with pytest.raises(KitError, match="part3.bin") as e:
        kc.verify_dataset(folder, poll_s=0.01)
    assert e.value.exit_code == 1 and "part1.bin" not in str(e.value)

    kaggle_stub.dataset_statuses[f"{USER}/kit-weights"] = ["FAILED"]
    with pytest.raises(KitError, match="failed"):
        kc.verify_dataset(folder, poll_s=0.01)


# ---- 4: competition data at either mount path --------------------------------------------------

def test_kernel_reads_competition_data_under_input_competitions(qd_demo_run, tmp_path, hidden, monkeypatch):
    monkeypatch.chdir(qd_demo_run)
    assert kernels.main(["dataset", "quickdraw", "--dry-run", "--owner", USER]) == 0
    assert kernels.main(["build", "quickdraw", "--owner", USER]) == 0
    kit = qd_demo_run / "kernels" / "quickdraw"
    root = empty_root(tmp_path)
    (root / "input" / "competitions").mkdir()
    os.symlink(qd_demo_run / "data" / "demo-quickdraw", root / "input" / "competitions" / QD_COMP)
    shutil.copytree(kit / "dataset", root / "input" / "datasets" / USER / "kit-quickdraw-models")
    r = run_kernel(kit / "build" / "kernel.py", root, hidden)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "reference outputs match" in r.stdout
    assert len(open(root / "working" / "submission.csv").read().splitlines()) > 1


def test_missing_competition_data_names_both_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = empty_root(tmp_path)
    monkeypatch.setenv("KAGGLE_KIT_ROOT", str(root))
    both = [str(root / "input" / QD_COMP), str(root / "input" / "competitions" / QD_COMP)]

    models = root / "input" / "models"
    models.mkdir()
    fake_staged_dataset(tmp_path / "staged")
    shutil.copy(tmp_path / "staged" / "dataset" / "kit-manifest.json", models / "kit-manifest.json")
    capsys.readouterr()
    assert runtime.main("quickdraw", "predict", {"manifest_sha1": sha1(models / "kit-manifest.json")}) == 1
    err = capsys.readouterr().err
    assert all(p in err for p in both), err

    assert runtime.main("quickdraw", "train", {}) == 1
    err = capsys.readouterr().err
    assert all(p in err for p in both), err


def test_a_kernel_reads_test_features_from_its_own_cache_not_the_runs():
    """A run's config names the cache folder of the machine that trained it (maybe an absolute
    path that Kaggle cannot write); prediction takes --cache-dir over it, and a kernel gives a
    fresh temporary folder (src/ship/runtime.py)."""
    import argparse

    from src.fat2019.competition import run_config
    from src.kit.runs import Fold

    fold = Fold("cnn", 0, "", {"cache_dir": "/home/someone/cache", "n_mels": 32}, {})
    assert run_config(fold, argparse.Namespace(cache_dir=None)).cache_dir == "/home/someone/cache"
    cfg = run_config(fold, argparse.Namespace(cache_dir="/tmp/kit-features-x"))
    assert cfg.cache_dir == "/tmp/kit-features-x" and cfg.n_mels == 32
    # the kernel's side: test_ship_train.py::test_imported_runs_ship_and_their_kernel_predicts_what_predict_writes
