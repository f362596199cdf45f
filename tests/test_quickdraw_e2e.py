"""Quick, Draw! end to end on the demo data with tiny models (1 epoch): cv, predict, score,
study; model save/load; CLI errors. Each CLI runs in tmp_path."""
import os
import tempfile

os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="keras-home-")     # before TensorFlow loads
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import re  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

# Keras 3 + numpy 2 emit a DeprecationWarning about __array__(copy=...) on every predict
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

from src.quickdraw import cv, data, predict, score, study  # noqa: E402
from src.quickdraw.config import QDConfig  # noqa: E402

TINY = ["--per-class", "12", "--epochs", "1", "--batch-size", "32"]
TINY_CNN = TINY + ["--model", "cnn", "--raster-size", "32", "--cnn-filters", "4", "--cnn-blocks", "2"]
TINY_INCEPTION = TINY + ["--model", "inception", "--raster-size", "32", "--cnn-filters", "8", "--cnn-blocks", "2"]
TINY_LSTM = TINY + ["--model", "lstm", "--max-len", "24", "--lstm-units", "4", "--lstm-layers", "1"]
TINY_CONVLSTM = TINY + ["--model", "convlstm", "--max-len", "24", "--lstm-units", "4", "--lstm-layers", "1",
                        "--stroke5"]


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


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory):
    """cv on the demo (cnn fold 0; lstm all folds; convlstm fold 1), shared by the tests below."""
    root = tmp_path_factory.mktemp("qd")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    for argv in (["--fold", "0", "--n-folds", "3"] + TINY_CNN, ["--fold", "all"] + TINY_LSTM,
                 ["--fold", "1"] + TINY_CONVLSTM):
        assert cv.main(argv) == 0
    mp.undo()
    return root


def test_cv_outputs(demo_runs, capsys):
    root = demo_runs
    run = root / "work" / "quickdraw-demo" / "cnn" / "fold0"
    for f in ("model.keras", "config.json", "classes.json", "history.csv", "metrics.json", "oof.csv",
              "oof_probs.npy"):
        assert (run / f).is_file(), f
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"] == "cnn" and cfg["raster_size"] == 32 and set(cfg) == set(QDConfig().__dict__)
    hist = pd.read_csv(run / "history.csv")
    assert len(hist) == 1 and {"val_map3", "val_top1", "loss", "accuracy"} <= set(hist.columns)
    m = json.loads((run / "metrics.json").read_text())
    assert m["best_epoch"] == 1 and 0 <= m["val_map3"] <= 1 and m["n_classes"] == 8
    folds = pd.read_csv(root / "folds" / "quickdraw-demo.csv")
    assert list(folds.columns) == ["key_id", "word", "fold"] and len(folds) == 8 * 12
    oof = pd.read_csv(run / "oof.csv")
    assert len(oof) == m["n_val"] == (folds.fold == 0).sum()
    assert np.load(run / "oof_probs.npy").shape == (m["n_val"], 8)
    lstm = root / "work" / "quickdraw-demo" / "lstm"
    assert sorted(p.name for p in lstm.glob("fold*")) == [f"fold{k}" for k in range(3)]
    cvm = json.loads((lstm / "cv_metrics.json").read_text())
    assert len(pd.read_csv(lstm / "oof.csv")) == 96 and 0 <= cvm["oof_map3"] <= 1


def test_cv_last_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cv.main(["--fold", "1", "--n-folds", "2", "--strategy", "mirrored", "--no-augment"]
                   + TINY_INCEPTION) == 0
    assert re.fullmatch(r"fold 1 map@3 [01]\.\d{4}", last_line(capsys))
    assert cv.main(["--fold", "all", "--classes", "3", "--per-class", "4"] + TINY_CNN[2:]) == 0
    assert re.fullmatch(r"fold all map@3 [01]\.\d{4}", last_line(capsys))


def test_predict_and_score(demo_runs, monkeypatch, capsys):
    monkeypatch.chdir(demo_runs)
    assert predict.main([]) == 0
    out = capsys.readouterr().out
    assert "cnn: 1 folds" in out and "lstm: 3 folds" in out and "convlstm: 1 folds" in out
    sub = check_submission("submissions/quickdraw_submission.csv", "data/demo-quickdraw/sample_submission.csv",
                           data.DEMO_WORDS)
    assert len(sub) == 8 * data.DEMO_TEST_PER_CLASS
    assert score.main(["submissions/quickdraw_submission.csv", "data/demo-quickdraw.solution.csv"]) == 0
    assert re.fullmatch(r"map@3 [01]\.\d{4}", last_line(capsys))
    # one model only, another output path
    assert predict.main(["--models", "cnn", "--out", "sub_cnn.csv"]) == 0
    check_submission("sub_cnn.csv", "data/demo-quickdraw/sample_submission.csv", data.DEMO_WORDS)


