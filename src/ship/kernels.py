"""Ship the kit to Kaggle: the trained runs as a dataset, an offline kernel built from the kit's
own source, and the kaggle CLI to push, follow and submit them.

    python -m src.kernels dataset freesound [--owner USER] [--runs a,b] [--dry-run] [--poll S]
    python -m src.kernels build freesound [--owner USER] [--kind predict|train]
    python -m src.kernels check freesound [--kind predict|train] [--kaggle-versions]   (see src/ship/check.py)
    python -m src.kernels push freesound
    python -m src.kernels status freesound [--wait]
    python -m src.kernels output freesound
    python -m src.kernels submit freesound -m "cnn 5 folds"      (NAME: freesound or quickdraw)
    python -m src.kernels train freesound [--folds all|0,2] [--parallel K] [--train-args "..."] [--name RUN]
                                          (see src/ship/train.py: train on Kaggle, import the folds)

`dataset` stages every trusted fold (as src.predict would use it) into kernels/NAME/dataset/:
its config.json and weights (not a .keras file: Kaggle's older Keras cannot load one saved by a
newer Keras, weights load into the architecture rebuilt from config.json), the model's outputs on
fixed inputs (the kernel recomputes them and refuses to submit if they differ), and
kit-manifest.json naming runs, folds, labels and blend weights. The upload is then checked file by
file: once Kaggle has processed it, every staged file must be in the dataset's listing. `build`
writes kernels/NAME/build/: kernel-metadata.json and one script carrying the kit's source, which
runs with Kaggle's paths (/kaggle/input, /kaggle/working; KAGGLE_KIT_ROOT overrides /kaggle). An
inference build records the sha1 of the staged kit-manifest.json; the kernel refuses any other
models dataset (an older upload included), so stage (and upload) the dataset before building.
`output` replaces kernels/NAME/output/ with the output of the last pushed version and records its
kernel, version and status in kit-output.json. FAT2019 is a code competition (the kernel version
is submitted); Quick Draw takes the submission file, which `submit` sends only when it came from a
complete run of the last pushed version (`--file` sends a file as given).
"""
from __future__ import annotations

import argparse
import base64
import glob
import hashlib
import io
import os
import shutil
import time
import zipfile
from typing import Callable

import numpy as np

from .. import __version__, competitions
from ..kit import atomic, blend, foldfile, runs
from ..kit.competition import Competition
from ..kit.distribute import quiet_tensorflow
from ..kit.errors import KitError, cli
from ..kit.forward import predict_batches
from ..kit.predict import ensemble_labels
from . import client as kaggle_cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = os.path.join(REPO, "kernels")
MANIFEST = "kit-manifest.json"
CODE_FILE = "kernel.py"
OUTPUT_RECORD = "kit-output.json"      # in kernels/NAME/output/: which kernel version and status the files came from
PUSHED = "pushed.json"                 # in the build folder: the version `push` got


def find(comp: Competition, args) -> tuple[dict, list[str], dict | None, str]:
    """(trusted runs, the labels they blend over, blend weights or None, fold mean), as predict sees them."""
    data = comp.open_data(args.data_dir)
    found = comp.find_runs(args.work_dir, data, _names(args), strict=False)
    weights, how = blend.load(os.path.join(args.work_dir, data.name), list(found))
    return found, ensemble_labels(found, data.labels), weights, how


def _names(args) -> list[str] | None:
    return args.runs.split(",") if getattr(args, "runs", None) else None


def folder(name: str, part: str) -> str:
    """kernels/NAME/<part>/ under the current folder (dataset, build, output)."""
    return os.path.join("kernels", name, part)


def owner_of(args) -> str:
    owner = args.owner or kaggle_cli.configured_user()
    if not owner:
        raise KitError("no Kaggle user name: give --owner USER, or set KAGGLE_USERNAME / kaggle.json")
    return owner


def slugs(name: str, owner: str, kind: str = "predict") -> tuple[str, str]:
    """(kernel id, models dataset id) of competition NAME."""
    return f"{owner}/kit-{name}-{kind}", f"{owner}/kit-{name}-models"


