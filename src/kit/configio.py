"""Dataclass configs <-> CLI flags <-> JSON: one config object per competition.

Every field becomes a flag (`n_mels` -> `--n-mels`); the help text is the field's metadata
`help`. The config actually used is saved as JSON beside each run's outputs. Precedence, lowest
first: the dataclass defaults, a saved config (`--resume`, `--config`), the flags given now.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any, TypeVar

from . import atomic

T = TypeVar("T")


_UNSET = object()


def field(default: Any, help: str, choices: list | None = None, aliases: dict[str, Any] | None = None,
          absent: Any = _UNSET) -> Any:
    """A config field: its help text, its valid values, older flags kept as aliases
    (`{"--use-noisy": "weighted"}`: that flag sets this field to that value), and `absent`: what a
    config saved before the field existed did, where that differs from today's default (so an
    old run keeps predicting as it was validated)."""
    meta = {"help": help, "choices": choices, "aliases": aliases or {}}
    if absent is not _UNSET:
        meta["absent"] = absent
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass
class RunConfig:
    """The fields every competition's config shares: where a run goes and how a fold trains on
    the hardware. A competition's config dataclass derives from it and adds its own."""
    name: str = field("", "run name: outputs go to WORK_DIR/<dataset>/<name>/ (default: the model), so variants "
                          "of one model are kept, and ensembled, as separate runs")
    work_dir: str = field("work", "root of run outputs: WORK_DIR/<dataset>/<name>/fold<K>/")
    max_minutes: float = field(0.0, "stop a fold after this many minutes, checked after every batch (kept as "
                                    "finished; --resume continues; 0 = no limit)")
    checkpoint_minutes: float = field(10.0, "inside an epoch, commit a checkpoint every this many minutes, so a kill "
                                            "loses at most that much training (--resume continues from it); 0 = at "
                                            "epoch ends only")
    strategy: str = field("default", "tf.distribute strategy: default (one device), mirrored (every local GPU), "
                                     "multiworker (several machines, TF_CONFIG), tpu, auto (mirrored over two or more "
                                     "GPUs, else default)", ["default", "mirrored", "multiworker", "tpu", "auto"])
    mixed_precision: bool | None = field(None, "train with 16-bit maths and float32 weights: float16 on a GPU, "
                                                "bfloat16 on a CPU (fast there only with AMX-BF16). Unset: on for "
                                                "GPUs of compute capability 7.0 or more (e.g. Kaggle's T4), off "
                                                "elsewhere; the fold's hardware line says which. Prediction always "
                                                "runs in float32")
    jit: bool | None = field(None, "XLA-compile the training step (one device only). Unset: on, except on CPUs with "
                                   "AMX-BF16, where oneDNN without XLA is faster; on other CPUs XLA about halves a "
                                   "step (Keras leaves it off there by default)")
    eager: bool = field(False, "run the training and validation steps eagerly, without tracing a graph (no XLA): "
                               "for stepping through a model in a debugger, or runs of a few batches, where "
                               "tracing (about 4 s a model here) outweighs the steps; slower per step on real data")

    @property
    def run_name(self) -> str:
        return self.name or getattr(self, "model")

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


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
        help_text = f"{f.metadata.get('help', '')} (default: {'unset' if f.default is None else f.default})"
        if tp is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        else:
            group.add_argument(flag, dest=f.name, type=tp, default=None,
                               choices=f.metadata.get("choices"), help=help_text)
        for alias, value in f.metadata.get("aliases", {}).items():
            group.add_argument(alias, dest=f.name, action="store_const", const=value,
                               help=f"same as {flag} {value}")


def parse(cls: type[T], prog: str, doc: str, argv: list[str] | None, extra=None) -> tuple[T, argparse.Namespace]:
    """A command line of `cls`'s flags (after `extra(parser)`'s own): (config, parsed arguments)."""
    ap = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if extra:
        extra(ap)
    add_config_args(ap, cls)
    args = ap.parse_args(argv)
    return from_args(cls, args), args


def given(cls: type, args: argparse.Namespace) -> dict:
    """The config fields the user set on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if getattr(args, f.name, None) is not None}


def from_args(cls: type[T], args: argparse.Namespace, base: T | None = None) -> T:
    """Config from `base` (or defaults) with every flag the user gave applied on top."""
    return dataclasses.replace(base if base is not None else cls(), **given(cls, args))


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def save(cfg: Any, path: str, **meta: Any) -> None:
    """The config's fields, plus `meta` (what the run was trained on: labels, folds file hash,
    versions) as extra top-level keys that `load` ignores."""
    clash = set(meta) & set(to_dict(cfg))
    if clash:
        raise ValueError(f"meta keys {sorted(clash)} clash with config fields")
    atomic.write_json(path, {**to_dict(cfg), **meta})


def from_dict(cls: type[T], data: dict) -> T:
    """A saved config: unknown keys (run metadata) ignored; a field it lacks takes its `absent`
    value if it has one, else today's default."""
    fields = dataclasses.fields(cls)
    known = {f.name for f in fields}
    older = {f.name: f.metadata["absent"] for f in fields if "absent" in f.metadata and f.name not in data}
    return cls(**{**older, **{k: v for k, v in data.items() if k in known}})


def load(cls: type[T], path: str) -> T:
    with open(path, encoding="utf-8") as f:
        return from_dict(cls, json.load(f))
