"""Quick, Draw! end to end on the demo data with tiny models: cv, resume, named runs, predict,
score, study; CLI errors. Each CLI runs in a temporary folder; tests that need the tiny cnn run
use the session's (conftest `qd_tiny_run`, or a private copy `qd_tiny`)."""
import json
import os
import pathlib
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import QD_TINY, QD_TINY_CNN, background_job, killed_in_process, one
from src.kit.errors import KitWarning
from src.quickdraw import cv, predict, score, study
from src.quickdraw.config import QDConfig
from src.quickdraw.demo import DEMO_TEST_PER_CLASS, DEMO_WORDS

TINY, TINY_CNN = QD_TINY, QD_TINY_CNN
TINY_INCEPTION = TINY + ["--model", "inception", "--raster-size", "32", "--cnn-filters", "8", "--cnn-blocks", "2"]
TINY_LSTM = TINY + ["--model", "lstm", "--max-len", "24", "--lstm-units", "4", "--lstm-layers", "1"]
TINY_CONVLSTM = TINY + ["--model", "convlstm", "--max-len", "24", "--lstm-units", "4", "--lstm-layers", "1",
                        "--stroke5"]
FOLD_FILES = ("config.json", "best.weights.h5", "best.keras", "last.keras", "state.json", "history.csv",
              "history.png", "oof.csv", "metrics.json", "per_label.png")


def last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def check_submission(path, sample, words):
    sub = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(sub.columns) == ["key_id", "word"]
    assert sub.key_id.tolist() == pd.read_csv(sample, dtype=str).key_id.tolist()
    tokens = {w.replace(" ", "_") for w in words}
    for row in sub.word:
        guess = row.split(" ")
        assert len(guess) == 3 and len(set(guess)) == 3 and set(guess) <= tokens
    return sub


def cv_runs(argvs, cwd) -> list[str]:
    """src.quickdraw.cv with each argv in turn in `cwd` (by the background lane's worker): the last
    line each printed. A failure raises."""
    import conftest

    last = []
    for argv in argvs:
        r = conftest.LANE.module("src.quickdraw.cv", argv, cwd)
        assert r.returncode == 0, (argv, r.stdout[-2000:] + r.stderr[-3000:])
        last.append(r.stdout.strip().splitlines()[-1])
    return last


@background_job("demo_runs", needs=("qd_tiny_run",))
def _qd_three_runs(folder):
    """cv on the demo: cnn fold 0 (the session's tiny run, copied); lstm every fold; convlstm fold 1;
    and, in another work dir, inception fold 1 without augmentation (the lane's worker; the last
    line each run printed is kept for test_cv_last_line)."""
    import conftest

    root = os.path.join(folder, "runs")
    shutil.copytree(conftest.LANE.result("qd_tiny_run"), root, symlinks=True)
    last = cv_runs([["--fold", "all"] + TINY_LSTM, ["--fold", "1"] + TINY_CONVLSTM,
                    ["--fold", "1", "--no-augment", "--work-dir", "work-inception"] + TINY_INCEPTION], root)
    return pathlib.Path(root), last


@pytest.fixture(scope="session")
def demo_runs(background):
    return background.result("demo_runs")[0]


@pytest.fixture
def demo_last_lines(background):
    return background.result("demo_runs")[1]


def test_cv_outputs(qd_tiny_run):
    root = qd_tiny_run
    run = one(str(root / "work" / "demo-quickdraw-*" / "cnn" / "fold0"))
    for f in FOLD_FILES:
        assert os.path.isfile(os.path.join(run, f)), f
    cfg = json.load(open(os.path.join(run, "config.json")))
    assert cfg["model"] == "cnn" and cfg["raster_size"] == 32 and set(QDConfig().__dict__) <= set(cfg)
    assert cfg["labels"] == DEMO_WORDS and len(cfg["folds_sha1"]) == 40
    hist = pd.read_csv(os.path.join(run, "history.csv"))
    assert hist["epoch"].tolist() == [1] and {"val_map3", "val_top1", "loss", "lr"} <= set(hist.columns)
    m = json.load(open(os.path.join(run, "metrics.json")))
    assert m["best_epoch"] == 1 and 0 <= m["val_map3"] <= 1 and m["n_classes"] == 8
    folds = pd.read_csv(one(str(root / "folds" / "demo-quickdraw-*.csv")))
    assert list(folds.columns) == ["key_id", "word", "fold"] and len(folds) == 8 * 12
    oof = pd.read_csv(os.path.join(run, "oof.csv"))
    assert list(oof.columns) == ["key_id"] + DEMO_WORDS
    assert len(oof) == m["n_val"] == (folds.fold == 0).sum()
    np.testing.assert_allclose(oof[DEMO_WORDS].sum(axis=1), 1, atol=1e-4)