def _replace_folder(target: str, fill: Callable[[str], None]) -> None:
    """Build `target` afresh in a temporary folder and swap it in: no stale file from an
    earlier build survives, and a failed build leaves the previous one whole."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = atomic.temp_name(target)
    os.remove(tmp)
    os.makedirs(tmp)
    try:
        fill(tmp)
        atomic.replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------- dataset

def stage_dataset(comp: Competition, args) -> tuple[str, dict]:
    found, labels, weights, how = find(comp, args)
    for folds in found.values():
        runs.check_consistent(folds, comp.consistent_keys)
    owner = owner_of(args)
    _, dataset_id = slugs(comp.name, owner)
    manifest = {"kit": "kaggle-audio-doodle-kit", "kit_version": __version__, "competition": comp.slug,
                "labels": labels, "blend": {"weights": weights, "fold_mean": how}, "runs": {},
                "created": time.strftime("%Y-%m-%d %H:%M:%S")}

    def fill(tmp: str) -> None:
        quiet_tensorflow()
        import keras  # TensorFlow starts here, on first use: after any feature workers forked

        for run, folds in found.items():
            entry = manifest["runs"][run] = {"folds": {}}
            for f in folds:
                base = f"{run}.fold{f.fold}"
                shutil.copyfile(os.path.join(f.path, "config.json"), os.path.join(tmp, base + ".config.json"))
                shutil.copyfile(f.weights, os.path.join(tmp, base + ".weights.h5"))
                model = comp.load_model(f)
                x = comp.reference_input(f.config)
                np.savez(os.path.join(tmp, base + ".reference.npz"), x=x, y=predict_batches(model, x))
                entry["folds"][str(f.fold)] = {"config": base + ".config.json", "weights": base + ".weights.h5",
                                               "reference": base + ".reference.npz",
                                               "score": f.metrics.get("score")}
                keras.backend.clear_session()
        manifest["trained_with"] = {"keras": keras.__version__}
        atomic.write_json(os.path.join(tmp, MANIFEST), manifest)
        atomic.write_json(os.path.join(tmp, kaggle_cli.DATASET_METADATA_FILE), kaggle_cli.dataset_metadata(
            owner, dataset_id.split("/")[1], f"Kit {comp.name} models"))

    target = folder(comp.name, "dataset")
    _replace_folder(target, fill)
    n = sum(len(v) for v in found.values())
    print(f"dataset: staged {len(found)} run(s), {n} fold(s) ({', '.join(found)}) in {target} as {dataset_id}")
    return target, manifest


def cmd_dataset(comp: Competition, args) -> int:
    target, _ = stage_dataset(comp, args)
    if args.dry_run:
        print("dataset: --dry-run, nothing uploaded")
        return 0
    ref = kaggle_cli._dataset_ref(target)
    if kaggle_cli.dataset_exists(ref):
        out = kaggle_cli.dataset_version(target, args.message or f"kit {__version__}", dir_mode="skip")
    else:
        out = kaggle_cli.dataset_create(target, dir_mode="skip")
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    sent = sum(ln.startswith("Upload successful") for ln in lines)
    print(f"dataset: the client sent {sent} file(s)" + (f": {lines[-1]}" if lines else ""))
    found = kaggle_cli.verify_dataset(target, dir_mode="skip", poll_s=args.poll,
                                      on_status=lambda st: print(f"dataset: {ref} {st}", flush=True))
    print(f"dataset: {ref} uploaded, all {len(found)} file(s) listed by Kaggle; build the kernel now (it records "
          f"this dataset's manifest): python -m src.kernels build {comp.name}")
    return 0


# ---------------------------------------------------------------------------------------- build

def payload() -> tuple[str, int]:
    """The kit's source (src/**/*.py) as a base64 zip, and its file count."""
    buf = io.BytesIO()
    files = sorted(glob.glob(os.path.join(REPO, "src", "**", "*.py"), recursive=True))
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for p in files:
            z.write(p, os.path.relpath(p, REPO))
    return base64.b64encode(buf.getvalue()).decode(), len(files)


def kernel_script(name: str, kind: str, extra: dict | None = None) -> str:
    with open(os.path.join(TEMPLATES, "bootstrap.py"), encoding="utf-8") as f:
        boot = f.read()
    entry_path = os.path.join(TEMPLATES, name, f"{kind}.py")
    with open(entry_path, encoding="utf-8") as f:
        entry = f.read()
    data, n = payload()
    info = {"name": name, "kind": kind, "files": n, "built": time.strftime("%Y-%m-%d %H:%M:%S"),
            "kit_version": __version__, **(extra or {})}
    # The build info reaches the runtime whatever the entry passes: the predict entries call
    # main(name, kind) without it, and the kernel must know the models dataset it was built with.
    handoff = "import src.ship.runtime as _kit_runtime  # noqa: E402\n_kit_runtime.BUILD.update(KIT_BUILD)\n"
    return boot.replace("{build_info}", repr(info)).replace("{payload}", data) + "\n" + handoff + entry


