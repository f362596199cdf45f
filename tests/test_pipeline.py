"""End to end on a tiny layout: folds, training, resume, prediction, and every bad-input case."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import TINY_FLAGS, TINY_LABELS
from src import cv, folds, predict, score
from src.config import FatConfig, KNOWN_BAD_CLIPS
from src.data import label_matrix


def run_cv(*extra):
    return cv.main(["--data-dir", "fat", *TINY_FLAGS, *extra])


def test_folds_are_stratified_disjoint_and_curated_only(tiny):
    assert folds.main(["--data-dir", "fat", "--n-folds", "3"]) == 0
    f = pd.read_csv("folds/fat.csv")
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
    assert run_cv("--fold", "0", "--use-noisy") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("fold 0 lwlrap ")
    d = "work/fat/cnn/fold0"
    for name in ("best.keras", "last.keras", "config.json", "history.csv", "oof.csv", "metrics.json"):
        assert os.path.exists(os.path.join(d, name)), name
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert cfg["n_mels"] == 32 and cfg["use_noisy"] is True
    oof = pd.read_csv(os.path.join(d, "oof.csv"))
    fold_of = pd.read_csv("folds/fat.csv").set_index("fname")["fold"]
    assert (oof["fname"].map(fold_of) == 0).all()                         # only held-out curated clips scored
    assert len(oof) == (fold_of == 0).sum()
    m = json.load(open(os.path.join(d, "metrics.json")))
    assert m["n_noisy"] == 6 and m["epochs_run"] == 2
    assert float(out[-1].split()[-1]) == pytest.approx(m["val_lwlrap"], abs=1e-4)

    # resume: two more epochs continue from epoch 2, keeping the history
    assert run_cv("--fold", "0", "--use-noisy", "--resume", "--epochs", "4") == 0
    assert "resuming after epoch 2" in capsys.readouterr().out
    h = pd.read_csv(os.path.join(d, "history.csv"))
    assert h["epoch"].tolist() == [0, 1, 2, 3]
    assert json.load(open(os.path.join(d, "metrics.json")))["epochs_run"] == 4
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

    # local scoring against answers
    sol = sample.copy()
    sol[TINY_LABELS] = 0
    for i, f in enumerate(sol["fname"]):
        sol.loc[i, TINY_LABELS[int(f[2:8]) % 3]] = 1
    sol.to_csv("sol.csv", index=False)
    capsys.readouterr()
    assert score.main(["submissions/submission.csv", "sol.csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("lwlrap ") and "label" in lines[0]


def test_resume_drops_history_rows_after_the_saved_state(tiny, capsys):
    assert run_cv("--fold", "1", "--epochs", "2") == 0
    d = "work/fat/cnn/fold1"
    state = json.load(open(os.path.join(d, "state.json")))
    state.update(epoch=0, done=False)                                     # as if killed during epoch 2
    json.dump(state, open(os.path.join(d, "state.json"), "w"))
    assert run_cv("--fold", "1", "--resume") == 0
    assert pd.read_csv(os.path.join(d, "history.csv"))["epoch"].tolist() == [0, 1]


def test_missing_training_files_stop_before_training(tiny, capsys):
    cur = pd.read_csv("fat/train_curated.csv")
    for f in cur["fname"][:3]:
        os.remove(os.path.join("fat/train_curated", f))
    assert run_cv("--fold", "0") == 2
    err = capsys.readouterr().err
    assert "3 clip(s) listed in the CSV are missing" in err and cur["fname"][0] in err
    assert not os.path.exists("work/fat/cnn/fold0")                       # nothing trained, nothing written


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


def test_unusable_training_clips_are_skipped_and_counted(tiny, capsys):
    cur = pd.read_csv("fat/train_curated.csv")
    junk, empty, silent = cur["fname"][3], cur["fname"][4], cur["fname"][5]
    open(os.path.join("fat/train_curated", junk), "wb").write(b"garbage")
    sf.write(os.path.join("fat/train_curated", empty), np.zeros(0, np.float32), 16000)
    sf.write(os.path.join("fat/train_curated", silent), np.zeros(16000, np.float32), 16000)
    with pytest.warns(UserWarning) as rec:
        assert run_cv("--fold", "all", "--epochs", "1") == 0
    text = " ".join(str(w.message) for w in rec)
    for f, why in [(junk, "unreadable"), (empty, "empty"), (silent, "silent")]:
        assert f in text and why in text
    for k in range(3):                                                     # each fold's summary counts them
        assert set(json.load(open(f"work/fat/cnn/fold{k}/metrics.json"))["skipped_clips"]) == {junk, empty, silent}
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("oof lwlrap ")


def test_known_bad_clips_left_out_unless_kept(tiny, capsys):
    cur = pd.read_csv("fat/train_curated.csv")
    os.rename(os.path.join("fat/train_curated", cur["fname"][0]), os.path.join("fat/train_curated", KNOWN_BAD_CLIPS[0]))
    cur.loc[0, "fname"] = KNOWN_BAD_CLIPS[0]
    cur.to_csv("fat/train_curated.csv", index=False)
    assert run_cv("--fold", "0", "--epochs", "1") == 0
    assert "leaving out 1 known mislabelled" in capsys.readouterr().out
    assert run_cv("--fold", "0", "--epochs", "1", "--keep-bad-clips") == 0
    assert "leaving out" not in capsys.readouterr().out


def test_unreadable_test_clip_gets_label_frequencies(tiny, capsys):
    assert run_cv("--fold", "0", "--epochs", "1") == 0
    sample = pd.read_csv("fat/sample_submission.csv")
    bad = sample["fname"][1]
    open(os.path.join("fat/test", bad), "wb").write(b"garbage")
    with pytest.warns(UserWarning, match=bad):
        assert predict.main(["--data-dir", "fat"]) == 0
    sub = pd.read_csv("submissions/submission.csv")
    assert sub["fname"].tolist() == sample["fname"].tolist()
    np.testing.assert_allclose(sub.loc[1, TINY_LABELS].to_numpy(dtype=float), [1 / 3] * 3, atol=1e-6)


def test_predict_without_training_is_a_clear_error(tiny, capsys):
    assert predict.main(["--data-dir", "fat"]) == 2
    assert "run python -m src.cv first" in capsys.readouterr().err


def test_mirrored_strategy_trains_on_two_cpu_replicas(tiny):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-m", "src.cv", "--data-dir", "fat", *TINY_FLAGS, "--fold", "0",
                        "--epochs", "1", "--strategy", "mirrored"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "MirroredStrategy over 2 device(s)" in r.stdout
    assert r.stdout.strip().splitlines()[-1].startswith("fold 0 lwlrap ")


def test_config_flags_and_help():
    cfg = FatConfig()
    assert cfg.sample_rate == 44100 and cfg.n_mels == 128 and cfg.hop_length == 347 and cfg.fmin == 20
    with pytest.raises(SystemExit) as e:
        cv.main(["--help"])
    assert e.value.code == 0


def test_fold_file_with_another_fold_count_is_refused(tiny, capsys):
    assert folds.main(["--data-dir", "fat", "--n-folds", "3"]) == 0
    assert run_cv("--fold", "0", "--n-folds", "5") == 2
    assert "has 3 folds but --n-folds is 5" in capsys.readouterr().err


def test_named_runs_with_other_features_ensemble(tiny, capsys):
    """Two runs of the CNN (one with 16 mels under --name) blend in one submission; --models picks."""
    assert run_cv("--fold", "all", "--epochs", "1") == 0
    assert run_cv("--fold", "all", "--epochs", "1", "--n-mels", "16", "--name", "cnn16") == 0
    assert os.path.exists("work/fat/cnn16/fold2/best.keras")
    assert json.load(open("work/fat/cnn16/fold0/config.json"))["n_mels"] == 16
    capsys.readouterr()
    assert predict.main(["--data-dir", "fat"]) == 0
    out = capsys.readouterr().out
    assert "predict: cnn: 3 fold(s)" in out and "predict: cnn16: 3 fold(s)" in out
    assert "2 model(s), 6 fold(s)" in out
    report = next(l for l in out.splitlines() if "out-of-fold lwlrap" in l)
    assert "cnn " in report and "cnn16 " in report and "blend " in report
    both = pd.read_csv("submissions/submission.csv")
    assert predict.main(["--data-dir", "fat", "--models", "cnn16", "--out", "one.csv"]) == 0
    one = pd.read_csv("one.csv")
    assert one["fname"].tolist() == both["fname"].tolist()
    assert not np.allclose(one[TINY_LABELS].to_numpy(), both[TINY_LABELS].to_numpy())