@pytest.mark.slow
def test_cv_outputs_of_every_fold_and_the_sequence_models(demo_runs):
    lstm = one(str(demo_runs / "work" / "demo-quickdraw-*" / "lstm"))
    assert sorted(os.listdir(lstm)) == [f"fold{k}" for k in range(3)]
    convlstm = one(str(demo_runs / "work" / "demo-quickdraw-*" / "convlstm"))
    assert sorted(os.listdir(convlstm)) == ["fold1"]
    for f in FOLD_FILES:
        assert os.path.isfile(os.path.join(lstm, "fold2", f)) and os.path.isfile(os.path.join(convlstm, "fold1", f)), f


@pytest.mark.slow
def test_cv_last_line(demo_last_lines):
    every_fold, one_fold, inception = demo_last_lines
    assert re.fullmatch(r"oof map@3 [01]\.\d{4} over 96 drawings of folds 0,1,2 \(mean of folds [01]\.\d{4}\)",
                        every_fold), every_fold
    assert re.fullmatch(r"fold 1 map@3 [01]\.\d{4}", one_fold), one_fold
    assert re.fullmatch(r"fold 1 map@3 [01]\.\d{4}", inception), inception


def test_predict_and_score(qd_tiny, capsys):
    """The fast end to end: src.quickdraw.cv (the session's tiny run) -> predict -> score."""
    assert predict.main([]) == 0
    assert "predict: cnn: 1 fold(s)" in capsys.readouterr().out
    sub = check_submission("submissions/quickdraw_submission.csv", "data/demo-quickdraw/sample_submission.csv",
                           DEMO_WORDS)
    assert len(sub) == 8 * DEMO_TEST_PER_CLASS
    assert score.main(["submissions/quickdraw_submission.csv", "data/demo-quickdraw.solution.csv"]) == 0
    assert re.fullmatch(r"map@3 [01]\.\d{4}", last_line(capsys))


@pytest.mark.slow
def test_predict_and_score_three_runs(demo_runs, monkeypatch, capsys):
    monkeypatch.chdir(demo_runs)
    assert predict.main([]) == 0
    out = capsys.readouterr().out
    assert "cnn: 1 fold(s)" in out and "lstm: 3 fold(s)" in out and "convlstm: 1 fold(s)" in out
    # cnn validated fold 0, convlstm fold 1: no drawing has all three runs' scores, so each is scored alone
    assert re.search(r"out-of-fold map@3 of each run over its own folds: cnn [01]\.\d{4}, convlstm [01]\.\d{4}, "
                     r"lstm [01]\.\d{4} \(the runs validated different folds", out)
    sub = check_submission("submissions/quickdraw_submission.csv", "data/demo-quickdraw/sample_submission.csv",
                           DEMO_WORDS)
    assert len(sub) == 8 * DEMO_TEST_PER_CLASS
    assert score.main(["submissions/quickdraw_submission.csv", "data/demo-quickdraw.solution.csv"]) == 0
    assert re.fullmatch(r"map@3 [01]\.\d{4}", last_line(capsys))
    assert predict.main(["--models", "cnn", "--out", "sub_cnn.csv"]) == 0      # one run only, another path
    check_submission("sub_cnn.csv", "data/demo-quickdraw/sample_submission.csv", DEMO_WORDS)


