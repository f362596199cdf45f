"""`python -m src.kernels train`: build, push, follow the training kernels on a local stand-in of
Kaggle's API (tests/kaggle_stub.py, loopback only), and import the folds they trained through the
trust rules local runs pass. The kernels' outputs are real: the pushed training script is run
here as Kaggle would run it (a fake /kaggle root via KAGGLE_KIT_ROOT, the repository's src hidden)
on the tiny FAT2019 layout; the refusal tests replay one such output, altered."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import h5py
import pandas as pd
import pytest

from conftest import KIT_HIDER, TINY_FLAGS, TINY_LABELS, one, write_tiny_layout
from kaggle_stub import USER, KernelRun, fake_credentials, kaggle_env, kaggle_stub, serving  # noqa: F401 (fixtures)
from src.ship import client as kaggle_cli
from src.ship import kernels, runtime, train
from src.fat2019.competition import FAT2019

FAT_COMP = "freesound-audio-tagging-2019"
HIDE_KIT = KIT_HIDER        # the sitecustomize `kernels check` gives a kernel: no kit, no internet


def _flags(n_folds: int = 2) -> list[str]:
    flags = list(TINY_FLAGS)
    flags[flags.index("--n-folds") + 1] = str(n_folds)
    flags[flags.index("--epochs") + 1] = "1"
    return flags


FLAGS = " ".join(_flags())


@pytest.fixture(scope="module")
def hidden_env(tmp_path_factory):
    """The environment of a kernel: a sitecustomize hides the installed kit (`import src` fails
    unless the kernel unpacked its own copy)."""
    d = tmp_path_factory.mktemp("hide")
    (d / "sitecustomize.py").write_text(HIDE_KIT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("KAGGLE_")}
    env["PYTHONPATH"] = str(d)
    return env


def layout(root) -> str:
    """The tiny layout in `root`/fat and its 2-fold folds file (deterministic: the same bytes in
    any folder); the cwd must be `root`."""
    from src.fat2019 import folds

    write_tiny_layout(str(root / "fat"))
    assert folds.main(["--data-dir", "fat", "--n-folds", "2"]) == 0
    return one(str(root / "folds" / "*.csv"))


def run_kernel(text: str, root, data_dir, env) -> tuple[int, str, dict]:
    """The pushed script run as Kaggle runs it: (exit code, log, {output name: bytes})."""
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    os.symlink(os.path.abspath(data_dir), root / "input" / FAT_COMP)
    (root / "kernel.py").write_text(text)
    r = subprocess.run([sys.executable, str(root / "kernel.py")], cwd=root / "working", capture_output=True,
                       text=True, env={**env, "KAGGLE_KIT_ROOT": str(root)}, timeout=600)
    files = {}
    for d, _, names in os.walk(root / "working"):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                files[os.path.relpath(p, root / "working")] = f.read()
    return r.returncode, r.stdout + r.stderr, files


def really_run(tmp_path, env):
    """A stub on_push hook: each pushed kernel is run for real in a thread (queued, running while
    it trains, then complete or error with its output and log)."""
    def hook(run: KernelRun) -> None:
        def work():
            rc, log, files = run_kernel(run.text, tmp_path / "kaggle" / f"{run.slug}-v{run.version}",
                                        tmp_path / "fat", env)
            run.output_files, run.log = files, log
            run.final = ("COMPLETE", None) if rc == 0 else ("ERROR", f"exit code {rc}")
        threading.Thread(target=work, daemon=True).start()
    return hook


def canned(files: dict | None, final=("COMPLETE", None), log: str = "", statuses=None):
    def hook(run: KernelRun) -> None:
        run.statuses = list(statuses or [("QUEUED", None), ("RUNNING", None)])
        run.output_files, run.log, run.final = dict(files or {}), log, final
    return hook


def train_cmd(*extra) -> list[str]:
    return ["train", "freesound", "--owner", USER, "--data-dir", "fat", "--train-args", FLAGS, "--poll", "0.1",
            *extra]


def imported(tmp_path) -> list[str]:
    return sorted(os.path.basename(p) for p in (tmp_path / "work").glob("fat-*/cnn/fold*"))


@pytest.fixture(scope="module")
def kaggle_trained(tmp_path_factory, hidden_env):
    """`kernels train freesound --parallel 2` made once, in its own folder, against a stub whose
    two pushed kernels really run (fold 0 and fold 1 of the tiny layout, at the same time: one per
    core): {folder, rc, out, err, pushed (SaveKernel bodies), runs {slug: (log, output files)}}.
    The refusal tests replay fold 0's output, altered."""
    base = tmp_path_factory.mktemp("kaggle-trained")
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp, serving() as stub:
        mp.chdir(base)
        fake_credentials(mp, base)
        layout(base)
        stub.on_push = really_run(base, hidden_env)
        t0 = time.time()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = kernels.main(train_cmd("--parallel", "2"))
        print(f"train --parallel 2 took {time.time() - t0:.0f}s")
        runs = {slug: (stub.latest_run(slug).log, stub.latest_run(slug).output_files)
                for slug in ("kit-freesound-train-f0", "kit-freesound-train-f1")}
        return {"folder": base, "rc": rc, "out": out.getvalue(), "err": err.getvalue(),
                "pushed": stub.calls("SaveKernel"), "runs": runs}


