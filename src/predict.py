"""FAT2019: score the test clips with every trusted fold of every run -> submissions/submission.csv.

    python -m src.predict                         # all finished runs under work/<dataset>/
    python -m src.predict --models cnn --tta 3    # one run, three shifted window grids per clip
    python -m src.predict --window-agg max        # a clip's score: the max over its windows

Each clip is scored on overlapping windows over its whole length (windows of many clips go
through the model together), aggregated per clip; the rest is the kit's (kit/predict.py).
"""
from __future__ import annotations

from .fat2019.competition import FAT2019
from .kit import predict


def main(argv: list[str] | None = None) -> int:
    return predict.main(FAT2019, argv)


if __name__ == "__main__":
    raise SystemExit(main())