def test_predict_bad_test_rows_get_three_words(qd_tiny):
    src = qd_tiny / "data" / "demo-quickdraw"
    test = pd.read_csv(src / "test_simplified.csv", dtype=str)
    saved = test.copy()
    bad = ["{not json", "[]", "[[[1, 2], [3]]]", "[[[0, 999], [0, 1]]]"]
    test.loc[:3, "drawing"] = bad
    test.to_csv(src / "test_simplified.csv", index=False)      # the test set is not part of the dataset's name
    try:
        assert predict.main(["--out", "sub_bad.csv", "--models", "cnn"]) == 2       # 4 of 200 > --max-bad-test 0.01
        assert not os.path.exists("sub_bad.csv")
        with pytest.warns(KitWarning) as rec:
            assert predict.main(["--out", "sub_bad.csv", "--models", "cnn", "--max-bad-test", "0.02"]) == 0
        msgs = [str(w.message) for w in rec if "test sample(s)" in str(w.message)]
        assert len(msgs) == 1 and msgs[0].startswith("4 test sample(s)") and all(k in msgs[0] for k in test.key_id[:4])
    finally:
        saved.to_csv(src / "test_simplified.csv", index=False)
    sub = check_submission("sub_bad.csv", src / "sample_submission.csv", DEMO_WORDS).set_index("key_id")
    cfg = json.load(open(one("work/*/cnn/fold0/config.json")))
    prior = sorted(zip(cfg["label_prior"], cfg["labels"]), key=lambda t: -t[0])      # stable: ties keep word order
    fallback = " ".join(w.replace(" ", "_") for _, w in prior[:3])
    assert (sub.loc[test.key_id[:4], "word"] == fallback).all()


@pytest.mark.slow
def test_two_named_variants_both_survive_and_ensemble(qd_tiny, capsys):
    # cnn fold 0 with TINY_CNN: the session's tiny run
    assert cv.main(["--fold", "0", "--name", "cnn8", "--eager"] + TINY_CNN[:-4] + ["--cnn-filters", "8", "--cnn-blocks", "2"]) == 0
    a = json.load(open(one("work/*/cnn/fold0/config.json")))
    b = json.load(open(one("work/*/cnn8/fold0/config.json")))
    assert (a["cnn_filters"], b["cnn_filters"]) == (4, 8) and b["name"] == "cnn8"
    capsys.readouterr()
    assert predict.main([]) == 0
    out = capsys.readouterr().out
    assert "predict: cnn: 1 fold(s)" in out and "predict: cnn8: 1 fold(s)" in out and "2 run(s), 2 fold(s)" in out
    assert re.search(r"over \d+ drawings: cnn [01]\.\d{4}, cnn8 [01]\.\d{4}, blend [01]\.\d{4}", out)


