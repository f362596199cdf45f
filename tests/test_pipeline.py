"""FAT2019 end to end on a tiny layout: folds, training, resume, prediction, and every bad-input case.
Tests that only need trained runs start from a copy of the session's tiny run (conftest `fat_tiny`)."""
import dataclasses
import glob
import json
import os
import shutil
import typing

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import ROOT, TINY_FLAGS, TINY_LABELS, background_job, one, write_tiny_layout
from src import cv, predict
from src.fat2019 import folds, score
from src.fat2019.config import FatConfig, KNOWN_BAD_CLIPS
from src.fat2019.data import label_matrix
from src.kit.errors import KitWarning


def run_cv(*extra):
    return cv.main(["--data-dir", "fat", *TINY_FLAGS, *extra])


def fold(run="cnn", k=0):
    return one(f"work/fat-*/{run}/fold{k}")


def test_folds_are_stratified_disjoint_and_curated_only(tiny):
    assert folds.main(["--data-dir", "fat", "--n-folds", "3"]) == 0
    f = pd.read_csv(one("folds/fat-*.csv"))
    cur = pd.read_csv("fat/train_curated.csv")
    noisy = pd.read_csv("fat/train_noisy.csv")
    assert sorted(f["fname"]) == sorted(cur["fname"])                     # every curated clip exactly once
    assert not set(f["fname"]) & set(noisy["fname"])                      # noisy clips never validate
    y = label_matrix(cur.set_index("fname").loc[f["fname"]].reset_index(), TINY_LABELS)
    per_fold = np.stack([y[f["fold"].to_numpy() == k].sum(axis=0) for k in range(3)])
    assert per_fold.max() - per_fold.min() <= 1                           # 5 per label over 3 folds: 2/2/1


def test_make_folds_is_deterministic():
    y = np.eye(4)[np.arange(40) % 4]
    a, b = folds.make_folds(y, 5, 7), folds.make_folds(y, 5, 7)
    np.testing.assert_array_equal(a, b)
    assert sorted(np.bincount(a)) == [8] * 5


