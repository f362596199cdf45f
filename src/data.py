"""The FAT2019 layout: find it, read its CSVs, and refuse bad input before any training."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import demo_data
from .config import COMPETITION, KNOWN_BAD_CLIPS, FatConfig
from .kit.errors import KitError, list_some
from .kit.datadir import resolve_data_dir


@dataclass
class FatData:
    root: str
    name: str                      # dataset name: folder of folds/ and work/ outputs
    labels: list[str]              # the label columns of sample_submission.csv, in order
    curated: pd.DataFrame          # fname, labels
    noisy: pd.DataFrame
    sample_submission: pd.DataFrame

    def audio_dir(self, subset: str) -> str:
        return os.path.join(self.root, subset)


def _read_csv(path: str, columns: list[str]) -> pd.DataFrame:
    if not os.path.exists(path):
        raise KitError(f"{path}: file not found (is --data-dir the competition folder?)")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:
        raise KitError(f"{path}: cannot be read as CSV ({e})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KitError(f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(df.columns)}")
    return df


def load(cfg: FatConfig) -> FatData:
    root, name = resolve_data_dir(cfg.data_dir, COMPETITION, demo_data.ensure,
                                  os.path.join("data", "demo-fat2019"), "FAT2019")
    sub = _read_csv(os.path.join(root, "sample_submission.csv"), ["fname"])
    labels = [c for c in sub.columns if c != "fname"]
    if not labels:
        raise KitError(f"{os.path.join(root, 'sample_submission.csv')}: no label columns")
    curated = _read_csv(os.path.join(root, "train_curated.csv"), ["fname", "labels"])[["fname", "labels"]]
    noisy_path = os.path.join(root, "train_noisy.csv")
    noisy = (_read_csv(noisy_path, ["fname", "labels"])[["fname", "labels"]] if os.path.exists(noisy_path)
             else pd.DataFrame(columns=["fname", "labels"]))
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


def check_labels(df: pd.DataFrame, labels: list[str], path: str) -> None:
    known = set(labels)
    unknown = sorted({l for s in df["labels"] for l in split_labels(s)} - known)
    if unknown:
        raise KitError(f"{path}: label(s) not among the columns of sample_submission.csv: "
                       f"{list_some(unknown)}")
    empty = df.loc[[not split_labels(s) for s in df["labels"]], "fname"].tolist()
    if empty:
        raise KitError(f"{path}: rows without labels: {list_some(empty)}")


def check_files(df: pd.DataFrame, audio_dir: str) -> None:
    missing = [f for f in df["fname"] if not os.path.isfile(os.path.join(audio_dir, f))]
    if missing:
        raise KitError(f"{audio_dir}: {len(missing)} clip(s) listed in the CSV are missing: "
                       f"{list_some(missing)}")


def training_frames(data: FatData, cfg: FatConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Curated (and noisy, when asked) clips after every input check; known bad clips dropped."""
    curated = data.curated
    check_labels(curated, data.labels, os.path.join(data.root, "train_curated.csv"))
    check_files(curated, data.audio_dir("train_curated"))
    if not cfg.keep_bad_clips:
        bad = curated["fname"].isin(KNOWN_BAD_CLIPS)
        if bad.any():
            print(f"data: leaving out {int(bad.sum())} known mislabelled/silent curated clip(s) "
                  f"({', '.join(curated.loc[bad, 'fname'])}); --keep-bad-clips keeps them", flush=True)
        curated = curated[~bad]
    noisy = data.noisy.iloc[:0]
    if cfg.use_noisy:
        if data.noisy.empty:
            warnings.warn(f"--use-noisy: {data.root}/train_noisy.csv has no clips")
        noisy = data.noisy
        check_labels(noisy, data.labels, os.path.join(data.root, "train_noisy.csv"))
        check_files(noisy, data.audio_dir("train_noisy"))
    return curated.reset_index(drop=True), noisy.reset_index(drop=True)
