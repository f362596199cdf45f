"""Entry point: see src.fat2019.folds (`python -m src.folds --help`)."""
from .fat2019.folds import main

if __name__ == "__main__":
    raise SystemExit(main())
