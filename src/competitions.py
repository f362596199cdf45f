"""The competitions by the name the shipping commands take (python -m src.kernels ... NAME)."""
from __future__ import annotations

from .kit.competition import Competition


def get(name: str) -> Competition:
    # Each wing is imported only when named: either one alone must not cost the other's imports.
    if name == "freesound":
        from .fat2019.competition import FAT2019 as comp
    elif name == "quickdraw":
        from .quickdraw.competition import QUICKDRAW as comp
    else:
        raise ValueError(f"unknown competition {name!r}; expected one of {', '.join(NAMES)}")
    return comp


NAMES = ("freesound", "quickdraw")
