"""The FAT2019 layout: find it, read its CSVs, and refuse bad input before any training."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import demo as demo_data
from .config import COMPETITION, KNOWN_BAD_CLIPS, FatConfig
from ..kit import tables
from ..kit.datadir import resolve_data_dir
from ..kit.errors import KitError, list_some, warn

TRAIN_CSVS = ("train_curated.csv", "train_noisy.csv")


@dataclass
class FatData:
    root: str
    name: str                      # dataset name: folder of folds/, cache/ and work/ outputs
    labels: list[str]              # the label columns of sample_submission.csv, in order
    curated: pd.DataFrame          # fname, labels
    noisy: pd.DataFrame
    sample_submission: pd.DataFrame

    def audio_dir(self, subset: str) -> str:
        return os.path.join(self.root, subset)

    def truth(self, ids: list[str]) -> np.ndarray:
        """Targets of curated clips by name (NaN rows for names no longer in train_curated.csv)."""
        return truth(self, ids)

    def sample_ids(self) -> list[str]:
        """The test clips in sample_submission.csv's order."""
        return self.sample_submission["fname"].astype(str).tolist()

    @property
    def prior(self) -> np.ndarray:
        """Label frequencies of the curated clips: the scores of a clip nothing is known about."""
        return label_matrix(self.curated, self.labels).mean(axis=0) if len(self.curated) else \
            np.full(len(self.labels), 1.0 / len(self.labels))


def identity(root: str) -> list[bytes]:
    """What defines a FAT2019 dataset for folds, features and runs: the training CSVs and the
    label columns (not the test list: a new test set keeps the trained runs)."""
    parts = []
    for name in TRAIN_CSVS:
        p = os.path.join(root, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                parts.append(f.read())
        else:
            parts.append(b"")
    p = os.path.join(root, "sample_submission.csv")
    parts.append(",".join(tables.header(p)).encode() if os.path.isfile(p) else b"")
    return parts


def _clips(path: str) -> pd.DataFrame:
    df = tables.read_csv(path, ["fname", "labels"], id_column="fname")[["fname", "labels"]]
    tables.check_plain_names(df["fname"].tolist(), path)
    return df


def load(cfg: FatConfig) -> FatData:
    root, name = resolve_data_dir(cfg.data_dir, COMPETITION, demo_data.ensure,
                                  os.path.join("data", "demo-fat2019"), "FAT2019", identity)
    sub_path = os.path.join(root, "sample_submission.csv")
    sub = tables.read_csv(sub_path, ["fname"], "the test clips and label columns", id_column="fname")
    tables.check_plain_names(sub["fname"].tolist(), sub_path)
    labels = [c for c in sub.columns if c != "fname"]
    if not labels:
        raise KitError(f"{sub_path}: no label columns")
    curated = _clips(os.path.join(root, "train_curated.csv"))
    noisy_path = os.path.join(root, "train_noisy.csv")
    noisy = _clips(noisy_path) if os.path.exists(noisy_path) else pd.DataFrame(columns=["fname", "labels"])
    return FatData(root, name, labels, curated, noisy, sub[["fname"]])


def split_labels(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def label_matrix(df: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """N x C 0/1 float32 targets from the comma-separated `labels` column."""
    index = {l: i for i, l in enumerate(labels)}
    y = np.zeros((len(df), len(labels)), dtype=np.float32)
    for r, s in enumerate(df["labels"]):
        for lab in split_labels(s):
            y[r, index[lab]] = 1.0
    return y


def truth(data: FatData, fnames: list[str]) -> np.ndarray:
    """Targets of curated clips by name; rows of names no longer in train_curated.csv are NaN."""
    by_name = data.curated.set_index("fname")["labels"]
    y = np.full((len(fnames), len(data.labels)), np.nan, dtype=np.float64)
    known = [i for i, f in enumerate(fnames) if f in by_name.index]
    if known:
        y[known] = label_matrix(pd.DataFrame({"labels": by_name.loc[[fnames[i] for i in known]].to_numpy()}),
                                data.labels)
    return y


def check_labels(df: pd.DataFrame, labels: list[str], path: str) -> None:
    known = set(labels)
    unknown = sorted({l for s in df["labels"] for l in split_labels(s)} - known)
    if unknown:
        raise KitError(f"{path}: label(s) not among the columns of sample_submission.csv: "
                       f"{list_some(unknown)}")
    empty = df.loc[[not split_labels(s) for s in df["labels"]], "fname"].tolist()
    if empty:
        raise KitError(f"{path}: rows without labels: {list_some(empty)}")


def missing_files(fnames: list[str], audio_dir: str) -> list[str]:
    return [f for f in fnames if not os.path.isfile(os.path.join(audio_dir, f))]


def check_files(fnames: list[str], audio_dir: str) -> None:
    missing = missing_files(fnames, audio_dir)
    if missing:
        raise KitError(f"{audio_dir}: {len(missing)} clip(s) listed in the CSV are missing: {list_some(missing)}")


def training_frames(data: FatData, cfg: FatConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Curated (and noisy, when asked) clips after every input check; known bad clips dropped."""
    curated = data.curated
    check_labels(curated, data.labels, os.path.join(data.root, "train_curated.csv"))
    check_files(curated["fname"].tolist(), data.audio_dir("train_curated"))
    if not cfg.keep_bad_clips:
        bad = curated["fname"].isin(KNOWN_BAD_CLIPS)
        if bad.any():
            print(f"data: leaving out {int(bad.sum())} known mislabelled/silent curated clip(s) "
                  f"({', '.join(curated.loc[bad, 'fname'])}); --keep-bad-clips keeps them", flush=True)
        curated = curated[~bad]
    noisy = data.noisy.iloc[:0]
    if cfg.noisy != "none":
        if data.noisy.empty:
            if cfg.noisy == "finetune":
                raise KitError(f"--noisy finetune: {data.root}/train_noisy.csv has no clips to train on "
                               f"before the curated fine-tuning; use --noisy none")
            warn(f"--noisy {cfg.noisy}: {data.root}/train_noisy.csv has no clips")
        noisy = data.noisy
        check_labels(noisy, data.labels, os.path.join(data.root, "train_noisy.csv"))
        check_files(noisy["fname"].tolist(), data.audio_dir("train_noisy"))
    return curated.reset_index(drop=True), noisy.reset_index(drop=True)
