"""Entry point: see src.fat2019.mixval_cli (`python -m src.mixval --help`)."""
from .fat2019.mixval_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
