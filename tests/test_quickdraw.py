"""Quick, Draw! unit tests: parsing and bad input, stroke-3/5, rasters, augmentation, folds,
class choice, demo data, MAP@3, scoring. No TensorFlow here (see test_quickdraw_e2e.py)."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from src.kit.metrics import map_at_k
from src.quickdraw import data, score, strokes
from src.kit.errors import KitWarning
from src.quickdraw.strokes import Ink, parse_drawings, rasterize, to_stroke3

U = 1 / 255


def ink(*drawings):
    """Ink from drawings in Kaggle's structure (lists)."""
    k, valid, bad = parse_drawings([json.dumps(d) for d in drawings])
    assert not bad, bad
    return k


# ---------------------------------------------------------------- parsing and bad input

def test_parse_valid_drawing_roundtrip():
    d = [[[10, 20, 20], [5, 5, 25]], [[0], [0]]]
    k, valid, bad = parse_drawings([json.dumps(d)])
    assert valid.tolist() == [True] and bad == {}
    assert k.xy.dtype == np.uint8
    assert k.stroke_len.tolist() == [3, 1] and k.n_strokes.tolist() == [2]
    assert k.drawing(0) == d


@pytest.mark.parametrize("text, reason", [
    ("not json", strokes.BAD_JSON),
    ('[[[1, 2], [3, 4]]', strokes.BAD_JSON),            # truncated
    ("NaN", strokes.BAD_JSON),
    ("", strokes.BAD_JSON),
    ("[]", strokes.NO_STROKES),
    ("[[[], []]]", strokes.NO_STROKES),
    ('{"a": 1}', strokes.NOT_LIST),
    ("[[[1, 2], [3]]]", strokes.UNEQUAL),
    ("[[[1, 2], [3, 4]], [[5], [6, 7]]]", strokes.UNEQUAL),
    ("[[[1, 2], [3, 4], [5, 6]]]", strokes.MALFORMED),
    ("[[1, 2]]", strokes.MALFORMED),
    ('[[[1, "a"], [3, 4]]]', strokes.MALFORMED),
    ("[[[1, [2]], [3, 4]]]", strokes.MALFORMED),
    ("[[[1, null], [3, 4]]]", strokes.MALFORMED),
    ("[[[1, 256], [3, 4]]]", strokes.OUT_OF_RANGE),
    ("[[[1, 2], [-1, 4]]]", strokes.OUT_OF_RANGE),
    ("[[[1, 2], [3, 1e300]]]", strokes.OUT_OF_RANGE),
])
def test_parse_bad_inputs(text, reason):
    good = "[[[0, 255], [0, 255]]]"
    k, valid, bad = parse_drawings([good, text, good])
    assert valid.tolist() == [True, False, True]
    assert bad == {1: reason}
    assert len(k) == 2 and k.drawing(0) == k.drawing(1) == [[[0, 255], [0, 255]]]


def test_parse_nan_field_from_pandas():
    k, valid, bad = parse_drawings([float("nan")])
    assert not valid[0] and bad == {0: strokes.BAD_JSON}


def test_summarize_bad_names_first_keys():
    msg = strokes.summarize_bad({0: "x", 2: "y", 3: "x"}, ["k0", "k1", "k2", "k3"], "rows", limit=2)
    assert msg.startswith("3 rows") and "x: 2" in msg and "k0, k2" in msg and "1 more" in msg


# ---------------------------------------------------------------- stroke-3 / stroke-5

def test_stroke3_hand_computed():
    a = [[[10, 20, 20], [5, 5, 25]], [[0], [0]]]       # points (10,5) (20,5) (20,25) | (0,0)
    b = [[[0, 0, 3], [0, 0, 4]]]                         # repeated points are dropped
    x = to_stroke3(ink(a, b), max_len=5)
    want_a = np.array([[10, 5, 0], [10, 0, 0], [0, 20, 1], [-20, -25, 1], [0, 0, 0]], np.float32)
    want_a[:, :2] *= U
    want_b = np.zeros((5, 3), np.float32)
    want_b[0] = [3 * U, 4 * U, 1]
    np.testing.assert_allclose(x[0], want_a, atol=1e-7)
    np.testing.assert_allclose(x[1], want_b, atol=1e-7)
    assert x.dtype == np.float32 and x.shape == (2, 5, 3)


def test_stroke3_truncates():
    a = [[[10, 20, 20], [5, 5, 25]], [[0], [0]]]
    x = to_stroke3(ink(a), max_len=2)
    np.testing.assert_allclose(x[0], [[10 * U, 5 * U, 0], [10 * U, 0, 0]], atol=1e-7)


