"""What a built kernel runs on Kaggle: find the models dataset by its manifest, rebuild and check
every fold, predict with the kit's own code, write /kaggle/working/submission.csv.

Paths: the root is /kaggle, or $KAGGLE_KIT_ROOT (tests lay out a fake one): competition data in
<root>/input/<competition>/ or <root>/input/competitions/<competition>/ (Kaggle mounts it at
either), the models dataset wherever under <root>/input/ its kit-manifest.json is (mount names
change: it is searched for, never named), outputs in <root>/working/. The models dataset must be
the one the kernel was built with: `build` records the sha1 of its kit-manifest.json in the build
info (KIT_BUILD["manifest_sha1"], handed to this module as BUILD by the built script), and any other
manifest, an older upload included, is refused before anything is predicted. Every fold's outputs
on the stored reference inputs are recomputed after loading; any difference beyond float tolerance
stops the kernel before a submission is written, naming the run and fold.
"""
from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from .. import competitions
from ..kit import foldfile, predict, runs
from ..kit.atomic import read_json
from ..kit.datadir import file_sha1
from ..kit.competition import Competition
from ..kit.errors import KitError, cli, warn
from ..kit.forward import predict_batches

MANIFEST = "kit-manifest.json"
TOLERANCE = 2e-3          # sigmoid/softmax outputs; a silently wrong load differs by far more
# The built kernel's KIT_BUILD, filled by the script `python -m src.kernels build` writes before its
# entry point runs (kernels.kernel_script); `main(..., build=...)` given explicitly wins.
BUILD: dict = {}


def kaggle_root() -> str:
    return os.environ.get("KAGGLE_KIT_ROOT", "/kaggle")


@contextlib.contextmanager
def stage(what: str):
    """Progress and timing per stage, into the kernel's log."""
    t0 = time.time()
    print(f"kernel: {what} ...", flush=True)
    yield
    print(f"kernel: {what} done in {time.time() - t0:.1f}s", flush=True)


def competition_data(root: str, slug: str) -> str:
    """The competition's data folder: <root>/input/<slug>/, or <root>/input/competitions/<slug>/
    where Kaggle mounts it there (see Kaggle/kaggle-cli issue 1140)."""
    paths = [os.path.join(root, "input", slug), os.path.join(root, "input", "competitions", slug)]
    for path in paths:
        if os.path.isdir(path):
            return path
    raise KitError(f"no competition data: neither {paths[0]} nor {paths[1]} exists; attach the competition "
                   f"'{slug}' to this kernel", exit_code=1)


def manifest_sha1(path: str) -> str:
    """sha1 of a kit-manifest.json's bytes: what `build` records and the kernel compares."""
    return file_sha1(path)


def find_manifest(input_root: str, competition: str, expected_sha1: str | None = None) -> tuple[str, dict]:
    """(folder, manifest) of the models dataset for `competition` under the input root; with
    `expected_sha1`, only the dataset whose kit-manifest.json has that sha1 (the one the kernel was
    built with): any other is refused, naming both hashes and its folder."""
    patterns = [os.path.join(input_root, "*", MANIFEST), os.path.join(input_root, "*", "*", MANIFEST),
                os.path.join(input_root, "*", "*", "*", MANIFEST)]
    found = sorted({p for pat in patterns for p in glob.glob(pat)})
    mine = [(p, m) for p in found if (m := read_json(p)).get("competition") == competition]
    if not mine:
        raise KitError(f"no models dataset: looked for {MANIFEST} with competition '{competition}' in "
                       f"{input_root}/*/ (and two levels below); found {len(found)} manifest(s) "
                       f"{[os.path.relpath(p, input_root) for p in found]}. Attach the dataset made by "
                       f"`python -m src.kernels dataset` to this kernel", exit_code=1)
    if expected_sha1 is not None:
        hashes = {p: manifest_sha1(p) for p, _ in mine}
        same = [(p, m) for p, m in mine if hashes[p] == expected_sha1]
        if not same:
            others = "; ".join(f"{os.path.dirname(p)} has manifest sha1 {hashes[p]}" for p, _ in mine)
            raise KitError(f"the models dataset is not the one this kernel was built with: the build expects "
                           f"manifest sha1 {expected_sha1}, but {others}. Attach the dataset the kernel was built "
                           f"with, or rebuild and push the kernel for this one (python -m src.kernels build, then "
                           f"push); refusing to predict", exit_code=1)
        if len(same) < len(mine):
            print(f"kernel: {len(mine) - len(same)} other models dataset(s) for {competition} ignored: not the "
                  f"one this kernel was built with", flush=True)
        mine = same
    if len(mine) > 1:
        warn(f"{len(mine)} models datasets for {competition}; using the newest ({os.path.dirname(mine[-1][0])})")
    path, manifest = max(mine, key=lambda t: t[1].get("created", ""))
    return os.path.dirname(path), manifest


