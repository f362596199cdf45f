"""The stats model (`--model stats`): standardised whole-clip statistics (clipstats) into one
logistic regression per label, fitted by scikit-learn and kept as plain arrays.

Why plain arrays: a pickled scikit-learn estimator loads only under the version that saved it,
and Kaggle's image has another; the scaler's mean and scale and the regressions' coefficients
and intercepts, stored as HDF5 datasets in the fold's `best.weights.h5` (the file every fold has,
so runs, predict, blend and the kernels need no case of their own), predict identically anywhere
with numpy. The object answers what the fold runner, `src.predict` and the kernels ask of a Keras
model: save_weights / save / load_weights, predict(x, verbose=0) and output_shape.
"""
from __future__ import annotations

import h5py
import numpy as np

from ..kit.errors import KitError
from . import clipstats

KIND = "fat2019-clipstats-logreg"
_ARRAYS = ("mean", "scale", "coef", "intercept")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))          # exact and overflow-free


class StatsModel:
    def __init__(self, n_bands: int, n_labels: int):
        """An unfitted model for (n_bands, frames) clip arrays and n_labels labels."""
        self.n_bands, self.n_labels = n_bands, n_labels
        d = clipstats.n_stats(n_bands)
        self.mean, self.scale = np.zeros(d), np.ones(d)
        self.coef, self.intercept = np.zeros((n_labels, d)), np.zeros(n_labels)

    @property
    def output_shape(self) -> tuple:
        return (None, self.n_labels)

    # ------------------------------------------------------------------ fit and predict

    def fit(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float) -> float:
        """Standardise `x` (clips, n_stats), then one L2 logistic regression per label with
        inverse regularisation `c` and per-clip `weights` (deterministic: lbfgs). A label with
        one class only in `y` gets zero coefficients and the logit of its weighted frequency.
        Returns the weighted mean binary log loss on the training clips."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(x)
        self.mean, self.scale = scaler.mean_.astype(np.float64), scaler.scale_.astype(np.float64)
        z = (x - self.mean) / self.scale
        self.coef, self.intercept = np.zeros((self.n_labels, z.shape[1])), np.zeros(self.n_labels)
        for j in range(self.n_labels):
            t = y[:, j] > 0.5
            if t.all() or not t.any():
                p = np.clip(np.average(t, weights=weights), 1e-4, 1 - 1e-4)
                self.intercept[j] = np.log(p / (1 - p))
                continue
            lr = LogisticRegression(C=c, max_iter=5000, solver="lbfgs").fit(z, t, sample_weight=weights)
            self.coef[j], self.intercept[j] = lr.coef_[0], lr.intercept_[0]
        p = np.clip(self.predict_stats(x).astype(np.float64), 1e-7, 1 - 1e-7)
        bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)
        return float(np.average(bce, weights=weights))

    def predict_stats(self, x: np.ndarray) -> np.ndarray:
        """(clips, labels) probabilities of clip statistics (clips, n_stats)."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        return _sigmoid(z @ self.coef.T + self.intercept).astype(np.float32)

    def predict_clips(self, specs) -> np.ndarray:
        """(clips, labels) probabilities of whole clips (a FeatureSet or a list of arrays)."""
        if len(specs) == 0:
            return np.zeros((0, self.n_labels), np.float32)
        return self.predict_stats(clipstats.stack(specs))

    def predict(self, x: np.ndarray, verbose: int = 0) -> np.ndarray:
        """Keras' predict for a batch of equal-length clips (clips, bands, frames[, 1]): what the
        kernels' reference check calls."""
        return self.predict_clips(list(np.asarray(x)))

    # ------------------------------------------------------------------ weights

    def save_weights(self, path: str) -> None:
        with h5py.File(path, "w") as f:
            f.attrs["kind"] = KIND
            f.attrs["n_bands"], f.attrs["n_labels"] = self.n_bands, self.n_labels
            for name in _ARRAYS:
                f.create_dataset(name, data=getattr(self, name))

    def save(self, path: str) -> None:
        """The whole model is its arrays: last.keras / best.keras of a stats fold hold the same
        HDF5 file as best.weights.h5 (not a Keras archive)."""
        self.save_weights(path)

    def load_weights(self, path: str) -> None:
        """The arrays of `path`, refused unless a stats model's of this model's shapes."""
        try:
            with h5py.File(path, "r") as f:
                kind = f.attrs.get("kind")
                arrays = {n: np.array(f[n], dtype=np.float64) for n in _ARRAYS if n in f}
        except OSError as e:
            raise KitError(f"{path}: not a stats model's weights file ({e})") from e
        if isinstance(kind, bytes):
            kind = kind.decode()
        d = clipstats.n_stats(self.n_bands)
        want = {"mean": (d,), "scale": (d,), "coef": (self.n_labels, d), "intercept": (self.n_labels,)}
        got = {n: a.shape for n, a in arrays.items()}
        if kind != KIND or got != want:
            raise KitError(f"{path}: not the weights of a stats model of {self.n_bands} bands and {self.n_labels} "
                           f"labels (kind {kind!r}, arrays {got}; expected {want})")
        for n, a in arrays.items():
            setattr(self, n, a)