@pytest.fixture
def fold0_output(kaggle_trained):
    """Fold 0's kernel output ({name: bytes}) and the sha1 of the folds file it was trained on."""
    from src.kit.datadir import file_sha1

    return kaggle_trained["runs"]["kit-freesound-train-f0"][1], file_sha1(
        one(str(kaggle_trained["folder"] / "folds" / "*.csv")))


# ------------------------------------------------------------------------------------------ end to end

@pytest.mark.slow
def test_parallel_train_imports_every_fold_and_predict_uses_them(kaggle_trained, monkeypatch, kaggle_stub,
                                                                 kaggle_env, capsys):
    from src import predict

    base, out = kaggle_trained["folder"], kaggle_trained["out"]
    assert kaggle_trained["rc"] == 0, kaggle_trained["err"]
    pushed = [b["slug"] for b in kaggle_trained["pushed"]]
    assert sorted(pushed) == [f"{USER}/kit-freesound-train-f0", f"{USER}/kit-freesound-train-f1"]
    for body in kaggle_trained["pushed"]:
        assert body["enableGpu"] is True and body["enableInternet"] is False
        assert body["competitionDataSources"] == [FAT_COMP]
    for word in ("queued", "running", "complete", "since push", "imported fold 0", "imported fold 1"):
        assert word in out, out
    log = kaggle_trained["runs"]["kit-freesound-train-f0"][0]
    kernel_line = next(line for line in log.splitlines() if line.startswith("kernel: devices CPU only"))
    claimed = kernel_line.split("; precision ")[1].split(" ")[0]       # what the kernel says the fold will use
    assert "strategy auto -> default" in kernel_line and "(no GPU; " in kernel_line
    assert f"precision {claimed}; XLA" in next(line for line in log.splitlines() if line.startswith("hardware:"))
    assert "--strategy auto" in log and "--fold 0" in log and "--fold 1" not in log
    assert "hardware:" in log and "steps/s" in log
    # each kernel trained its fold only, on the local folds file, and predicted nothing
    files = kaggle_trained["runs"]["kit-freesound-train-f1"][1]
    assert not any("/fold0/" in n for n in files) and "submission.csv" not in files
    assert not any(n.startswith("cache/") for n in files)                  # the feature cache is not an output
    assert imported(base) == ["fold0", "fold1"]
    state = json.load(open(base / "kernels" / "freesound" / "train" / "state.json"))
    assert {u["status"] for u in state["units"].values()} == {"imported"}

    # the imported folds are trusted runs of the local data: src.predict uses them
    monkeypatch.chdir(base)
    data = FAT2019.open_data("fat")
    found = FAT2019.find_runs("work", data, strict=True)
    assert [f.fold for f in found["cnn"]] == [0, 1]
    assert predict.main(["--data-dir", "fat", "--out", "sub.csv"]) == 0
    assert (base / "sub.csv").read_text().startswith("fname,")

    # run again: nothing pushed, nothing imported twice
    capsys.readouterr()
    assert kernels.main(train_cmd("--parallel", "2")) == 0
    assert kaggle_stub.calls("SaveKernel") == []
    assert "already imported" in capsys.readouterr().out