def test_predict_bad_test_rows_get_three_words(demo_runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(demo_runs)
    src = demo_runs / "data" / "demo-quickdraw"
    bad_dir = tmp_path / "demo"                           # same dataset name: uses the demo runs
    (bad_dir / "train_simplified").mkdir(parents=True)
    for f in os.listdir(src / "train_simplified"):
        (bad_dir / "train_simplified" / f).write_bytes((src / "train_simplified" / f).read_bytes())
    test = pd.read_csv(src / "test_simplified.csv", dtype=str)
    bad = ["{not json", "[]", "[[[1, 2], [3]]]", "[[[0, 999], [0, 1]]]"]
    test.loc[:3, "drawing"] = bad
    test.to_csv(bad_dir / "test_simplified.csv", index=False)
    (bad_dir / "sample_submission.csv").write_bytes((src / "sample_submission.csv").read_bytes())
    assert predict.main(["--data-dir", str(bad_dir), "--out", "sub_bad.csv", "--models", "cnn"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "4 test rows" in err
    assert all(k in err for k in test.key_id[:4])
    sub = check_submission("sub_bad.csv", src / "sample_submission.csv", data.DEMO_WORDS).set_index("key_id")
    counts = json.loads((demo_runs / "work/quickdraw-demo/cnn/fold0/classes.json").read_text())
    fallback = " ".join(w.replace(" ", "_") for w in predict.fallback_words([counts]))
    assert (sub.loc[test.key_id[:4], "word"] == fallback).all()


def test_cli_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert cv.main(["--data-dir", "empty"]) == 2
    assert "train_simplified" in capsys.readouterr().err
    assert cv.main(["--data-dir", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert predict.main(["--data-dir", "empty"]) == 2
    assert "test_simplified.csv" in capsys.readouterr().err
    (tmp_path / "empty" / "test_simplified.csv").write_text("key_id,countrycode,drawing\n")
    assert predict.main(["--data-dir", "empty"]) == 2
    assert "no trained" in capsys.readouterr().err
    assert study.main(["--models", "rnn"]) == 2
    assert cv.main(["--fold", "7"] + TINY_CNN) == 2
    assert "--fold 7" in capsys.readouterr().err


def test_study_tiny(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert study.main(["--classes", "3,4", "--models", "cnn,lstm"] + TINY
                      + ["--raster-size", "32", "--cnn-filters", "4", "--cnn-blocks", "2", "--max-len", "24",
                         "--lstm-units", "4", "--lstm-layers", "1"]) == 0
    out = tmp_path / "work" / "quickdraw-demo" / "study"
    md = (out / "study.md").read_text()
    assert "3 classes: top-1 / MAP@3" in md and "| cnn |" in md and "| lstm |" in md
    assert (out / "study.png").stat().st_size > 1000
    res = pd.read_csv(out / "results.csv")
    assert sorted(zip(res.classes, res.model)) == [(3, "cnn"), (3, "lstm"), (4, "cnn"), (4, "lstm")]


def test_models_save_load_and_masking(tmp_path):
    import keras

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
        path = str(tmp_path / f"{name}.keras")
        model.save(path)
        again = keras.models.load_model(path, compile=False)
        np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    # masked pooling: padded steps do not count
    feats = np.arange(12, dtype=np.float32).reshape(1, 4, 3)
    seq = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]]], np.float32)
    masked = models.MaskLike()([feats, seq])
    np.testing.assert_array_equal(np.asarray(masked)[0, 2:], 0)
    s = models.MaskedSum()(feats, mask=np.array([[True, True, False, False]]))
    np.testing.assert_allclose(np.asarray(s), [[0 + 3, 1 + 4, 2 + 5]])


def test_cv_mirrored_two_replicas_subprocess(tmp_path):
    """A fresh process, so the CPU can still be split into two logical devices (two replicas)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "src.quickdraw.cv", "--fold", "0", "--strategy", "mirrored"]
                       + TINY_CNN, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 device(s)" in r.stdout
    assert re.fullmatch(r"fold 0 map@3 [01]\.\d{4}", r.stdout.strip().splitlines()[-1])
