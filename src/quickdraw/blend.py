"""Quick, Draw!: blend weights chosen on the runs' out-of-fold MAP@3 -> work/<dataset>/blend.json,
used by python -m src.quickdraw.predict.

    python -m src.quickdraw.blend                        # every finished run of the dataset
    python -m src.quickdraw.blend --models cnn,lstm      # these runs only
"""
from __future__ import annotations

from ..kit import blend
from .competition import QUICKDRAW


def main(argv: list[str] | None = None) -> int:
    return blend.main(QUICKDRAW, argv)


if __name__ == "__main__":
    raise SystemExit(main())