def test_stroke5_hand_computed():
    a = [[[10, 20, 20], [5, 5, 25]], [[0], [0]]]
    x = to_stroke3(ink(a), max_len=5, stroke5=True)
    want = np.array([[10, 5, 1, 0, 0], [10, 0, 1, 0, 0], [0, 20, 0, 1, 0], [-20, -25, 0, 0, 1],
                     [0, 0, 0, 0, 0]], np.float32)
    want[:, :2] *= U
    np.testing.assert_allclose(x[0], want, atol=1e-7)
    # truncated: the last kept point carries the end flag
    x = to_stroke3(ink(a), max_len=2, stroke5=True)
    np.testing.assert_allclose(x[0, 1], [10 * U, 0, 0, 0, 1], atol=1e-7)


def test_stroke3_padding_is_the_only_all_zero_row():
    assert to_stroke3(Ink.concat([]), 4).shape == (0, 4, 3)
    rng = np.random.default_rng(0)
    ds = [[[rng.integers(0, 3, 6).tolist(), rng.integers(0, 3, 6).tolist()]] for _ in range(50)]
    x = to_stroke3(ink(*ds), max_len=8)
    real = (x != 0).any(axis=2)
    n_real = real.sum(axis=1)
    # real rows first, then only padding
    assert all(real[i, :n].all() and not real[i, n:].any() for i, n in enumerate(n_real))


# ---------------------------------------------------------------- rasters

def test_raster_hand_computed():
    d = [[[0, 255], [0, 0]], [[0], [255]]]               # top edge, then a dot bottom-left
    img = rasterize(ink(d), size=4, line_width=1)
    want = np.array([[255, 255, 255, 255], [0, 0, 0, 0], [0, 0, 0, 0], [255, 0, 0, 0]], np.uint8)
    np.testing.assert_array_equal(img[0], want)
    img = rasterize(ink(d), size=4, line_width=1, time_colour=True)
    want[3, 0] = 240                                      # second stroke is darker
    np.testing.assert_array_equal(img[0], want)


def test_raster_steep_line_dda():
    # (0,0) -> (85,255) at size 4: (0,0) -> (1,3), 3 steps: x 0, 1/3, 2/3, 1 -> 0, 0, 1, 1
    img = rasterize(ink([[[0, 85], [0, 255]]]), size=4, line_width=1)
    want = np.zeros((4, 4), np.uint8)
    for x, y in [(0, 0), (0, 1), (1, 2), (1, 3)]:
        want[y, x] = 255
    np.testing.assert_array_equal(img[0], want)


def test_raster_line_width_and_border():
    img = rasterize(ink([[[0, 0], [0, 255]]], [[[255, 255], [0, 255]]]), size=5, line_width=2)
    want = np.zeros((5, 5), np.uint8)
    want[:, :2] = 255                                     # width 2: the line and its right neighbour
    np.testing.assert_array_equal(img[0], want)
    want = np.zeros((5, 5), np.uint8)
    want[:, 4] = 255                                      # clipped at the right border
    np.testing.assert_array_equal(img[1], want)
    img = rasterize(ink([[[128], [128]]]), size=5, line_width=3)
    want = np.zeros((5, 5), np.uint8)
    want[1:4, 1:4] = 255                                  # width 3: centred square brush
    np.testing.assert_array_equal(img[0], want)


def test_raster_time_colour_brighter_wins_and_pil_agrees_roughly():
    d = [[[0, 255], [128, 128]], [[128, 128], [0, 255]], [[0, 255], [0, 255]]]
    img = rasterize(ink(d), size=9, line_width=1, time_colour=True)
    assert img[0, 4, 4] == 255                            # crossing: the first stroke's grey
    assert img[0, 0, 4] == 240 and img[0, 0, 0] == 225
    from benchmarks.pil_raster import rasterize_pil

    pil = rasterize_pil(ink(d), size=9, line_width=1, time_colour=True)
    assert ((pil > 0) == (img > 0)).mean() > 0.9


# ---------------------------------------------------------------- augmentation