@pytest.mark.slow
def test_imported_runs_ship_and_their_kernel_predicts_what_predict_writes(kaggle_trained, monkeypatch, capsys):
    """The whole no-GPU path after `train`: the imported runs are staged (`dataset`), the
    inference kernel built (`build`) and run as Kaggle would (`check`: fake /kaggle root, offline,
    the installed kit hidden); its submission.csv equals src.predict's over the same runs. A weight
    changed after `dataset` stops the kernel, naming the run and fold."""
    base = kaggle_trained["folder"]
    monkeypatch.chdir(base)
    assert kernels.main(["dataset", "freesound", "--dry-run", "--owner", USER, "--data-dir", "fat"]) == 0
    manifest = json.load(open("kernels/freesound/dataset/kit-manifest.json"))
    assert manifest["competition"] == FAT_COMP and list(manifest["runs"]) == ["cnn"]
    assert not list((base / "kernels/freesound/dataset").glob("*.keras"))      # weights, not .keras files
    assert kernels.main(["build", "freesound", "--owner", USER]) == 0
    meta = json.load(open("kernels/freesound/build/kernel-metadata.json"))
    assert meta["enable_internet"] is False and meta["competition_sources"] == [FAT_COMP]
    assert meta["dataset_sources"] == [f"{USER}/kit-freesound-models"]
    capsys.readouterr()
    assert kernels.main(["check", "freesound", "--data-dir", "fat"]) == 0
    out = capsys.readouterr().out
    assert "check: running kernels/freesound/build/kernel.py" in out
    assert "input/freesound-audio-tagging-2019 -> " in out and "input/kit-freesound-models/ = copy of" in out
    assert "offline; the installed kit hidden" in out
    assert "check: kernel submission.csv equals local prediction (4 rows" in out
    sub = pd.read_csv("kernels/freesound/check/kernel-submission.csv")
    local = pd.read_csv("kernels/freesound/check/local-submission.csv")
    assert len(sub) == 4 and list(sub.columns) == list(local.columns) == ["fname", *TINY_LABELS]
    log = open("kernels/freesound/check/kernel.log").read()
    assert "unpacked to" in log and "reference outputs match" in log and "done in" in log
    cache = re.search(r"kernel: test features cached in (\S*/kit-features-\S*)", log)   # not the runs' own cache
    unpacked = re.search(r"unpacked to (\S+) in", log)
    assert cache and unpacked
    assert not os.path.exists(cache.group(1)) and not os.path.exists(unpacked.group(1))   # scratch, removed at the end

    # a staged weight changed after `dataset`: the kernel's reference check stops it, check names it
    with h5py.File("kernels/freesound/dataset/cnn.fold0.weights.h5", "r+") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 4 else None)
        f[names[0]][...] = f[names[0]][...] * 0.5
    assert kernels.main(["check", "freesound", "--data-dir", "fat"]) == 1
    out, err = capsys.readouterr()
    assert "check: the kernel failed (exit 1)" in out and "last lines of its log" in out
    assert "error: the kernel failed (exit 1): error: run cnn fold 0" in err
    assert "refusing to write a submission" in err
    assert not os.path.exists("kernels/freesound/check/kernel-submission.csv")
    log = open("kernels/freesound/check/kernel.log").read()
    left = [m.group(1) for m in re.finditer(r"(?:unpacked to|test features cached in) (\S+?)(?: in |\n)", log)]
    assert len(left) == 2 and not any(os.path.exists(p) for p in left)     # a failed kernel cleans up too

    # staged again after the build: refused before anything runs (Kaggle would refuse it too)
    assert kernels.main(["dataset", "freesound", "--dry-run", "--owner", USER, "--data-dir", "fat"]) == 0
    capsys.readouterr()
    assert kernels.main(["check", "freesound", "--data-dir", "fat"]) == 1
    err = capsys.readouterr().err
    assert "was built for another models dataset" in err and "python -m src.kernels build freesound" in err