def staged_manifest(comp: Competition) -> tuple[str, str]:
    """(path, sha1) of the staged models dataset's kit-manifest.json, which an inference kernel is
    built for; refused when nothing (or another competition's dataset) is staged."""
    path = os.path.join(folder(comp.name, "dataset"), MANIFEST)
    if not os.path.exists(path):
        raise KitError(f"no staged models dataset ({path} is missing), and the kernel is built for one: run "
                       f"python -m src.kernels dataset {comp.name} first")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        competition = atomic.read_json(path).get("competition")
    except ValueError as e:
        raise KitError(f"{path} is not valid JSON ({e}): run python -m src.kernels dataset {comp.name} again")
    if competition != comp.slug:
        raise KitError(f"{path} is for competition '{competition}', not '{comp.slug}': run python -m src.kernels "
                       f"dataset {comp.name} first")
    return path, hashlib.sha1(raw).hexdigest()


def cmd_build(comp: Competition, args) -> int:
    owner = owner_of(args)
    kernel_id, dataset_id = slugs(comp.name, owner, args.kind)
    extra = {}
    if args.kind == "predict":
        manifest_path, extra["manifest_sha1"] = staged_manifest(comp)
    if args.kind == "train":
        extra["train_args"] = args.train_args.split() if args.train_args else []
        extra["folds_csv"] = _folds_csv(comp, args)
    script = kernel_script(comp.name, args.kind, extra)
    title = f"Kit {comp.name} {args.kind}"
    meta = kaggle_cli.kernel_metadata(owner, kernel_id.split("/")[1], title, CODE_FILE, comp.slug,
                                      [dataset_id] if args.kind == "predict" else [], enable_gpu=not args.no_gpu)

    def fill(tmp: str) -> None:
        atomic.write_text(os.path.join(tmp, CODE_FILE), script)
        atomic.write_json(os.path.join(tmp, kaggle_cli.KERNEL_METADATA_FILE), meta)

    target = folder(comp.name, "build" if args.kind == "predict" else "build-train")
    _replace_folder(target, fill)
    print(f"build: {target}/{CODE_FILE} ({len(script) / 1e6:.2f} MB, kit {__version__}) and kernel-metadata.json "
          f"for {kernel_id}{f' with dataset {dataset_id}' if args.kind == 'predict' else ''}")
    if args.kind == "predict":
        print(f"build: the kernel runs only with the models dataset staged now ({manifest_path}, sha1 "
              f"{extra['manifest_sha1']}); upload that one")
    return 0


def _folds_csv(comp: Competition, args) -> str | None:
    """The folds file a training kernel carries: the local folds/<dataset>.csv wherever it exists
    (the runs it trains then match the local file by construction), and required where
    comp.ships_folds (FAT2019's needs iterative-stratification, which Kaggle's image lacks); None
    where there is none and the kernel makes its own."""
    path = foldfile.folds_path(comp.open_data(args.data_dir).name)
    if not comp.ships_folds and not os.path.exists(path):
        return None
    if not os.path.exists(path):
        raise KitError(f"{path} is missing: make it with python -m {comp.modules['folds']} (the training kernel "
                       f"carries it)")
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------------------------------- kaggle

def _built(comp: Competition, kind: str = "predict") -> tuple[str, dict]:
    target = folder(comp.name, "build" if kind == "predict" else "build-train")
    path = os.path.join(target, kaggle_cli.KERNEL_METADATA_FILE)
    if not os.path.exists(path):
        raise KitError(f"{path} is missing: run python -m src.kernels build {comp.name} first")
    return target, atomic.read_json(path)


def _pushed(target: str, kernel_id: str) -> dict | None:
    """The build folder's pushed.json when it is about kernel `kernel_id`, else None."""
    path = os.path.join(target, PUSHED)
    if not os.path.exists(path):
        return None
    pushed = atomic.read_json(path)
    return pushed if pushed.get("id") == kernel_id and pushed.get("version") is not None else None


def cmd_push(comp: Competition, args) -> int:
    target, meta = _built(comp, args.kind)
    version = kaggle_cli.push_kernel(target)
    atomic.write_json(os.path.join(target, PUSHED), {"id": meta["id"], "version": version,
                                                     "pushed": time.strftime("%Y-%m-%d %H:%M:%S")})
    print(f"push: {meta['id']} version {version}; follow it with python -m src.kernels status {comp.name} --wait")
    return 0