def test_augment_keeps_structure_and_normalisation():
    rng = np.random.default_rng(0)
    k = ink([[[0, 100, 255], [0, 200, 30]], [[50, 60], [255, 0]]], [[[0, 255], [0, 0]]])
    a = strokes.augment(k, rng)
    b = strokes.augment(k, np.random.default_rng(0))
    np.testing.assert_array_equal(a.xy, strokes.augment(k, np.random.default_rng(0)).xy)
    assert len(a) == 2 and a.n_strokes.tolist() == [2, 1]
    assert (a.stroke_len >= 1).all() and (a.stroke_len <= k.stroke_len).all()
    assert a.xy.min() >= 0 and a.xy.max() <= 255 and np.array_equal(a.xy, np.round(a.xy))
    for i in range(2):
        pts = a.take([i]).xy
        assert pts.min(axis=0).tolist() == [0, 0] and (pts.max(axis=0) - pts.min(axis=0)).max() == 255
    assert not np.array_equal(strokes.augment(k, np.random.default_rng(1)).xy, b.xy)   # another seed, another draw


def test_augment_identity_when_off():
    k = ink([[[0, 100, 255], [0, 200, 30]], [[50, 60], [255, 0]]])
    a = strokes.augment(k, np.random.default_rng(1), rotate=0, scale=0, shear=0, jitter=0, dropout=0)
    np.testing.assert_array_equal(a.xy, k.xy.astype(np.float32))


def test_mirror_by_hand_and_only_the_chosen_drawings():
    # x -> -x, then refitted: left edge at 0, longer side 255 (unchanged by a mirror)
    k = ink([[[0, 255, 50], [0, 100, 200]]], [[[0, 100], [0, 255]]])
    m = strokes.mirror(k)
    assert m.drawing(0) == [[[255, 0, 205], [0, 100, 200]]]
    assert m.drawing(1) == [[[100, 0], [0, 255]]]                  # 100 wide: mirrored within its own box
    np.testing.assert_array_equal(strokes.mirror(m).xy, k.xy)      # twice: the drawing again
    half = strokes.mirror(k, np.array([False, True]))
    assert half.drawing(0) == k.drawing(0) and half.drawing(1) == m.drawing(1)


def test_flip_tta_averages_a_drawing_and_its_mirror_image():
    from src.quickdraw.config import QDConfig
    from src.quickdraw.infer import predict_probs

    class LeftInk:                                                 # "probabilities": ink left of the centre vs right
        def predict(self, x, verbose=0):
            img = x[..., 0].astype(np.float64)
            left, right = img[:, :, :32].sum((1, 2)), img[:, :, 32:].sum((1, 2))
            return np.stack([left, right], 1) / (left + right)[:, None]

    k = ink([[[0, 10, 255], [0, 255, 250]]])                        # mostly on the left
    cfg = QDConfig(model="cnn", raster_size=64)
    plain = predict_probs(LeftInk(), k, cfg.replace(tta_flip=False))
    both = predict_probs(LeftInk(), k, cfg)                        # the raster models' default: on
    assert cfg.flips_at_test and not QDConfig(model="lstm").flips_at_test and QDConfig(model="lstm", tta_flip=True).flips_at_test
    assert plain[0, 0] > 0.6
    np.testing.assert_allclose(both, (plain + plain[:, ::-1]) / 2, atol=0.02)   # the mirror swaps the halves
    assert abs(both[0, 0] - 0.5) < 0.02


def test_a_config_saved_before_tta_flip_predicts_as_it_was_validated():
    from src.kit import configio
    from src.quickdraw.config import QDConfig

    old = {k: v for k, v in configio.to_dict(QDConfig(model="cnn")).items() if k != "tta_flip"}
    assert configio.from_dict(QDConfig, old).flips_at_test is False  # absent: off, as those runs were scored
    assert configio.from_dict(QDConfig, {**old, "tta_flip": None}).flips_at_test is True
    assert configio.from_dict(QDConfig, {}).aug_flip == 0.0          # no `absent`: today's default


def test_training_batches_mirror_with_aug_flip_and_not_without():
    from src.quickdraw.config import QDConfig
    from src.quickdraw.pipeline import make_batches, model_inputs

    k = ink([[[0, 255, 50], [0, 100, 200]]], [[[0, 100], [0, 255]]])
    still = dict(model="cnn", batch_size=2, aug_rotate=0, aug_scale=0, aug_shear=0, aug_jitter=0, aug_dropout=0)
    y = np.eye(2, dtype=np.float32)
    for flip, want in ((0.0, k), (1.0, strokes.mirror(k))):
        x, _ = make_batches(k, y, QDConfig(**still, aug_flip=flip), train=True, seed=0)[0]
        order = np.random.default_rng([0, 0]).permutation(2)          # the batch's shuffle
        np.testing.assert_array_equal(x, model_inputs(want.take(order), QDConfig(**still)))


