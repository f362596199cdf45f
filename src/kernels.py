"""Entry point: see src.ship.kernels (`python -m src.kernels --help`)."""
from .ship.kernels import main

if __name__ == "__main__":
    raise SystemExit(main())