def manifest_runs(folder: str, manifest: dict) -> dict[str, list[runs.Fold]]:
    out = {}
    for run, entry in manifest["runs"].items():
        out[run] = [runs.Fold(run, int(k), folder, read_json(os.path.join(folder, files["config"])),
                              {"reference": os.path.join(folder, files["reference"])},
                              weights_path=os.path.join(folder, files["weights"]))
                    for k, files in sorted(entry["folds"].items(), key=lambda t: int(t[0]))]
    return out


def checked(load):
    """`load(fold)` followed by the reference check: the fold's outputs on its stored inputs."""
    def load_and_check(fold: runs.Fold):
        model = load(fold)
        ref = np.load(fold.metrics["reference"])
        got = predict_batches(model, ref["x"])
        diff = float(np.abs(got - ref["y"]).max())
        if not np.isfinite(diff) or diff > TOLERANCE:
            raise KitError(f"run {fold.run} fold {fold.fold}: after loading, its outputs on the reference inputs "
                           f"differ from the stored ones by {diff:.3g} (tolerance {TOLERANCE}): the weights did not "
                           f"load as trained; refusing to write a submission", exit_code=1)
        print(f"kernel: {fold.run} fold {fold.fold} loaded, reference outputs match (max diff {diff:.1e})", flush=True)
        return model
    return load_and_check


def _predict(comp: Competition, root: str, build: dict) -> None:
    """The kit's own prediction (kit.predict) over the models dataset the kernel was built with,
    every fold checked first."""
    expected = build.get("manifest_sha1")
    if not expected:
        raise KitError(f"this kernel's build info names no models dataset (no manifest_sha1): rebuild it with "
                       f"python -m src.kernels build {build.get('name') or comp.name} after staging the dataset",
                       exit_code=1)
    with stage("finding the data and the models"):
        folder, manifest = find_manifest(os.path.join(root, "input"), comp.slug, expected)
        print(f"kernel: models dataset {folder} (manifest sha1 {expected}, as built)", flush=True)
        found = manifest_runs(folder, manifest)
        data = comp.open_data(competition_data(root, comp.slug))
        unknown = [l for l in manifest["labels"] if l not in data.labels]
        absent = [l for l in data.labels if l not in manifest["labels"]]
        if unknown or (absent and not comp.labels_subset_ok):
            raise KitError(f"{folder}/{MANIFEST}: the models know other labels than {data.root}: "
                           f"{len(unknown)} unknown to the data {unknown[:5]}, {len(absent)} of the data's not "
                           f"trained {absent[:5]}", exit_code=1)
        print(f"kernel: {len(found)} run(s), {sum(map(len, found.values()))} fold(s) from {folder}", flush=True)
        # Scratch files (FAT2019's test features) in a fresh temporary folder: not the runs' own cache
        # path, which names a folder of the machine that trained them, nor working/ (Kaggle keeps it).
        args = predict.defaults(comp, allow_missing=True)
        if hasattr(args, "cache_dir"):
            args.cache_dir = tempfile.mkdtemp(prefix="kit-features-")
            atexit.register(shutil.rmtree, args.cache_dir, True)   # scratch, removed however the kernel ends
            print(f"kernel: test features cached in {args.cache_dir}", flush=True)
        comp.check_test(data, args)
    blend = manifest.get("blend") or {}
    out = os.path.join(root, "working", "submission.csv")
    predict.write_submission(comp, data, found, blend.get("weights"), blend.get("fold_mean") or "mean", out,
                             args, load=checked(comp.load_model), strict=True, stage=stage)
    print(f"kernel: wrote {out}", flush=True)


