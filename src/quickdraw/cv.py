"""Train Quick, Draw! models fold by fold (MAP@3 validation).

    python -m src.quickdraw.cv --fold 0                  # the built-in demo, default model (cnn)
    python -m src.quickdraw.cv --data-dir DIR --model lstm --fold all
    python -m src.quickdraw.cv --fold 0 --resume         # continue an interrupted (or time-limited) fold
    python -m src.quickdraw.cv --fold all --cnn-filters 16 --name cnn16   # a variant, kept as its own run
"""
from __future__ import annotations

from ..kit import cv
from .competition import QUICKDRAW


def main(argv: list[str] | None = None) -> int:
    return cv.main(QUICKDRAW, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