def test_train_predict_score_and_resume(tiny, capsys):
    assert run_cv("--fold", "0", "--noisy", "weighted") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("fold 0 lwlrap ")
    d = fold()
    for name in ("best.keras", "best.weights.h5", "last.keras", "config.json", "history.csv", "history.png",
                 "oof.csv", "metrics.json", "state.json", "per_label.png"):
        assert os.path.exists(os.path.join(d, name)), name
    assert not os.path.exists(d + ".partial") and not os.path.exists(d + ".lock")
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert cfg["n_mels"] == 32 and cfg["noisy"] == "weighted" and cfg["labels"] == TINY_LABELS
    assert len(cfg["folds_sha1"]) == 40
    oof = pd.read_csv(os.path.join(d, "oof.csv"))
    fold_of = pd.read_csv(one("folds/fat-*.csv")).set_index("fname")["fold"]
    assert (oof["fname"].map(fold_of) == 0).all()                         # only held-out curated clips scored
    assert len(oof) == (fold_of == 0).sum()
    m = json.load(open(os.path.join(d, "metrics.json")))
    assert m["n_noisy"] == 6 and m["epochs_run"] == 2
    assert float(out[-1].split()[-1]) == pytest.approx(m["val_lwlrap"], abs=1e-4)

    # resume: two more epochs continue from epoch 2, keeping the history (epochs numbered from 1)
    assert run_cv("--fold", "0", "--resume", "--epochs", "4") == 0
    assert "resuming after epoch 2" in capsys.readouterr().out
    h = pd.read_csv(os.path.join(d, "history.csv"))
    assert h["epoch"].tolist() == [1, 2, 3, 4]
    assert json.load(open(os.path.join(d, "metrics.json")))["epochs_run"] == 4
    assert json.load(open(os.path.join(d, "config.json")))["noisy"] == "weighted"   # the saved config, flags on top
    assert run_cv("--fold", "0", "--resume", "--epochs", "4") == 0                # finished: nothing to do
    assert "already finished" in capsys.readouterr().out

    # prediction: the sample submission's rows and columns, probabilities, no NaN
    assert predict.main(["--data-dir", "fat", "--tta", "2"]) == 0
    sub = pd.read_csv("submissions/submission.csv")
    sample = pd.read_csv("fat/sample_submission.csv")
    assert list(sub.columns) == list(sample.columns)
    assert sub["fname"].tolist() == sample["fname"].tolist()
    vals = sub[TINY_LABELS].to_numpy()
    assert np.isfinite(vals).all() and vals.min() >= 0 and vals.max() <= 1

    # local scoring against answers, with Kaggle's Usage column
    sol = sample.copy()
    sol[TINY_LABELS] = 0
    for i, f in enumerate(sol["fname"]):
        sol.loc[i, TINY_LABELS[int(f[2:8]) % 3]] = 1
    sol["Usage"] = ["Public", "Private"] * (len(sol) // 2)
    sol.to_csv("sol.csv", index=False)
    capsys.readouterr()
    assert score.main(["submissions/submission.csv", "sol.csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("lwlrap ") and "label" in lines[0]
    assert any(l.startswith("Public: lwlrap") for l in lines) and any(l.startswith("Private: lwlrap") for l in lines)
    pd.concat([sub, sub.iloc[:1]]).to_csv("dup.csv", index=False)       # a row twice: refused, named
    assert score.main(["dup.csv", "sol.csv"]) == 2
    assert "1 duplicate fname(s)" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_drops_history_rows_after_the_saved_state(fat_tiny, capsys):
    d = fold(k=1)                                                         # 1 epoch, finished
    h = pd.read_csv(os.path.join(d, "history.csv"))
    stale = h.assign(epoch=2, loss=123.0)                                 # epoch 2's row, never committed
    pd.concat([h, stale]).to_csv(os.path.join(d, "history.csv"), index=False)
    state = json.load(open(os.path.join(d, "state.json")))
    assert state["epoch"] == 1
    state.update(done=False)                                              # as if killed during epoch 2
    json.dump(state, open(os.path.join(d, "state.json"), "w"))
    assert run_cv("--fold", "1", "--resume", "--epochs", "2", "--eager") == 0
    h = pd.read_csv(os.path.join(d, "history.csv"))
    assert h["epoch"].tolist() == [1, 2] and 123.0 not in h["loss"].tolist()


def test_missing_training_files_stop_before_training(tiny, capsys):
    cur = pd.read_csv("fat/train_curated.csv")
    for f in cur["fname"][:3]:
        os.remove(os.path.join("fat/train_curated", f))
    assert run_cv("--fold", "0") == 2
    err = capsys.readouterr().err
    assert "3 clip(s) listed in the CSV are missing" in err and cur["fname"][0] in err
    assert not glob.glob("work/*/cnn/*")                                   # nothing trained, nothing written


def test_missing_files_list_is_capped_at_20(tiny, capsys):
    cur = pd.read_csv("fat/train_curated.csv")
    extra = pd.DataFrame({"fname": [f"ghost{i:03d}.wav" for i in range(30)], "labels": "Buzz"})
    pd.concat([cur, extra]).to_csv("fat/train_curated.csv", index=False)
    assert run_cv("--fold", "0") == 2
    err = capsys.readouterr().err
    assert "ghost019.wav" in err and "ghost020.wav" not in err and "(and 10 more; 30 in all)" in err


def test_unknown_label_names_file_and_label(tiny, capsys):
    cur = pd.read_csv("fat/train_curated.csv")
    cur.loc[0, "labels"] = "Buzz,Not_a_label"
    cur.to_csv("fat/train_curated.csv", index=False)
    assert run_cv("--fold", "0") == 2
    err = capsys.readouterr().err
    assert "train_curated.csv" in err and "Not_a_label" in err


@pytest.mark.parametrize("edit, message", [
    (lambda: _rewrite("fat/sample_submission.csv", lambda t: t.replace("fname,Bass_drum,Buzz,Cricket",
                                                                       "fname,Bass_drum,Buzz,Buzz", 1)),
     "duplicate column(s) Buzz"),
    (lambda: _rewrite("fat/train_curated.csv", lambda t: t + t.splitlines()[1] + "\n"), "1 duplicate fname(s)"),
    (lambda: _rewrite("fat/train_curated.csv", lambda t: t.replace("cu000000.wav", "../../etc/passwd")),
     "not plain file names"),
    (lambda: _rewrite("fat/train_noisy.csv", lambda t: t.replace("no000000.wav", "/tmp/x.wav")),
     "not plain file names"),
])
def test_csv_hygiene_names_the_file_and_the_values(tiny, capsys, edit, message):
    edit()
    assert run_cv("--fold", "0") == 2
    err = capsys.readouterr().err
    assert message in err and "fat/" in err


def _rewrite(path, change):
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(change(text))


def cv_process(folder, *extra) -> subprocess.CompletedProcess:
    """`python -m src.cv` on folder/fat with TINY_FLAGS, eager (a background job's training, by the
    lane's worker; see TINY_FLAGS)."""
    import conftest

    return conftest.LANE.module("src.cv", ["--data-dir", "fat", *TINY_FLAGS, "--eager", *extra], cwd=folder)


@background_job("bad_clips_runs", last=True)
def _bad_clips_runs(folder):
    """The tiny layout with four unusable training clips and one known mislabelled clip: every
    fold trained (both left out), then fold 0 again with --keep-bad-clips under another name
    (src.cv's own processes: their warnings are the lines they print)."""
    root = write_tiny_layout(os.path.join(folder, "fat"))
    cur = pd.read_csv(os.path.join(root, "train_curated.csv"))
    clips = os.path.join(root, "train_curated")
    os.rename(os.path.join(clips, cur["fname"][0]), os.path.join(clips, KNOWN_BAD_CLIPS[0]))
    cur.loc[0, "fname"] = KNOWN_BAD_CLIPS[0]
    cur.to_csv(os.path.join(root, "train_curated.csv"), index=False)
    junk, empty, silent, nan = cur["fname"][3], cur["fname"][4], cur["fname"][5], cur["fname"][6]
    open(os.path.join(clips, junk), "wb").write(b"garbage")
    sf.write(os.path.join(clips, empty), np.zeros(0, np.float32), 16000)
    sf.write(os.path.join(clips, silent), np.zeros(16000, np.float32), 16000)
    x = np.random.default_rng(0).normal(size=16000).astype(np.float32)
    x[5] = np.inf
    sf.write(os.path.join(clips, nan), x, 16000, subtype="FLOAT")
    left_out = cv_process(folder, "--fold", "all", "--epochs", "1")
    kept = cv_process(folder, "--fold", "0", "--epochs", "1", "--keep-bad-clips", "--name", "kept")
    return left_out, kept, (junk, empty, silent, nan), folder


@pytest.fixture
def bad_clips_runs(background, monkeypatch):
    left_out, kept, clips, folder = background.result("bad_clips_runs")
    monkeypatch.chdir(folder)
    return left_out, kept, clips


@pytest.mark.slow
def test_unusable_training_clips_are_skipped_and_counted(bad_clips_runs):
    r, _, (junk, empty, silent, nan) = bad_clips_runs
    assert r.returncode == 0, r.stderr[-3000:]
    text = " ".join(l for l in r.stderr.splitlines() if l.startswith("warning: "))   # KitWarning's format
    for f, why in [(junk, "unreadable"), (empty, "empty"), (silent, "silent"), (nan, "non-finite")]:
        assert f in text and why in text
    for k in range(3):                                                     # each fold's summary counts them
        assert set(json.load(open(os.path.join(fold(k=k), "metrics.json")))["skipped_clips"]) == {junk, empty, silent, nan}
    assert r.stdout.strip().splitlines()[-1].startswith("oof lwlrap ")


@pytest.mark.slow
def test_known_bad_clips_left_out_unless_kept(bad_clips_runs):
    left_out, kept, _ = bad_clips_runs
    assert left_out.returncode == 0 and kept.returncode == 0, left_out.stderr[-2000:] + kept.stderr[-2000:]
    assert "leaving out 1 known mislabelled" in left_out.stdout
    assert "leaving out" not in kept.stdout


@pytest.mark.slow
def test_unreadable_test_clip_gets_label_frequencies(fat_tiny, capsys):
    sample = pd.read_csv("fat/sample_submission.csv")
    bad = sample["fname"][1]
    open(os.path.join("fat/test", bad), "wb").write(b"garbage")
    with pytest.warns(KitWarning, match=bad):
        assert predict.main(["--data-dir", "fat"]) == 0
    sub = pd.read_csv("submissions/submission.csv")
    assert sub["fname"].tolist() == sample["fname"].tolist()
    np.testing.assert_allclose(sub.loc[1, TINY_LABELS].to_numpy(dtype=float), [1 / 3] * 3, atol=1e-6)


@pytest.mark.slow
def test_missing_test_files_stop_predict_unless_allowed(fat_tiny, capsys):
    sample = pd.read_csv("fat/sample_submission.csv")
    os.remove(os.path.join("fat/test", sample["fname"][2]))
    capsys.readouterr()
    assert predict.main(["--data-dir", "fat"]) == 2
    err = capsys.readouterr().err
    assert "1 of the 4 test clips" in err and sample["fname"][2] in err and "--allow-missing" in err
    assert not os.path.exists("submissions/submission.csv")
    with pytest.warns(KitWarning, match="missing"):
        assert predict.main(["--data-dir", "fat", "--allow-missing"]) == 0
    sub = pd.read_csv("submissions/submission.csv")
    np.testing.assert_allclose(sub.loc[2, TINY_LABELS].to_numpy(dtype=float), [1 / 3] * 3, atol=1e-6)
    sample.iloc[:0].to_csv("fat/sample_submission.csv", index=False)
    assert predict.main(["--data-dir", "fat"]) == 2
    assert "lists no test clips" in capsys.readouterr().err


def test_predict_without_training_is_a_clear_error(tiny, capsys):
    assert predict.main(["--data-dir", "fat"]) == 2
    assert "python -m src.cv" in capsys.readouterr().err


@pytest.mark.slow
def test_predict_trusts_only_finished_runs_that_match_the_data(fat_tiny, capsys):
    """Left out, each named once: a smoke run's unfinished fold, a run on other labels, a run on
    an older folds file; --strict refuses instead. A reordered sample_submission is aligned by name.
    The runs 'other' and 'smoke' are fold 0 of 'cnn' copied under their names (what `--name` would
    train; training under --name is tested in test_named_runs_with_other_features_ensemble)."""
    runs_dir = os.path.dirname(os.path.dirname(fold()))
    for name in ("other", "smoke"):
        shutil.copytree(fold(), os.path.join(runs_dir, name, "fold0"))
        cfg_path = os.path.join(runs_dir, name, "fold0", "config.json")
        json.dump({**json.load(open(cfg_path)), "name": name}, open(cfg_path, "w"))
    os.rename(fold("smoke"), fold("smoke") + ".partial")                  # as if still training / killed
    cfg_path = os.path.join(fold("other"), "config.json")
    c = json.load(open(cfg_path))
    c["labels"] = ["Bass_drum", "Buzz", "Owl"]
    json.dump(c, open(cfg_path, "w"))
    capsys.readouterr()
    with pytest.warns(KitWarning) as rec:
        assert predict.main(["--data-dir", "fat"]) == 0
    text = " ".join(str(w.message) for w in rec)
    assert "smoke/fold0.partial (unfinished" in text and "other/fold0 (trained on other labels" in text
    out = capsys.readouterr().out
    assert "predict: cnn: 3 fold(s)" in out and "1 run(s), 3 fold(s)" in out
    base = pd.read_csv("submissions/submission.csv").set_index("fname")
    assert predict.main(["--data-dir", "fat", "--strict"]) == 2
    assert "--strict" in capsys.readouterr().err

    # labels are aligned by name: a sample_submission with its label columns in another order
    # (another dataset name, since the label columns define it: the runs are moved there by hand)
    from src.fat2019 import data as fat_data

    old = one("work/fat-*")
    _rewrite("fat/sample_submission.csv", lambda t: "\n".join(
        ",".join([r.split(",")[0]] + r.split(",")[1:][::-1]) for r in t.strip().splitlines()) + "\n")
    name = fat_data.load(FatConfig(data_dir="fat")).name
    assert name != os.path.basename(old)
    os.rename(old, os.path.join("work", name))
    os.rename(one("folds/fat-*.csv"), os.path.join("folds", name + ".csv"))
    assert predict.main(["--data-dir", "fat", "--models", "cnn", "--out", "reordered.csv"]) == 0
    moved = pd.read_csv("reordered.csv").set_index("fname")
    assert list(moved.columns) == TINY_LABELS[::-1]
    np.testing.assert_allclose(moved[TINY_LABELS].to_numpy(), base[TINY_LABELS].to_numpy(), atol=1e-6)


@pytest.mark.slow
def test_runs_on_an_older_folds_file_are_left_out(fat_tiny, capsys):
    assert folds.main(["--data-dir", "fat", "--n-folds", "3", "--seed", "7"]) == 0   # rebuilt: another split
    assert run_cv("--fold", "1", "--epochs", "1", "--name", "new", "--eager") == 0
    capsys.readouterr()
    with pytest.warns(KitWarning, match=r"cnn \(trained on another folds file"):
        assert predict.main(["--data-dir", "fat"]) == 0
    assert "predict: new: 1 fold(s)" in capsys.readouterr().out


def _other_value(f: dataclasses.Field, tp):
    """(flags, value): a command line giving field `f` a value other than its default."""
    flag, default = "--" + f.name.replace("_", "-"), f.default
    if tp is bool:
        return [flag if not default else "--no-" + flag[2:]], not default
    if f.metadata.get("choices"):
        value = next(c for c in f.metadata["choices"] if c != default)
    elif tp is int:
        value = (default or 0) + 3
    elif tp is float:
        value = (default or 0.0) + 0.5
    else:
        value = f"other-{default}"
    return [flag, str(value)], value


@pytest.mark.parametrize("module, config_cls", [("src.cv", "src.fat2019.config.FatConfig"),
                                                ("src.quickdraw.cv", "src.quickdraw.config.QDConfig")])
def test_every_config_field_is_a_flag_with_its_default_and_a_given_flag_overrides_it(module, config_cls, capsys,
                                                                                     monkeypatch):
    import importlib

    from src.kit import configio, cv as kit_cv

    main = importlib.import_module(module).main
    mod, cls_name = config_cls.rsplit(".", 1)
    cls = getattr(importlib.import_module(mod), cls_name)
    monkeypatch.setenv("COLUMNS", "1000")                                  # one line per flag in --help
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    blocks, entry = {}, None             # each option's entry in --help: its first line and the help under it
    for l in capsys.readouterr().out.splitlines():
        t = l.strip()
        if l.startswith("  --"):                                           # an option (its help is indented more)
            entry = blocks.setdefault(t.split()[0].rstrip(","), [])
            entry[:] = [t]
        elif t and entry is not None:
            entry.append(t)
        else:
            entry = None
    parsed = []
    monkeypatch.setattr(kit_cv, "run", lambda comp, args: parsed.append(args) or 0)   # the parse, no training
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        assert flag in blocks, flag
        shown = "unset" if f.default is None else f.default                 # None: chosen at run time
        assert " ".join(blocks[flag]).endswith(f"(default: {shown})"), (flag, blocks[flag])
        tp = typing.get_args(hints[f.name])[0] if typing.get_args(hints[f.name]) else hints[f.name]
        argv, value = _other_value(f, tp)
        assert value != f.default
        assert main(argv) == 0
        assert configio.from_args(cls, parsed.pop()) == dataclasses.replace(cls(), **{f.name: value}), argv


def test_bad_choices_are_refused_by_the_cli(capsys):
    for flag in (["--noisy", "most"], ["--noisy-loss", "mse"], ["--vgg-input", "rgb"], ["--window-agg", "median"]):
        with pytest.raises(SystemExit) as e:
            cv.main(flag)
        assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_noisy_finetune_without_noisy_clips_is_refused(tiny, capsys):
    pd.DataFrame(columns=["fname", "labels"]).to_csv("fat/train_noisy.csv", index=False)
    assert run_cv("--fold", "0", "--noisy", "finetune") == 2
    assert "--noisy finetune" in capsys.readouterr().err


def test_fold_file_with_another_fold_count_is_refused(tiny, capsys):
    assert folds.main(["--data-dir", "fat", "--n-folds", "3"]) == 0
    assert run_cv("--fold", "0", "--n-folds", "5") == 2
    assert "has 3 folds but --n-folds is 5" in capsys.readouterr().err


@background_job("cnn16_runs", needs=("fat_tiny_runs",))
def _cnn16_runs(folder):
    """A copy of the session's tiny run with a second run beside it: 16 mels under --name cnn16."""
    from conftest import copy_fat_tiny

    root = copy_fat_tiny(os.path.join(folder, "run"))
    return cv_process(root, "--fold", "all", "--epochs", "1", "--n-mels", "16", "--name", "cnn16"), root


@pytest.fixture
def cnn16_runs(background, monkeypatch):
    r, root = background.result("cnn16_runs")
    monkeypatch.chdir(root)
    return r


@pytest.mark.slow
def test_named_runs_with_other_features_ensemble(cnn16_runs, capsys):
    """Two runs of the CNN (one with 16 mels under --name) blend in one submission; --models picks."""
    assert cnn16_runs.returncode == 0, cnn16_runs.stderr[-3000:]     # src.cv --fold all --n-mels 16 --name cnn16
    assert os.path.exists(os.path.join(fold("cnn16", 2), "best.weights.h5"))
    assert json.load(open(os.path.join(fold("cnn16"), "config.json")))["n_mels"] == 16
    capsys.readouterr()
    assert predict.main(["--data-dir", "fat"]) == 0
    out = capsys.readouterr().out
    assert "predict: cnn: 3 fold(s)" in out and "predict: cnn16: 3 fold(s)" in out
    assert "2 run(s), 6 fold(s)" in out
    report = next(l for l in out.splitlines() if "out-of-fold lwlrap" in l)
    assert "cnn " in report and "cnn16 " in report and "blend " in report
    both = pd.read_csv("submissions/submission.csv")
    assert predict.main(["--data-dir", "fat", "--models", "cnn16", "--out", "one.csv"]) == 0
    one_ = pd.read_csv("one.csv")
    assert one_["fname"].tolist() == both["fname"].tolist()
    assert not np.allclose(one_[TINY_LABELS].to_numpy(), both[TINY_LABELS].to_numpy())
    # OOF-chosen blend weights: written, non-negative, and used by predict for exactly these runs
    from src import blend as fat_blend

    capsys.readouterr()
    assert fat_blend.main(["--data-dir", "fat"]) == 0
    doc = json.load(open(one("work/fat-*/blend.json")))
    assert set(doc["weights"]) == {"cnn", "cnn16"} and min(doc["weights"].values()) >= 0
    assert sum(doc["weights"].values()) == pytest.approx(1, abs=1e-3)
    assert {"equal", "nested", "used"} <= set(doc["scores"])
    assert os.path.getsize(one("work/fat-*/blend_per_label.png")) > 1000
    assert predict.main(["--data-dir", "fat", "--out", "blended.csv"]) == 0
    out = capsys.readouterr().out
    assert f"predict: cnn: 3 fold(s) (0, 1, 2), weight {doc['weights']['cnn']:.2f}" in out


@pytest.mark.slow
def test_the_model_learns_on_the_demo(fat_demo_run):
    """A short demo training clearly beats the label prior: fails if training silently does nothing."""
    from src.fat2019 import data as fat_data
    from src.kit.metrics import lwlrap

    m = json.load(open(one(str(fat_demo_run / "work/demo-fat2019-*/cnn/fold0/metrics.json"))))
    oof = pd.read_csv(one(str(fat_demo_run / "work/demo-fat2019-*/cnn/fold0/oof.csv")))
    cur = pd.read_csv(str(fat_demo_run / "data/demo-fat2019/train_curated.csv")).set_index("fname")
    labels = list(oof.columns[1:])
    y = fat_data.label_matrix(cur.loc[oof["fname"]].reset_index(), labels)
    prior = lwlrap(y, np.tile(y.mean(axis=0), (len(y), 1)))
    assert m["val_lwlrap"] == pytest.approx(lwlrap(y, oof[labels].to_numpy()), abs=1e-6)
    assert m["val_lwlrap"] > prior + 0.25, (m["val_lwlrap"], prior)


MIRRORED = f"""
import sys
sys.path.insert(0, {ROOT!r})
from src.kit import distribute
made, make = {{}}, distribute.get_strategy


def shared(name="default"):                 # one strategy object per name in this process
    if name not in made:
        made[name] = make(name)
    return made[name]


distribute.get_strategy = shared
from src import cv
code = cv.main(sys.argv[1:])
print("src.cv exit", code, flush=True)
# Quick Draw's model under the same two-replica strategy object (a second MirroredStrategy in one
# process would reuse its collective keys): built in its scope, one step trained
import keras, numpy as np
from src.quickdraw import models
from src.quickdraw.config import QDConfig
strategy = distribute.get_strategy("mirrored")
cfg = QDConfig(model="cnn", raster_size=32, cnn_filters=4, cnn_blocks=2, strategy="mirrored")
with strategy.scope():
    m = models.build_model(cfg, 8)
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 1)).astype(np.uint8)
loss = m.fit(x, np.eye(8, dtype=np.float32), batch_size=8, epochs=1, verbose=0).history["loss"][0]
print("quickdraw cnn: replicas", strategy.num_replicas_in_sync, "loss finite", bool(np.isfinite(loss)), flush=True)
"""


@background_job("mirrored_run", last=True)
def _mirrored_run(folder):
    import conftest

    write_tiny_layout(os.path.join(folder, "fat"))
    return conftest.LANE.run([sys.executable, "-c", MIRRORED, "--data-dir", "fat", *TINY_FLAGS, "--fold", "0",
                              "--epochs", "1", "--strategy", "mirrored"], cwd=folder, timeout=600)


@pytest.fixture
def mirrored_run(background):
    return background.result("mirrored_run")


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_cpu_replicas(mirrored_run):
    """A fresh process, so the CPU can still be split into two logical devices (two replicas):
    a FAT2019 fold trains, then a Quick Draw model is built and trained a step in the same strategy."""
    r = mirrored_run
    assert r.returncode == 0, r.stderr[-2000:]
    assert "MirroredStrategy over 2 device(s)" in r.stdout
    out = r.stdout.strip().splitlines()
    i = out.index("src.cv exit 0")
    assert out[i - 1].startswith("fold 0 lwlrap ")
    assert out[-1] == "quickdraw cnn: replicas 2 loss finite True"
