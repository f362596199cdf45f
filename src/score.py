"""Entry point: see src.fat2019.score (`python -m src.score --help`)."""
from .fat2019.score import main

if __name__ == "__main__":
    raise SystemExit(main())