def hardware_args(comp: Competition, user_args: list[str], gpus=None) -> list[str]:
    """The flags a training kernel adds to the user's: --strategy auto, and --mixed-precision when
    every visible GPU has tensor cores (kit.distribute.choose), each only where the user's
    --train-args did not set it (a flag the user typed is obeyed). Says what it chose, and on a
    CPU what the fold will choose (kit.distribute.auto_speed: float32, with or without XLA)."""
    from ..kit import configio, distribute
    from ..kit import cv as kit_cv

    given = configio.given(comp.config_cls, kit_cv.parser(comp, "").parse_args(list(user_args)))
    gpus = distribute.visible_gpus() if gpus is None else gpus
    strategy, mixed = distribute.choose(gpus)
    extra = []
    if "strategy" not in given:
        extra += ["--strategy", "auto"]
    if "mixed_precision" not in given and mixed:
        extra.append("--mixed-precision")
    devices = ", ".join(f"{g} (compute {'.'.join(map(str, cc)) if cc else '?'})" for g, cc in gpus) or "CPU only"
    how_s = f"{given['strategy']} (--train-args)" if "strategy" in given else f"auto -> {strategy}"
    if "mixed_precision" in given:
        precision = (distribute.mixed_policy(gpus) if given["mixed_precision"] else "float32") + " (--train-args)"
    elif gpus:
        precision = "mixed_float16" if mixed else "float32 (not every GPU has compute capability 7.0 or more)"
    else:                                   # the fold's own default for this CPU (kit.distribute.auto_speed)
        cpu_mixed, _, why = distribute.auto_speed([], distribute.cpu_flags())
        precision = f"{distribute.mixed_policy([]) if cpu_mixed else 'float32'} (no GPU; {why})"
    print(f"kernel: devices {devices}; strategy {how_s}; precision {precision}", flush=True)
    return extra


TRAIN_RECORD = "kit-train.json"   # in <root>/working/: what a training kernel trained, with file hashes


def _train(comp: Competition, root: str, build: dict) -> None:
    """Train the build's folds (build["folds"]: a list, or None for every fold, then predict) with
    the build's flags on the competition data; the runs stay in <root>/working/work/ (the kernel's
    output), described with their files' sha1 in <root>/working/kit-train.json."""
    from ..kit import configio
    from ..kit import cv as kit_cv

    data_dir = competition_data(root, comp.slug)
    working = os.path.join(root, "working")
    os.chdir(working)
    dataset = comp.open_data(data_dir).name
    if build.get("folds_csv"):
        path = foldfile.folds_path(dataset)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(build["folds_csv"])
    user = list(build.get("train_args", []))
    parsed = kit_cv.parser(comp, "").parse_args(user)
    cfg = configio.from_args(comp.config_cls, parsed)
    user += hardware_args(comp, user)
    folds = build.get("folds")
    fold_args = [["--fold", "all"]] if folds is None else [["--fold", str(k)] for k in folds]
    cmds = [[comp.modules["cv"], *fa, *user] for fa in fold_args]
    if folds is None:
        cmds.append([comp.modules["predict"], "--out", "submission.csv"])
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    for cmd in cmds:
        full = [sys.executable, "-m", cmd[0], "--data-dir", data_dir, *cmd[1:]]
        with stage(" ".join(full[2:])):
            if subprocess.run(full, env=env).returncode != 0:
                raise KitError(f"{' '.join(full[2:])} failed (see above)", exit_code=1)
    if "cache_dir" not in configio.given(comp.config_cls, parsed) and hasattr(cfg, "cache_dir") and \
            os.path.isdir(os.path.join(working, cfg.cache_dir)):
        shutil.rmtree(os.path.join(working, cfg.cache_dir), ignore_errors=True)   # features: not an output
    trained = {}
    for k in (folds if folds is not None else range(cfg.n_folds)):
        d = os.path.join(cfg.work_dir, dataset, cfg.run_name, f"fold{k}")
        if os.path.isdir(d):
            trained[str(k)] = {"path": d, "files": {n: file_sha1(os.path.join(d, n)) for n in sorted(os.listdir(d))
                                                    if os.path.isfile(os.path.join(d, n))}}
    record = {"kit_version": build.get("kit_version"), "competition": comp.slug,
              "dataset": dataset, "run": cfg.run_name, "folds": trained,
              "kernel": build.get("kernel_id"), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    with open(os.path.join(working, TRAIN_RECORD), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, sort_keys=True)
    print(f"kernel: trained run {cfg.run_name} fold(s) {', '.join(trained) or 'none'} of {dataset}; "
          f"{TRAIN_RECORD} written", flush=True)


@cli
def main(name: str, kind: str = "predict", build: dict | None = None) -> int:
    root = kaggle_root()
    t0 = time.time()
    print(f"kernel: {name} {kind}, root {root}", flush=True)
    comp = competitions.get(name)
    build = BUILD if build is None else build
    if kind == "train":
        _train(comp, root, build)
    else:
        _predict(comp, root, build)
    print(f"kernel: finished in {time.time() - t0:.0f}s", flush=True)
    return 0