def cmd_status(comp: Competition, args) -> int:
    _, meta = _built(comp, args.kind)
    if args.wait:
        status, message = kaggle_cli.wait_kernel(meta["id"], poll_s=args.poll,
                                                 on_status=lambda s: print(f"status: {meta['id']} {s}", flush=True))
    else:
        status, message = kaggle_cli.kernel_status(meta["id"])
    print(f"status: {meta['id']} {status}" + (f": {message}" if message else ""))
    if status in ("error", "cancel_acknowledged", "cancel_requested"):
        raise KitError(f"kernel {meta['id']} ended with {status}" + (f": {message}" if message else "") +
                       f"; its log: python -m src.kernels output {comp.name}", exit_code=1)
    return 0


def _one_line(text: str | None) -> str:
    return " ".join(str(text or "").split())


def cmd_output(comp: Competition, args) -> int:
    """Replace kernels/NAME/output/ with the output of the last pushed version (the latest run when
    no push is recorded) and record which kernel, version and status it came from: nothing of an
    earlier download survives, so a failed run leaves no older submission.csv behind."""
    target, meta = _built(comp, args.kind)
    pushed = _pushed(target, meta["id"])
    version = int(pushed["version"]) if pushed else None
    status, message = kaggle_cli.kernel_status(meta["id"], version)    # before the files: a run still going
    dest = folder(comp.name, "output")                                 # is recorded as such
    names: list[str] = []

    def fill(tmp: str) -> None:
        names.extend(os.path.basename(f) for f in kaggle_cli.kernel_output(meta["id"], tmp, version))
        atomic.write_json(os.path.join(tmp, OUTPUT_RECORD), {
            "kernel": meta["id"], "kind": args.kind, "version": version, "status": status,
            "failure_message": message, "files": names, "downloaded": time.strftime("%Y-%m-%d %H:%M:%S")})

    _replace_folder(dest, fill)
    if version is not None:
        which = f"version {version}"
    else:
        which = f"latest run (no push recorded in {os.path.join(target, PUSHED)}: submit will refuse it)"
    print(f"output: {len(names)} file(s) of {meta['id']} {which}, status {status}, in {dest}: " + ", ".join(names))
    if status != "complete":
        print(f"output: the run's status is {status}, not complete" +
              (f" ({_one_line(message)})" if message else "") + ": its files are kept for the log, submit will "
              f"refuse them")
    return 0


def _checked_output(comp: Competition) -> str:
    """kernels/NAME/output/submission.csv, when its record says it came from a complete run of
    the kernel's last pushed version; else KitError saying what differs."""
    dest = folder(comp.name, "output")
    path = os.path.join(dest, "submission.csv")
    record_path = os.path.join(dest, OUTPUT_RECORD)
    if not os.path.exists(record_path):
        raise KitError(f"{record_path} is missing: nothing says which kernel version wrote {path}; download the "
                       f"kernel's output with python -m src.kernels output {comp.name} (or give --file)")
    record = atomic.read_json(record_path)
    kind = record.get("kind") or "predict"
    target, meta = _built(comp, kind)
    kernel, version, status = record.get("kernel"), record.get("version"), record.get("status")
    if kernel != meta["id"]:
        raise KitError(f"{dest} holds the output of kernel {kernel}, not of {meta['id']} (built now): download its "
                       f"output with python -m src.kernels output {comp.name}, or give --file")
    pushed = _pushed(target, meta["id"])
    if pushed is None:
        raise KitError(f"no pushed version of {meta['id']} known ({os.path.join(target, PUSHED)} is missing; a build "
                       f"clears it): push it and download its output, or give --file")
    if version != pushed["version"]:
        raise KitError(f"{dest} holds the output of {kernel} "
                       f"{f'version {version}' if version is not None else 'at an unrecorded version (its latest run)'}"
                       f", but the latest pushed version is "
                       f"version {pushed['version']}: download its output once it completes (python -m src.kernels "
                       f"status {comp.name} --wait, then output {comp.name}), or give --file")
    if status != "complete":
        message = record.get("failure_message")
        raise KitError(f"{kernel} version {version} has status {status}" +
                       (f" ({_one_line(message)})" if message else "") +
                       f", not complete: its output is not submitted (python -m src.kernels status {comp.name}; "
                       f"--file submits a CSV as given)", exit_code=1)
    if not os.path.exists(path):
        raise KitError(f"{path} is missing: {kernel} version {version} completed without writing it")
    return path


