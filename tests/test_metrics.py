import numpy as np
import pytest
from sklearn.metrics import label_ranking_average_precision_score

from src.kit.metrics import apk, lwlrap, map_at_k, map_at_k_scores, per_class_lwlrap


def test_lwlrap_hand_computed():
    truth = np.array([[1, 0, 1], [0, 1, 0]])
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8]])
    # clip 0: label 0 at rank 1 -> 1/1; label 2 at rank 3 with 2 positives at or above -> 2/3
    # clip 1: label 1 at rank 2 -> 1/2
    per_class, weights = per_class_lwlrap(truth, scores)
    np.testing.assert_allclose(per_class, [1.0, 0.5, 2 / 3])
    np.testing.assert_allclose(weights, [1 / 3, 1 / 3, 1 / 3])
    assert lwlrap(truth, scores) == pytest.approx((1 + 0.5 + 2 / 3) / 3)


def test_lwlrap_label_weights_follow_positive_counts():
    truth = np.array([[1, 0], [1, 0], [0, 1]])
    scores = np.array([[0.1, 0.9], [0.9, 0.1], [0.2, 0.8]])
    # label 0: clip 0 at rank 2 -> 1/2, clip 1 at rank 1 -> 1 => 0.75, weight 2/3
    # label 1: clip 2 at rank 1 -> 1, weight 1/3
    assert lwlrap(truth, scores) == pytest.approx(0.75 * 2 / 3 + 1 / 3)


def test_lwlrap_perfect_and_worst():
    truth = np.eye(4)
    assert lwlrap(truth, truth) == pytest.approx(1.0)
    assert lwlrap(truth, 1 - truth) == pytest.approx(0.25)


def test_lwlrap_equals_sklearn_lrap_weighted_by_positive_count():
    rng = np.random.default_rng(0)
    truth = (rng.random((200, 12)) < 0.15).astype(int)
    truth[truth.sum(axis=1) == 0, 0] = 1
    scores = rng.random((200, 12))
    expected = label_ranking_average_precision_score(truth, scores, sample_weight=truth.sum(axis=1))
    assert lwlrap(truth, scores) == pytest.approx(expected, abs=1e-12)


def test_lwlrap_shape_mismatch():
    with pytest.raises(ValueError):
        lwlrap(np.zeros((2, 3)), np.zeros((3, 2)))


def test_map_at_3_hand_computed():
    actual = ["a", "b", "c"]
    predicted = [["a", "x", "y"], ["x", "b", "y"], ["x", "y", "z"]]
    assert map_at_k(actual, predicted) == pytest.approx((1 + 1 / 2 + 0) / 3)


def test_apk_repeated_guess_and_cutoff():
    assert apk("c", ["x", "x", "c"]) == pytest.approx(1 / 3)     # a repeat still uses a slot
    assert apk("d", ["a", "b", "c", "d"]) == 0.0                  # beyond k=3
    assert apk("d", ["a", "b", "c", "d"], k=4) == pytest.approx(0.25)


def test_map_at_k_length_mismatch():
    with pytest.raises(ValueError):
        map_at_k(["a"], [["a"], ["b"]])


def test_map_at_k_from_score_matrices_equals_the_list_form():
    rng = np.random.default_rng(0)
    scores = rng.random((50, 6))
    y = rng.integers(0, 6, 50)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    assert map_at_k_scores(np.eye(6)[y], scores) == pytest.approx(map_at_k(list(y), [list(t) for t in top]))
    assert map_at_k_scores(np.eye(3)[[0, 1]], np.array([[0.9, 0.1, 0.0], [0.5, 0.2, 0.3]])) == pytest.approx((1 + 1 / 3) / 2)