def test_one_kernel_trains_every_fold(fold0_output, kaggle_trained, tmp_path, monkeypatch, kaggle_stub, kaggle_env,
                                      capsys):
    """--parallel 1 (the default): one kernel, kit-freesound-train, built to run cv --fold all
    then predict (as `build --kind train`; that kernel's real run is `kernels check --kind train`'s
    test); its output here is the two fold kernels' outputs together, under --name gpu-cnn."""
    monkeypatch.chdir(tmp_path)
    layout(tmp_path)
    files, records = {}, []
    for slug in ("kit-freesound-train-f0", "kit-freesound-train-f1"):
        out = kaggle_trained["runs"][slug][1]
        files.update({n.replace("/cnn/", "/gpu-cnn/"): b for n, b in out.items() if n != "kit-train.json"})
        records.append(json.loads(out["kit-train.json"]))
    record = dict(records[0], run="gpu-cnn", folds={})
    for r in records:
        for k, entry in r["folds"].items():
            record["folds"][k] = dict(entry, path=entry["path"].replace("/cnn/", "/gpu-cnn/"))
    files["kit-train.json"] = json.dumps(record).encode()
    for n in list(files):                                     # the run's name is in each fold's config too
        if n.endswith("/config.json"):
            files[n] = _alter_config(files[n], name="gpu-cnn")
            record["folds"][n.split("/fold")[1][0]]["files"]["config.json"] = hashlib.sha1(files[n]).hexdigest()
    files["kit-train.json"] = json.dumps(record).encode()
    kaggle_stub.on_push = canned(files)
    assert kernels.main(train_cmd("--name", "gpu-cnn")) == 0, capsys.readouterr().err
    assert [b["slug"] for b in kaggle_stub.calls("SaveKernel")] == [f"{USER}/kit-freesound-train"]
    text = kaggle_stub.latest_run("kit-freesound-train").text
    assert "'folds': None" in text and "'gpu-cnn'" in text                # every fold, then predict
    assert sorted(os.path.basename(p) for p in (tmp_path / "work").glob("fat-*/gpu-cnn/fold*")) == ["fold0", "fold1"]


# ------------------------------------------------------------------------------------------ refusals

def _alter_weights(data: bytes, tmp_path) -> bytes:
    p = tmp_path / "w.weights.h5"
    p.write_bytes(data)
    with h5py.File(p, "r+") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 4 else None)
        f[names[0]][...] = f[names[0]][...] * 0.5
    return p.read_bytes()


def _alter_config(data: bytes, **changes) -> bytes:
    config = json.loads(data)
    for k, v in changes.items():
        config[k] = v(config[k]) if callable(v) else v
    return json.dumps(config).encode()


def _key(files, suffix):
    return one_of([n for n in files if n.endswith(suffix)])


def one_of(names):
    assert len(names) == 1, names
    return names[0]