def cmd_submit(comp: Competition, args) -> int:
    if comp.code_competition:
        target, meta = _built(comp)
        pushed = os.path.join(target, "pushed.json")
        version = args.version or (atomic.read_json(pushed)["version"] if os.path.exists(pushed) else None)
        if not version:
            raise KitError(f"no pushed version of {meta['id']} known: push it first or give --version N")
        print(kaggle_cli.submit_kernel(comp.slug, meta["id"], int(version), "submission.csv", args.message))
    elif args.file:
        path = args.file
        if not os.path.exists(path):
            raise KitError(f"{path} is missing (--file)")
        print(f"submit: --file {path} given: submitting it as given, without checking which kernel version wrote it")
        print(kaggle_cli.submit_file(comp.slug, path, args.message))
    else:
        print(kaggle_cli.submit_file(comp.slug, _checked_output(comp), args.message))
    return 0


def cmd_check(comp: Competition, args) -> int:
    from .check import cmd_check as check      # src/ship/check.py: the built kernel run here as Kaggle would

    return check(comp, args)


def cmd_train(comp: Competition, args) -> int:
    from .train import cmd_train as train      # src/ship/train.py: build, push, follow, import

    return train(comp, args)


COMMANDS = {"dataset": cmd_dataset, "build": cmd_build, "push": cmd_push, "status": cmd_status,
            "output": cmd_output, "submit": cmd_submit, "check": cmd_check, "train": cmd_train}


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.kernels", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name, help_ in [("dataset", "stage the trained runs as a Kaggle dataset (and upload it)"),
                        ("build", "write the offline kernel and its kernel-metadata.json"),
                        ("check", "run the built kernel here as Kaggle would and compare it with local prediction"),
                        ("push", "push the built kernel (starts a run on Kaggle)"),
                        ("status", "status of the kernel's latest run (exit 1 on error)"),
                        ("output", "download the kernel's output and log into kernels/NAME/output/"),
                        ("submit", "submit: the kernel version (freesound) or its submission.csv (quickdraw)"),
                        ("train", "train on Kaggle's GPUs (build, push, follow) and import the folds into work/")]:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("name", choices=competitions.NAMES, help="the competition")
        if name in ("dataset", "build"):
            p.add_argument("--owner", default=None, help="Kaggle user name (default: the kaggle CLI's)")
            p.add_argument("--data-dir", default=None, help="competition data folder (default: as src.cv finds it)")
            p.add_argument("--work-dir", default="work", help="where the runs are (default: work)")
        if name == "dataset":
            p.add_argument("--runs", default=None, help="comma-separated run names (default: every finished run)")
            p.add_argument("--dry-run", action="store_true", help="stage only, upload nothing")
            p.add_argument("--message", default=None, help="version notes when the dataset exists")
            p.add_argument("--poll", type=float, default=10,
                           help="seconds between status checks while Kaggle processes the upload (default 10)")
        if name in ("build", "push", "status", "output"):
            p.add_argument("--kind", choices=["predict", "train"], default="predict",
                           help="inference kernel, or one that trains the folds on Kaggle's GPU")
        if name == "check":
            from .check import add_arguments
            add_arguments(p)
        if name == "train":
            from .train import MAX_PARALLEL, add_arguments as add_train_arguments
            p.description = (f"{help_} (one kernel per fold with --parallel K, at most {MAX_PARALLEL} at once: "
                             f"Kaggle's concurrent GPU sessions; see src/ship/train.py)")
            add_train_arguments(p)
        if name == "build":
            p.add_argument("--train-args", default="", help="--kind train: the src.cv flags, e.g. '--n-mels 64'")
            p.add_argument("--no-gpu", action="store_true", help="ask for a CPU kernel")
        if name == "status":
            p.add_argument("--wait", action="store_true", help="poll until the run ends")
            p.add_argument("--poll", type=float, default=30, help="seconds between polls (default 30)")
        if name == "submit":
            p.add_argument("-m", "--message", required=True, help="submission description")
            p.add_argument("--version", type=int, default=None, help="kernel version (default: the last pushed)")
            p.add_argument("--file", default=None, help="quickdraw: the CSV (default: kernels/quickdraw/output/)")
    args = ap.parse_args(argv)
    return COMMANDS[args.command](competitions.get(args.name), args)


if __name__ == "__main__":
    raise SystemExit(main())