def test_take_and_concat():
    k = ink([[[1], [2]]], [[[3, 4], [5, 6]], [[7], [8]]], [[[9], [9]]])
    t = k.take([2, 1, 1])
    assert [t.drawing(i) for i in range(3)] == [k.drawing(2), k.drawing(1), k.drawing(1)]
    c = Ink.concat([k.take([0]), k.take([2])])
    assert c.drawing(1) == [[[9], [9]]]


# ---------------------------------------------------------------- data, folds, classes

def test_choose_classes_fixed_and_nested():
    words = [f"w{i:02d}" for i in range(40)]
    a8, a16 = data.choose_classes(words, 8, 0), data.choose_classes(words, 16, 0)
    assert a8 == data.choose_classes(words, 8, 0) and len(a8) == 8 and set(a8) <= set(a16)
    assert data.choose_classes(words, 0, 0) == words
    with pytest.raises(data.KitError):
        data.choose_classes(words, 41, 0)


def _write_category(root, word, drawings, start_key=1000):
    os.makedirs(os.path.join(root, "train_simplified"), exist_ok=True)
    pd.DataFrame({"countrycode": "US", "drawing": drawings,
                  "key_id": [start_key + i for i in range(len(drawings))],
                  "recognized": True, "timestamp": "2017-01-01", "word": word}).to_csv(
        os.path.join(root, "train_simplified", word + ".csv"), index=False)


def test_training_bad_rows_skipped_counted_and_named(tmp_path, capsys):
    good = json.dumps([[[0, 255], [0, 255]]])
    rows = [good, "oops", good, "[]", json.dumps([[[0, 300], [0, 1]]]), json.dumps([[[1, 2], [3]]])] + [good] * 4
    _write_category(tmp_path, "a b", rows, 100)
    _write_category(tmp_path, "c", [good] * 3, 200)
    _write_category(tmp_path, "d", [good] * 3, 300)
    with pytest.warns(KitWarning) as rec:
        ts = data.load_train(str(tmp_path), chunk_size=3)
    assert len(rec) == 1
    err = str(rec[0].message)
    assert "4 training rows skipped" in err
    for reason in (strokes.BAD_JSON, strokes.NO_STROKES, strokes.OUT_OF_RANGE, strokes.UNEQUAL):
        assert reason in err
    assert "101, 103, 104, 105" in err
    assert ts.counts.tolist() == [6, 3, 3] and ts.words == ["a b", "c", "d"]
    # the per-category cap counts valid drawings and stops reading
    with pytest.warns(KitWarning, match="training rows skipped"):
        ts = data.load_train(str(tmp_path), per_class=3, chunk_size=2)
    assert ts.counts.tolist() == [3, 3, 3]
    assert ts.key_ids[:3].tolist() == ["100", "102", "106"]


def test_missing_train_folder_is_a_kit_error(tmp_path):
    with pytest.raises(data.KitError, match="train_simplified"):
        data.load_train(str(tmp_path))
    with pytest.raises(data.KitError, match="test_simplified.csv"):
        next(data.iter_test(str(tmp_path)))


def test_missing_columns_is_a_kit_error(tmp_path):
    os.makedirs(tmp_path / "train_simplified")
    for w in "abc":
        (tmp_path / "train_simplified" / f"{w}.csv").write_text("key_id,word\n1,x\n")
    with pytest.raises(data.KitError, match="needs columns key_id and drawing"):
        data.load_train(str(tmp_path))


def test_folds_stratified_then_refused_when_drawings_are_added(tmp_path, monkeypatch, capsys):
    good = json.dumps([[[0, 255], [0, 255]]])
    for j, w in enumerate("abc"):
        _write_category(tmp_path, w, [good] * (10 + j), 1000 * (j + 1))
    monkeypatch.chdir(tmp_path)
    ts = data.load_train(str(tmp_path))
    f, sha = data.load_folds("x", ts, 5, 0)
    df = pd.read_csv("folds/x.csv")
    assert list(df.columns) == ["key_id", "word", "fold"] and len(df) == len(ts.y)
    for c in range(3):
        per = np.bincount(f[ts.y == c], minlength=5)
        assert per.max() - per.min() <= 1
    assert np.bincount(f).max() - np.bincount(f).min() <= 1
    f2, sha2 = data.load_folds("x", ts, 5, 0)
    np.testing.assert_array_equal(f2, f)
    assert sha2 == sha
    sub = data.load_train(str(tmp_path), per_class=4)                     # a subset is served by the file
    np.testing.assert_array_equal(data.load_folds("x", sub, 5, 0)[0], f[np.isin(ts.key_ids, sub.key_ids)])
    # more drawings later: refused (never silently extended), with the command that rebuilds
    _write_category(tmp_path, "d", [good] * 5, 9000)
    ts2 = data.load_train(str(tmp_path))
    with pytest.raises(data.KitError, match="5 of the 38 key_ids now loaded have no fold.*python -m src.quickdraw.folds"):
        data.load_folds("x", ts2, 5, 0)
    assert len(pd.read_csv("folds/x.csv")) == len(ts.y)                   # the file is unchanged