@pytest.mark.parametrize("case", ["weights", "unloadable", "folds", "labels", "kit_version", "missing"])
def test_an_untrustworthy_fold_is_refused_and_named(case, fold0_output, tmp_path, monkeypatch, kaggle_stub,
                                                    kaggle_env, capsys):
    files, folds_sha1 = fold0_output
    files = dict(files)
    monkeypatch.chdir(tmp_path)
    path = layout(tmp_path)
    from src.kit.datadir import file_sha1
    assert file_sha1(path) == folds_sha1                     # the same folds file: the output matches it
    reason = {"weights": "best.weights.h5 differs from what the kernel wrote",
              "folds": "another folds file",
              "labels": "other labels",
              "kit_version": "trained by kit 0.1.9",
              "unloadable": "its weights do not load into the network its config.json describes",
              "missing": "not in the kernel's output"}[case]
    if case == "weights":
        k = _key(files, "fold0/best.weights.h5")
        files[k] = _alter_weights(files[k], tmp_path)
    elif case == "unloadable":                               # listed in kit-train.json as written, yet broken
        k = _key(files, "fold0/best.weights.h5")
        files[k] = files[k][:len(files[k]) // 2]
        record = json.loads(files["kit-train.json"])
        record["folds"]["0"]["files"]["best.weights.h5"] = hashlib.sha1(files[k]).hexdigest()
        files["kit-train.json"] = json.dumps(record).encode()
    elif case == "folds":                                    # the local folds file changed since the push
        kaggle_stub.on_push = None
        text = open(path).read().splitlines()
        flipped = [text[0]] + [f"{ln.rsplit(',', 1)[0]},{1 - int(ln.rsplit(',', 1)[1])}" for ln in text[1:]]
    elif case == "labels":
        k = _key(files, "fold0/config.json")
        files[k] = _alter_config(files[k], labels=lambda ls: [l if l != "Buzz" else "Whistle" for l in ls])
    elif case == "kit_version":
        k = _key(files, "fold0/config.json")
        files[k] = _alter_config(files[k], kit_version="0.1.9")
    elif case == "missing":
        files = {n: b for n, b in files.items() if "/fold0/" not in n}

    def hook(run):
        canned(files)(run)
        if case == "folds":
            with open(path, "w") as f:
                f.write("\n".join(flipped) + "\n")
    kaggle_stub.on_push = hook
    assert kernels.main(train_cmd("--folds", "0")) == 1
    captured = capsys.readouterr()
    assert "kit-freesound-train fold 0: " in captured.err and reason in captured.err, captured.err
    assert "refused kit-freesound-train fold 0" in captured.out
    assert imported(tmp_path) == []
    state = json.load(open(tmp_path / "kernels" / "freesound" / "train" / "state.json"))
    assert state["units"]["kit-freesound-train"]["status"] == "refused"


def test_a_kernel_in_error_imports_nothing_and_says_why(fold0_output, tmp_path, monkeypatch, kaggle_stub,
                                                        kaggle_env, capsys):
    monkeypatch.chdir(tmp_path)
    layout(tmp_path)
    files, _ = fold0_output
    log = json.dumps([{"stream_name": "stdout", "time": 1.0, "data": "kernel: training ...\n"},
                      {"stream_name": "stderr", "time": 2.0, "data": "ResourceExhaustedError: OOM when allocating\n"}])
    message = "Your notebook tried to allocate more memory than is available"
    kaggle_stub.on_push = canned(files, final=("ERROR", message), log=log)
    assert kernels.main(train_cmd("--folds", "0")) == 1
    captured = capsys.readouterr()
    assert message in captured.err and "ResourceExhaustedError: OOM when allocating" in captured.err
    assert "ended with error" in captured.err and "nothing imported" in captured.err
    assert imported(tmp_path) == []
    # run again: the failed kernel is pushed again (a new version), then imported
    kaggle_stub.on_push = canned(files)
    assert kernels.main(train_cmd("--folds", "0")) == 0
    assert len(kaggle_stub.calls("SaveKernel")) == 2 and imported(tmp_path) == ["fold0"]


def test_train_killed_while_waiting_reattaches_and_imports_once(fold0_output, tmp_path, monkeypatch, kaggle_stub,
                                                               kaggle_env, capsys):
    monkeypatch.chdir(tmp_path)
    layout(tmp_path)
    files, _ = fold0_output
    kaggle_stub.on_push = canned(files, final=None)          # queued, then running until told otherwise
    real, calls = kaggle_cli.kernel_status, []

    def interrupted(*a, **k):
        calls.append(a)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(kaggle_cli, "kernel_status", interrupted)
    assert kernels.main(train_cmd("--folds", "0")) == 130
    assert "run the same command again" in capsys.readouterr().out
    state = json.load(open(tmp_path / "kernels" / "freesound" / "train" / "state.json"))
    assert state["units"]["kit-freesound-train"]["status"] == "pushed"
    assert imported(tmp_path) == []

    monkeypatch.setattr(kaggle_cli, "kernel_status", real)
    kaggle_stub.latest_run("kit-freesound-train").final = ("COMPLETE", None)
    assert kernels.main(train_cmd("--folds", "0")) == 0
    out = capsys.readouterr().out
    assert "re-attaching to kituser/kit-freesound-train version 1" in out and "imported fold 0" in out
    assert len(kaggle_stub.calls("SaveKernel")) == 1 and imported(tmp_path) == ["fold0"]
    assert kernels.main(train_cmd("--folds", "0")) == 0
    assert len(kaggle_stub.calls("SaveKernel")) == 1 and out.count("imported fold 0") == 1
    assert "already imported: kit-freesound-train" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ small parts

def test_hardware_flags_follow_the_gpus_unless_the_user_typed_them(capsys, monkeypatch):
    from src.kit import distribute

    t4x2 = [("Tesla T4", (7, 5)), ("Tesla T4", (7, 5))]
    assert runtime.hardware_args(FAT2019, [], gpus=t4x2) == ["--strategy", "auto", "--mixed-precision"]
    assert "strategy auto -> mirrored; precision mixed_float16" in capsys.readouterr().out
    assert runtime.hardware_args(FAT2019, [], gpus=[("Tesla P100", (6, 0))]) == ["--strategy", "auto"]
    assert runtime.hardware_args(FAT2019, [], gpus=[]) == ["--strategy", "auto"]
    assert runtime.hardware_args(FAT2019, ["--strategy", "default", "--no-mixed-precision"], gpus=t4x2) == []
    assert "default (--train-args); precision float32 (--train-args)" in capsys.readouterr().out.splitlines()[-1]
    monkeypatch.setattr(distribute, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    assert runtime.hardware_args(FAT2019, [], gpus=[]) == ["--strategy", "auto"]
    assert "precision float32 (no GPU; a CPU with AMX-BF16: float32 through oneDNN, without XLA)" in capsys.readouterr().out
    assert runtime.hardware_args(FAT2019, ["--mixed-precision"], gpus=[]) == ["--strategy", "auto"]   # typed: obeyed
    assert "precision mixed_bfloat16 (--train-args)" in capsys.readouterr().out


def test_parallel_is_capped_and_flags_are_checked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    layout(tmp_path)
    with pytest.raises(SystemExit):
        kernels.main(["train", "--help"])
    assert f"at most {train.MAX_PARALLEL}" in capsys.readouterr().out
    assert kernels.main(train_cmd("--parallel", str(train.MAX_PARALLEL + 1))) == 2
    assert f"at most {train.MAX_PARALLEL} GPU sessions" in capsys.readouterr().err
    assert kernels.main(train_cmd("--folds", "5")) == 2
    assert "folds are 0-1" in capsys.readouterr().err
    assert kernels.main(["train", "freesound", "--owner", USER, "--data-dir", "fat", "--train-args",
                         "--n-folds 3"]) == 2
    assert "has 2 folds but the training would use --n-folds 3" in capsys.readouterr().err
    assert kernels.main(["train", "freesound", "--owner", USER, "--data-dir", "fat", "--train-args",
                         "--init-from work/x/cnn/fold0"]) == 2
    assert "--init-from work/x/cnn/fold0: a folder on this machine" in capsys.readouterr().err
    assert not (tmp_path / "kernels").exists()


def test_a_local_fold_in_the_way_stops_before_any_push(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    layout(tmp_path)
    name = FAT2019.open_data("fat").name
    os.makedirs(tmp_path / "work" / name / "cnn" / "fold1")
    assert kernels.main(train_cmd("--parallel", "2")) == 2          # no stub: a push would fail otherwise
    err = capsys.readouterr().err
    assert "fold1 already exists" in err and "nothing pushed" in err


def test_the_quickdraw_kernel_carries_the_local_folds_file(tmp_path, monkeypatch):
    """Both competitions' training kernels carry folds/<dataset>.csv when it exists."""
    from src.quickdraw.competition import QUICKDRAW

    monkeypatch.chdir(tmp_path)
    args = type("A", (), {"data_dir": None})()
    data = QUICKDRAW.open_data(None)
    assert kernels._folds_csv(QUICKDRAW, args) is None                 # none here: the kernel makes its own
    os.makedirs("folds")
    with open(os.path.join("folds", data.name + ".csv"), "w") as f:
        f.write("key_id,fold\n1,0\n")
    assert kernels._folds_csv(QUICKDRAW, args) == "key_id,fold\n1,0\n"
    shutil.rmtree("folds")
