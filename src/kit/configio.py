"""Dataclass configs <-> CLI flags <-> JSON: one config object per competition.

Every field becomes a flag (`n_mels` -> `--n-mels`); the help text is the field's metadata
`help`. The config actually used is saved as JSON beside each run's outputs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any, TypeVar

from . import atomic

T = TypeVar("T")


def field(default: Any, help: str, choices: list | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def _base_type(tp: Any) -> Any:
    """int | None -> int; keeps plain types."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def add_config_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} (defaults shown; saved as config.json)")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
        if tp is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            group.add_argument(flag, dest=f.name, type=tp, default=None,
                               choices=f.metadata.get("choices"), help=help_text)


def given(cls: type, args: argparse.Namespace) -> dict:
    """The config fields the user set on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if getattr(args, f.name, None) is not None}


def from_args(cls: type[T], args: argparse.Namespace, base: T | None = None) -> T:
    """Config from `base` (or defaults) with every flag the user gave applied on top."""
    return dataclasses.replace(base if base is not None else cls(), **given(cls, args))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def save(cfg: Any, path: str) -> None:
    atomic.write_json(path, to_dict(cfg))


def load(cls: type[T], path: str) -> T:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})