def test_duplicate_key_ids_are_refused(tmp_path):
    good = json.dumps([[[0, 255], [0, 255]]])
    _write_category(tmp_path, "a", [good] * 3, 100)
    _write_category(tmp_path, "b", [good] * 3, 102)                        # 102 is also in a
    _write_category(tmp_path, "c", [good] * 3, 200)
    with pytest.raises(data.KitError, match="duplicate key_id.*102"):
        data.load_train(str(tmp_path))


def test_demo_layout_deterministic_and_complete(tmp_path):
    from src.quickdraw.demo import make_demo

    d1 = make_demo(str(tmp_path / "a" / "demo-quickdraw"))
    d2 = make_demo(str(tmp_path / "b" / "demo-quickdraw"))
    files = sorted(os.listdir(os.path.join(d1, "train_simplified")))
    assert len(files) >= 6 and "stop sign.csv" in files
    for f in files + ["../test_simplified.csv", "../sample_submission.csv"]:
        a = open(os.path.join(d1, "train_simplified", f)).read()
        assert a == open(os.path.join(d2, "train_simplified", f)).read()
    tr = pd.read_csv(os.path.join(d1, "train_simplified", "stop sign.csv"))
    assert list(tr.columns) == ["countrycode", "drawing", "key_id", "recognized", "timestamp", "word"]
    assert (tr.word == "stop sign").all()
    te = pd.read_csv(os.path.join(d1, "test_simplified.csv"))
    assert list(te.columns) == ["key_id", "countrycode", "drawing"]
    k, valid, bad = parse_drawings(pd.concat([tr.drawing, te.drawing]))
    assert valid.all() and k.xy.max() == 255
    sol = pd.read_csv(str(tmp_path / "a" / "demo-quickdraw.solution.csv"))
    assert sol.key_id.tolist() == te.key_id.tolist() and "stop_sign" in set(sol.word)
    sample = pd.read_csv(os.path.join(d1, "sample_submission.csv"))
    assert sample.key_id.tolist() == te.key_id.tolist()
    assert make_demo(d1) == d1                           # exists: not rewritten


# ---------------------------------------------------------------- MAP@3 and scoring

def test_map_at_3_hand_computed():
    actual = ["a", "b", "c", "d"]
    pred = [["a", "x", "y"], ["x", "b", "y"], ["x", "y", "c"], ["x", "y", "z"]]
    assert map_at_k(actual, pred, 3) == pytest.approx((1 + 1 / 2 + 1 / 3 + 0) / 4)
    assert map_at_k(["a"], [["x", "x", "a"]], 3) == pytest.approx(1 / 3)  # repeats take a slot
    assert map_at_k(["a"], [["x", "y", "z", "a"]], 3) == 0.0


def test_scores_helper_matches_map_at_k():
    from src.quickdraw.infer import top_k
    from src.quickdraw.train import scores

    probs = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.2, 0.3, 0.4], [0.4, 0.4, 0.1, 0.1]])
    y = np.array([1, 3, 0])
    assert top_k(probs).tolist() == [[0, 1, 2], [3, 2, 1], [0, 1, 2]]
    m, acc = scores(probs, y)
    assert m == pytest.approx((1 / 2 + 1 + 1) / 3) and acc == pytest.approx(2 / 3)


def test_score_cli(tmp_path, capsys):
    (tmp_path / "sub.csv").write_text("key_id,word\n1,a stop_sign c\n2,x y z\n3,b a c\n")
    (tmp_path / "sol.csv").write_text("key_id,word\n3,a\n1,stop_sign\n2,c\n")
    assert score.main([str(tmp_path / "sub.csv"), str(tmp_path / "sol.csv")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"map@3 {(1 / 2 + 1 / 2 + 0) / 3:.4f}"
    (tmp_path / "sol2.csv").write_text("key_id,word\n4,a\n")
    assert score.main([str(tmp_path / "sub.csv"), str(tmp_path / "sol2.csv")]) == 2
    assert score.main([str(tmp_path / "nope.csv"), str(tmp_path / "sol.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_word_tokens():
    assert data.word_to_token("stop sign") == "stop_sign"
    assert data.token_to_word("stop_sign") == "stop sign"
