"""What the one train -> predict -> blend -> ship path needs of a competition.

Each competition (a "wing": one folder of src/ beside kit/) describes itself once, as a
`Competition`; the kit's generic commands (kit.cv, kit.predict, kit.blend) and the shipping
code (src/ship/) use only this description, so every guarantee (trusted folds, out-of-fold
reports, validated submissions, reference checks in kernels) holds for both by construction.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import pandas as pd

from . import foldfile, runs
from .datadir import file_sha1
from .errors import KitError
from .runs import Fold


class Data(Protocol):
    """A competition's data as the generic path sees it."""
    root: str                  # the data folder (Kaggle's layout)
    name: str                  # dataset name: folds/<name>.csv, cache/<name>/, work/<name>/
    labels: list[str]          # the classes the data has, in the submission's order

    def truth(self, ids: list[str]) -> np.ndarray:
        """0/1 targets of training samples by id (rows of ids no longer in the data are NaN)."""

    def sample_ids(self) -> list[str]:
        """The test ids in sample_submission.csv's order (checked unique)."""


# One chunk of test predictions: (ids, blended scores over the labels, {id: why it has no scores}).
TestChunk = tuple[list[str], np.ndarray, dict[str, str]]
# `ensemble(predict)`: every trusted fold's `predict(fold)` (a frame with one column per label the
# fold knows) aligned by name, averaged over a run's folds and blended over runs.
Ensemble = Callable[[Callable[[Fold], pd.DataFrame]], np.ndarray]


@dataclass(frozen=True)
class Competition:
    name: str                          # the shipping commands' NAME (src/competitions.py)
    slug: str                          # Kaggle's competition slug (its /kaggle/input/<slug>/ folder)
    title: str                         # for humans: "FAT2019", "Quick, Draw!"
    config_cls: type                   # the one config dataclass (every field a CLI flag)
    metric_name: str                   # lwlrap, map@3
    samples: str                       # what the validation samples are called: "curated clips"
    id_column: str                     # the submission's id column: fname, key_id
    modules: dict[str, str]            # entry points by role: cv, predict, blend, folds
    default_out: str                   # src.<predict>'s default submission path
    code_competition: bool             # submit the kernel version (True) or the CSV file
    labels_subset_ok: bool             # a run may know a subset of the data's labels
    consistent_keys: tuple[str, ...]   # config keys every fold of a shipped run must share
    ships_folds: bool                  # the training kernel carries the folds file
    metric: Callable[[np.ndarray, np.ndarray], float]                  # (truth, scores) -> score
    per_label: Callable[[np.ndarray, np.ndarray, list[str]], pd.Series]  # (truth, scores, labels)
    open_data: Callable[[str | None], Data]                             # --data-dir -> Data
    train_folds: Callable[..., list[dict]]      # (cfg, data, folds, resume, overrides, restart=) -> metrics
    load_model: Callable[[Fold], Any]           # the fold's network rebuilt, its weights loaded
    reference_input: Callable[[dict], np.ndarray]  # fixed inputs a shipped fold must reproduce
    score_test: Callable[..., Iterator[TestChunk]]  # (data, found, ensemble, load, args)
    format_rows: Callable[[list[str], np.ndarray, list[str]], pd.DataFrame]  # (ids, scores, labels)
    check_rows: Callable[[pd.DataFrame, list[str]], None]   # (submission, labels): raise if wrong
    add_predict_args: Callable[[argparse.ArgumentParser], None] = lambda ap: None
    check_test: Callable[[Data, argparse.Namespace], None] = lambda data, args: None   # before any model
    # CPU work on the test inputs that score_test would otherwise do first (FAT2019's features):
    # a kernel times it as its own stage. (data, found, args)
    prepare_test: Callable[[Data, dict, argparse.Namespace], None] = lambda data, found, args: None
    # Groups of validation samples scored apart in the out-of-fold report: truth -> {name: row mask}.
    groups: Callable[[np.ndarray], dict[str, np.ndarray]] = lambda truth: {}

    @property
    def train_hint(self) -> str:
        return f"python -m {self.modules['cv']} --fold 0"

    def find_runs(self, work_dir: str, data: Data, names: list[str] | None = None,
                  strict: bool = False) -> dict[str, list[Fold]]:
        """{run: [trusted folds]} of the data's dataset (the trust rules: kit.runs.find_runs)."""
        path = foldfile.folds_path(data.name)
        if not os.path.exists(path):
            raise KitError(f"{path} is missing: no run can be matched to the data's folds; train with "
                           f"{self.train_hint}")
        return runs.find_runs(os.path.join(work_dir, data.name), data.labels, file_sha1(path), names, strict,
                              subset_ok=self.labels_subset_ok, train_hint=self.train_hint)

    @staticmethod
    def truth(data: Data, ids: list[str], labels: list[str]) -> np.ndarray:
        """The data's targets of `ids`, in the columns of `labels` (a subset of the data's)."""
        y = data.truth(ids)
        if list(labels) == list(data.labels):
            return y
        col = {l: i for i, l in enumerate(data.labels)}
        return y[:, [col[l] for l in labels]]
