"""FAT2019: blend weights chosen on the runs' out-of-fold lwlrap -> work/<dataset>/blend.json.

    python -m src.blend                        # every finished run of the dataset
    python -m src.blend --models cnn,cnn64     # these runs only
"""
from __future__ import annotations

from .fat2019.competition import FAT2019
from .kit import blend


def main(argv: list[str] | None = None) -> int:
    return blend.main(FAT2019, argv)


if __name__ == "__main__":
    raise SystemExit(main())
