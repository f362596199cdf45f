"""A submission is right or absent at prediction time: too many unreadable test samples stop the
run with nothing written; Quick Draw's rows are three distinct known words whatever the fold
recorded; a repeated test key_id is refused before any model is loaded."""
import json
import os
import shutil

import pandas as pd
import pytest

from conftest import TINY_FLAGS, one
from src import cv, predict
from src.quickdraw import cv as qd_cv, predict as qd_predict

QD_TINY = ["--per-class", "12", "--epochs", "1", "--batch-size", "32", "--n-folds", "3", "--no-jit", "--model", "cnn",
           "--raster-size", "32", "--cnn-filters", "4", "--cnn-blocks", "2"]


@pytest.fixture(scope="module")
def qd_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("qd-faults")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        assert qd_cv.main(["--fold", "0", "--eager"] + QD_TINY) == 0
    return root


@pytest.mark.slow
def test_too_many_unreadable_test_clips_stop_predict_and_write_nothing(tiny, capsys):
    assert cv.main(["--data-dir", "fat", *TINY_FLAGS, "--eager", "--fold", "0", "--epochs", "1"]) == 0
    sample = pd.read_csv("fat/sample_submission.csv")
    bad = sample["fname"][:3].tolist()                         # 3 of the 4 test clips
    for f in bad:
        open(os.path.join("fat/test", f), "wb").write(b"garbage")
    capsys.readouterr()
    assert predict.main(["--data-dir", "fat"]) == 2
    err = capsys.readouterr().err
    assert "3 of 4 test samples could not be used (--max-bad-test 0.01 allows 1)" in err
    assert all(f"{f}: unreadable" in err for f in bad) and "Nothing written" in err
    assert not os.path.exists("submissions/submission.csv")
    assert predict.main(["--data-dir", "fat", "--max-bad-test", "1.0"]) == 0
    assert len(pd.read_csv("submissions/submission.csv")) == 4


def test_a_repeated_test_key_id_is_refused_before_any_model_loads(qd_run, tmp_path, monkeypatch, capsys):
    shutil.copytree(qd_run, tmp_path / "w")
    monkeypatch.chdir(tmp_path / "w")
    test_csv = "data/demo-quickdraw/test_simplified.csv"
    test = pd.read_csv(test_csv, dtype=str)
    test.loc[5, "key_id"] = test.loc[4, "key_id"]
    test.to_csv(test_csv, index=False)

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the test file was checked")
    monkeypatch.setattr("src.quickdraw.models.build_model", no_model)
    assert qd_predict.main(["--out", "dup.csv"]) == 2
    err = capsys.readouterr().err
    assert "test_simplified.csv: 1 duplicate key_id(s)" in err and test.loc[4, "key_id"] in err
    assert not os.path.exists("dup.csv")


def test_unreadable_drawings_get_three_known_words_even_from_a_fold_without_label_prior(qd_run, tmp_path,
                                                                                          monkeypatch):
    shutil.copytree(qd_run, tmp_path / "w")
    monkeypatch.chdir(tmp_path / "w")
    cfg_path = one("work/*/cnn/fold0/config.json")
    cfg = json.load(open(cfg_path))
    del cfg["label_prior"]                                     # as an older kit wrote it
    json.dump(cfg, open(cfg_path, "w"))
    test_csv = "data/demo-quickdraw/test_simplified.csv"
    test = pd.read_csv(test_csv, dtype=str)
    test.loc[:1, "drawing"] = ["{not json", "[]"]
    test.to_csv(test_csv, index=False)
    assert qd_predict.main(["--out", "sub.csv", "--max-bad-test", "0.05"]) == 0
    sub = pd.read_csv("sub.csv", dtype=str, keep_default_na=False).set_index("key_id")
    known = {w.replace(" ", "_") for w in cfg["labels"]}
    for key in test.key_id[:2]:
        words = sub.loc[key, "word"].split(" ")
        assert len(set(words)) == 3 and set(words) <= known
