"""The competitions by the name the shipping commands take (python -m src.kernels ... NAME)."""
from __future__ import annotations

from .fat2019.competition import FAT2019
from .kit.competition import Competition
from .quickdraw.competition import QUICKDRAW

BY_NAME = {c.name: c for c in (FAT2019, QUICKDRAW)}
NAMES = tuple(BY_NAME)


def get(name: str) -> Competition:
    if name not in BY_NAME:
        raise ValueError(f"unknown competition {name!r}; expected one of {', '.join(NAMES)}")
    return BY_NAME[name]