@pytest.mark.slow
def test_killed_fold_resumes_to_the_same_history(tmp_path, monkeypatch):
    """Killed (in-process, see conftest.killed_in_process) right after committing epoch 2, then
    --resume: the history equals an uninterrupted run's, and the half-done fold never replaced a
    finished one meanwhile."""
    flags = ["--fold", "0"] + TINY_CNN[:TINY_CNN.index("--epochs")] + ["--epochs", "4"] + \
        TINY_CNN[TINY_CNN.index("--epochs") + 2:] + ["--eager"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    killed_in_process(cv.main, flags, "after-state-2")
    partial = one(str(tmp_path / "a/work/*/cnn/fold0.partial"))
    assert not os.path.exists(partial[:-len(".partial")])                  # nothing finished to trust yet
    assert pd.read_csv(os.path.join(partial, "history.csv"))["epoch"].tolist() == [1, 2]
    assert cv.main(flags + ["--resume"]) == 0
    monkeypatch.chdir(tmp_path / "b")
    assert cv.main(flags) == 0
    resumed = pd.read_csv(one(str(tmp_path / "a/work/*/cnn/fold0/history.csv")))
    straight = pd.read_csv(one(str(tmp_path / "b/work/*/cnn/fold0/history.csv")))
    assert resumed["epoch"].tolist() == straight["epoch"].tolist() == [1, 2, 3, 4]
    cols = ["loss", "val_map3", "val_top1", "lr"]
    np.testing.assert_allclose(resumed[cols].to_numpy(), straight[cols].to_numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_the_model_learns_on_the_demo(qd_demo_run):
    """Clearly above chance (MAP@3 of random guesses over 8 categories: 0.23): fails if training
    silently does nothing."""
    m = json.load(open(one(str(qd_demo_run / "work/demo-quickdraw-*/cnn/fold0/metrics.json"))))
    assert m["val_map3"] > 0.6, m


def test_cli_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert cv.main(["--data-dir", "empty"]) == 2
    assert "train_simplified" in capsys.readouterr().err
    assert cv.main(["--data-dir", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert predict.main(["--data-dir", "empty"]) == 2
    assert "train_simplified" in capsys.readouterr().err
    (tmp_path / "empty" / "train_simplified").mkdir()
    (tmp_path / "empty" / "train_simplified" / "cat.csv").write_text("countrycode,drawing,key_id,recognized,timestamp,word\n")
    assert predict.main(["--data-dir", "empty"]) == 2                     # categories, but no test file
    assert "test_simplified.csv: no such file" in capsys.readouterr().err
    assert study.main(["--models", "rnn"]) == 2
    assert cv.main(["--fold", "7"] + TINY_CNN) == 2
    assert "--fold 7" in capsys.readouterr().err
    assert predict.main([]) == 2                                           # demo, nothing trained
    assert "python -m src.quickdraw.cv" in capsys.readouterr().err


@background_job("qd_study", last=True)
def _qd_study(folder):
    import conftest

    return conftest.LANE.module("src.quickdraw.study", ["--classes", "3,4", "--models", "cnn,lstm", "--eager"]
                                + TINY + ["--raster-size", "32", "--cnn-filters", "4", "--cnn-blocks", "2", "--max-len",
                                          "24", "--lstm-units", "4", "--lstm-layers", "1"], cwd=folder), folder


@pytest.fixture
def qd_study(background):
    return background.result("qd_study")


@pytest.mark.slow
def test_study_tiny(qd_study):
    r, tmp_path = qd_study
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = one(os.path.join(tmp_path, "work", "demo-quickdraw-*", "study"))
    md = open(os.path.join(out, "study.md")).read()
    assert "3 classes: top-1 / MAP@3" in md and "| cnn |" in md and "| lstm |" in md
    assert os.path.getsize(os.path.join(out, "study.png")) > 1000
    res = pd.read_csv(os.path.join(out, "results.csv"))
    assert sorted(zip(res.classes, res.model)) == [(3, "cnn"), (3, "lstm"), (4, "cnn"), (4, "lstm")]
    assert (res.gflop_per_step > 0).all() and "GFLOP a step" in md     # what each cell cost, counted by kit/flops


@pytest.mark.slow
def test_models_rebuild_from_config_and_weights_and_masking(tmp_path):
    from src.quickdraw import models

    for name in ("lstm", "convlstm", "cnn", "inception"):
        cfg = QDConfig(model=name, max_len=12, lstm_units=4, lstm_layers=2, raster_size=32, cnn_filters=8,
                       cnn_blocks=2)
        model = models.build_model(cfg, 5)
        if cfg.is_sequence:
            x = np.zeros((2, 12, 3), np.float32)
            x[:, :5] = np.random.default_rng(0).normal(size=(2, 5, 3))
        else:
            x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1)).astype(np.uint8)
        path = str(tmp_path / f"{name}.weights.h5")
        model.save_weights(path)
        again = models.build_model(cfg, 5)
        again.load_weights(path)
        np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    # masked pooling: padded steps do not count
    feats = np.arange(12, dtype=np.float32).reshape(1, 4, 3)
    seq = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]]], np.float32)
    masked = models.MaskLike()([feats, seq])
    np.testing.assert_array_equal(np.asarray(masked)[0, 2:], 0)
    s = models.MaskedSum()(feats, mask=np.array([[True, True, False, False]]))
    np.testing.assert_allclose(np.asarray(s), [[0 + 3, 1 + 4, 2 + 5]])

