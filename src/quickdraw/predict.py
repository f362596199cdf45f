"""Quick, Draw!: predict the test drawings with every trusted fold of every run and write
key_id,word (three distinct words, best first) -> submissions/quickdraw_submission.csv.

    python -m src.quickdraw.predict                            # demo data, every finished run
    python -m src.quickdraw.predict --data-dir DIR --models cnn,lstm

Class probabilities are averaged over a run's folds and blended over runs aligned by word (a run
may know fewer categories than the data); the rest is the kit's (kit/predict.py).
"""
from __future__ import annotations

from ..kit import predict
from .competition import QUICKDRAW


def main(argv: list[str] | None = None) -> int:
    return predict.main(QUICKDRAW, argv)


if __name__ == "__main__":
    raise SystemExit(main())
