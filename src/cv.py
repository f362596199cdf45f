"""Train one fold (or all) of a FAT2019 model on log-mel features with lwlrap validation.

    python -m src.cv --fold 0                  # the built-in demo data when no data is found
    python -m src.cv --fold all --data-dir /kaggle/input/freesound-audio-tagging-2019
    python -m src.cv --fold 2 --resume         # continue an interrupted (or time-limited) fold
    python -m src.cv --fold all --width 16 --name cnn16   # a variant, kept as its own run
"""
from __future__ import annotations

from .fat2019.competition import FAT2019
from .kit import cv


def main(argv: list[str] | None = None) -> int:
    return cv.main(FAT2019, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
