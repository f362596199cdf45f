"""Train on Kaggle's GPUs and bring the folds home: `python -m src.kernels train NAME`.

    python -m src.kernels train freesound [--folds all|0,2] [--parallel K] [--train-args "..."] [--name RUN]

Builds the training kernel (as `build --kind train` does: the kit's source, the build's src.cv
flags and the local folds file in one script), pushes it with the kaggle CLI and follows it, one
plain line per change of status and at least every --report seconds (status, time since the push,
Kaggle's message). With --parallel K > 1 every fold gets its own kernel (kit-NAME-train-f<K>,
training that fold only), at most K running at once; otherwise one kernel (kit-NAME-train) trains
the folds asked for, and predicts when that is every fold.

When a kernel completes, its output is downloaded into a fresh kernels/NAME/train/output/<slug>/
and each fold it trained is imported into work/<dataset>/<run>/fold<K>/ (the LOCAL dataset name),
but only through the trust rules local runs pass (kit.runs): finished (metrics.json), trained on the
local data's labels and on the local folds file (its sha1), recorded by a kit of this major.minor
version, its files those the kernel listed in kit-train.json (sha1), and its weights loading into
the network its config.json describes. A refused fold is named with the reason and nothing of it
is imported. A kernel that ends in error or is cancelled imports nothing; the command says Kaggle's
message and the last lines of the kernel's log and exits 1.

Resumable: kernels/NAME/train/state.json (written atomically) records each kernel's version and
what was imported. Run the same command again after an interrupt: kernels still running are
followed again, folds already imported are not pushed again, a kernel that failed is pushed again.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import time

from .. import __version__
from ..kit import atomic, configio, foldfile, lock, runs
from ..kit import cv as kit_cv
from ..kit.competition import Competition
from ..kit.datadir import file_sha1
from ..kit.errors import KitError, list_some
from . import client as kaggle_cli
from .runtime import TRAIN_RECORD

# Kaggle's limit on GPU sessions running at once per user. No authoritative figure was found in
# Kaggle's documentation when this was written (its docs state weekly GPU hours and a 12-hour
# session limit); 2 is a conservative ceiling, and a push over the account's limit is refused by
# Kaggle with its own message (shown as the push error).
MAX_PARALLEL = 2
STATE = "state.json"
FAILED = ("error", "cancel_acknowledged")
LOG_LINES = 15


def folder(name: str, *parts: str) -> str:
    return os.path.join("kernels", name, "train", *parts)


def unit_slug(name: str, folds: list[int] | None, parallel: int) -> str:
    return f"kit-{name}-train" + (f"-f{folds[0]}" if parallel > 1 else "")


# ---------------------------------------------------------------------------------------- settings

def settings(comp: Competition, args) -> dict:
    """What this training is (the state file's key): owner, local dataset, run, folds, flags."""
    from .kernels import owner_of

    owner = owner_of(args)
    if not 1 <= args.parallel <= MAX_PARALLEL:
        raise KitError(f"--parallel {args.parallel}: Kaggle runs at most {MAX_PARALLEL} GPU sessions at once per "
                       f"user (see --help); give 1 to {MAX_PARALLEL}")
    user = shlex.split(args.train_args or "")
    try:
        parsed = kit_cv.parser(comp, "").parse_args(user)
    except SystemExit:
        raise KitError(f"--train-args {args.train_args!r}: not flags of python -m {comp.modules['cv']} (see its --help)")
    given = configio.given(comp.config_cls, parsed)
    if "--fold" in user or any(a.startswith("--fold=") for a in user):
        raise KitError("--train-args: give the folds with --folds, not --fold")
    if given.get("init_from"):
        raise KitError(f"--train-args --init-from {given['init_from']}: a folder on this machine, which the Kaggle "
                       f"session cannot see; train with --init-from locally (Kaggle training starts fresh)")
    if "resume" in vars(parsed) and (parsed.resume or parsed.restart):
        raise KitError("--train-args: --resume/--restart mean nothing in a fresh Kaggle session")
    if args.run:
        if "name" in given and given["name"] != args.run:
            raise KitError(f"--name {args.run} and --train-args --name {given['name']}: give one")
        if "name" not in given:
            user += ["--name", args.run]
    cfg = configio.from_args(comp.config_cls, kit_cv.parser(comp, "").parse_args(user))
    data = comp.open_data(args.data_dir)
    path = foldfile.folds_path(data.name)
    if os.path.exists(path):
        import pandas as pd

        k = pd.read_csv(path)["fold"].nunique()
        if k != cfg.n_folds:
            raise KitError(f"{path} has {k} folds but the training would use --n-folds {cfg.n_folds}: give "
                           f"--train-args '--n-folds {k}', or rebuild the folds file (python -m {comp.modules['folds']})")
    if args.folds == "all":
        folds = list(range(cfg.n_folds))
    else:
        try:
            folds = sorted({int(f) for f in args.folds.split(",") if f.strip()})
        except ValueError:
            raise KitError(f"--folds {args.folds!r}: 'all' or fold numbers like 0,2") from None
        bad = [f for f in folds if not 0 <= f < cfg.n_folds]
        if bad or not folds:
            raise KitError(f"--folds {args.folds}: folds are 0-{cfg.n_folds - 1} (--n-folds {cfg.n_folds})")
    return {"owner": owner, "competition": comp.slug, "dataset": data.name, "data_dir": data.root,
            "run": cfg.run_name, "work_dir": cfg.work_dir, "folds": folds, "all": folds == list(range(cfg.n_folds)),
            "parallel": args.parallel, "train_args": user}


def load_state(comp: Competition, want: dict) -> dict:
    """The state of this training (same settings), or a fresh one; refused while another
    training's kernels are still being followed."""
    path = folder(comp.name, STATE)
    if os.path.exists(path):
        try:
            state = atomic.read_json(path)
        except ValueError as e:
            raise KitError(f"{path} is not valid JSON ({e}); remove it to start afresh")
        if state.get("settings") == want:
            return state
        active = [u["slug"] for u in state.get("units", {}).values() if u.get("status") == "pushed"]
        if active:
            raise KitError(f"{path}: another training (run {state['settings'].get('run')}, --folds "
                           f"{state['settings'].get('folds')}, --train-args {state['settings'].get('train_args')}) is "
                           f"still being followed ({', '.join(active)}): run that command again to finish it, or "
                           f"remove {path} to forget it (its kernels keep running on Kaggle)")
        print(f"train: {path} was about another training, all ended; starting afresh", flush=True)
    units = {}
    groups = [[k] for k in want["folds"]] if want["parallel"] > 1 else [want["folds"]]
    for g in groups:
        slug = unit_slug(comp.name, g, want["parallel"])
        units[slug] = {"slug": slug, "id": f"{want['owner']}/{slug}", "folds": g, "status": "new", "imported": {}}
    return {"settings": want, "units": units}


def save_state(comp: Competition, state: dict) -> None:
    atomic.write_json(folder(comp.name, STATE), state)


# ---------------------------------------------------------------------------------------- build, push

def build_unit(comp: Competition, state: dict, unit: dict, folds_csv: str | None, gpu: bool) -> str:
    """kernels/NAME/train/<slug>/: the kernel training `unit`'s folds not yet imported."""
    from .kernels import CODE_FILE, _replace_folder, kernel_script

    s = state["settings"]
    todo = [k for k in unit["folds"] if str(k) not in unit["imported"]]
    every = s["all"] and s["parallel"] == 1 and todo == s["folds"]
    extra = {"train_args": s["train_args"], "folds_csv": folds_csv, "folds": None if every else todo,
             "kernel_id": unit["id"]}
    script = kernel_script(comp.name, "train", extra)
    title = f"Kit {comp.name} train" + (f" f{unit['folds'][0]}" if s["parallel"] > 1 else "")
    meta = kaggle_cli.kernel_metadata(s["owner"], unit["slug"], title, CODE_FILE, comp.slug, [], enable_gpu=gpu)
    target = folder(comp.name, unit["slug"])

    def fill(tmp: str) -> None:
        atomic.write_text(os.path.join(tmp, CODE_FILE), script)
        atomic.write_json(os.path.join(tmp, kaggle_cli.KERNEL_METADATA_FILE), meta)

    _replace_folder(target, fill)
    return target


def _elapsed(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _log_tail(path: str, n: int = LOG_LINES) -> list[str]:
    """The last lines of a kernel log: Kaggle's is a JSON list of {stream_name, time, data}."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    try:
        entries = json.loads(text)
        if isinstance(entries, list):
            text = "".join(str(e.get("data", "")) for e in entries if isinstance(e, dict))
    except ValueError:
        pass
    return [ln.rstrip() for ln in text.splitlines() if ln.strip()][-n:]


def download(comp: Competition, unit: dict) -> str:
    """The unit's kernel output (its pushed version) in a fresh kernels/NAME/train/output/<slug>/."""
    from .kernels import _replace_folder

    target = folder(comp.name, "output", unit["slug"])
    _replace_folder(target, lambda tmp: kaggle_cli.kernel_output(unit["id"], tmp, unit.get("version")))
    return target


# ---------------------------------------------------------------------------------------- import

def _major_minor(version: str | None) -> tuple[str, ...] | None:
    parts = str(version or "").split(".")
    return tuple(parts[:2]) if len(parts) >= 2 else None


def check_fold(comp: Competition, data, src: str, run: str, k: int, record: dict, folds_sha1: str) -> str | None:
    """Why the downloaded fold at `src` may not be imported, or None: the trust rules of local
    runs (kit.runs), the kit version, the files the kernel listed, and a load of its weights."""
    if not os.path.isdir(src):
        return f"not in the kernel's output (no {os.path.relpath(src)})"
    why, config, metrics = runs._why_not(src, data.labels, folds_sha1, comp.labels_subset_ok)
    if why:
        return why
    trained_by = config.get("kit_version")
    if trained_by is None:
        return "its config.json records no kit version"
    if _major_minor(trained_by) != _major_minor(__version__):
        return f"trained by kit {trained_by}, this is kit {__version__} (major.minor must match)"
    listed = (record.get("folds") or {}).get(str(k), {}).get("files") or {}
    for name in (runs.WEIGHTS, "config.json", "metrics.json"):
        if name not in listed:
            return f"{name} is not among the files the kernel listed in {TRAIN_RECORD}"
        got = file_sha1(os.path.join(src, name))
        if got != listed[name]:
            return f"{name} differs from what the kernel wrote (sha1 {got[:12]}, the kernel's {listed[name][:12]})"
    try:
        import keras  # TensorFlow starts here, on first use

        comp.load_model(runs.Fold(run, k, src, config, metrics))
        keras.backend.clear_session()
    except Exception as e:        # noqa: BLE001  (any failure to rebuild and load is a refusal)
        return f"its weights do not load into the network its config.json describes ({str(e).strip()[:200]})"
    return None


def import_unit(comp: Competition, state: dict, unit: dict, out: str) -> list[str]:
    """Import the unit's folds from its downloaded output `out`; return the refusals."""
    s = state["settings"]
    data = comp.open_data(s["data_dir"])
    record_path = os.path.join(out, TRAIN_RECORD)
    if not os.path.exists(record_path):
        return [f"{unit['slug']}: its output has no {TRAIN_RECORD} (not a kit training kernel's output, or it stopped "
                f"before the end); nothing imported"]
    record = atomic.read_json(record_path)
    local_folds = foldfile.folds_path(data.name)
    if not os.path.exists(local_folds):
        theirs = os.path.join(out, foldfile.folds_path(record.get("dataset", "")))
        if comp.ships_folds or not os.path.exists(theirs):
            return [f"{unit['slug']}: {local_folds} is missing here, so no fold can be matched to it; nothing imported"]
        os.makedirs(os.path.dirname(local_folds), exist_ok=True)
        with open(theirs, "rb") as f:
            raw = f.read()
        with atomic.atomic_path(local_folds) as tmp:
            with open(tmp, "wb") as f:
                f.write(raw)
        print(f"train: {local_folds} was missing: adopted the kernel's folds file", flush=True)
    folds_sha1 = file_sha1(local_folds)
    refused = []
    for k in unit["folds"]:
        if str(k) in unit["imported"]:
            continue
        rel = record.get("folds", {}).get(str(k), {}).get("path") or runs.fold_dir("work", record.get("dataset", "?"),
                                                                                  s["run"], k)
        src = os.path.normpath(os.path.join(out, rel))
        if not src.startswith(os.path.normpath(out) + os.sep):
            refused.append(f"{unit['slug']} fold {k}: {TRAIN_RECORD} names a path outside the output ({rel})")
            continue
        why = check_fold(comp, data, src, s["run"], k, record, folds_sha1)
        final = runs.fold_dir(s["work_dir"], data.name, s["run"], k)
        if why is None and os.path.exists(final):
            why = f"{final} already exists here (trained here or imported before); give --name to import elsewhere"
        if why:
            refused.append(f"{unit['slug']} fold {k}: {why}")
            continue
        os.makedirs(os.path.dirname(final), exist_ok=True)
        with lock.exclusive(final + ".lock", f"fold folder {final}"):
            tmp = atomic.temp_name(final)
            os.remove(tmp)
            try:
                shutil.copytree(src, tmp)
                atomic.replace_dir(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        unit["imported"][str(k)] = final
        print(f"train: imported fold {k} of run {s['run']} into {final}", flush=True)
    return refused


# ---------------------------------------------------------------------------------------- follow

def cmd_train(comp: Competition, args) -> int:
    try:
        return _train(comp, args)
    except KeyboardInterrupt:
        print(f"train: interrupted; the kernels pushed keep running on Kaggle: run the same command again to follow "
              f"them and import their folds ({folder(comp.name, STATE)} records them)", flush=True)
        raise


def _train(comp: Competition, args) -> int:
    from .kernels import _folds_csv

    want = settings(comp, args)
    state = load_state(comp, want)
    s = state["settings"]
    units = list(state["units"].values())
    for u in units:                       # nothing pushed that could not be imported
        if u["status"] in ("pushed", "imported"):
            continue
        for k in u["folds"]:
            final = runs.fold_dir(s["work_dir"], s["dataset"], s["run"], k)
            if str(k) not in u["imported"] and os.path.exists(final):
                raise KitError(f"{final} already exists (trained here or imported before): give another --name, or "
                               f"remove it; nothing pushed")
    save_state(comp, state)
    done = [u for u in units if u["status"] == "imported"]
    if done:
        print(f"train: already imported: {', '.join(u['slug'] for u in done)} (not pushed again)", flush=True)
    folds_csv = _folds_csv(comp, args)
    failures: list[str] = []
    pending = [u for u in units if u["status"] not in ("pushed", "imported")]
    active = [u for u in units if u["status"] == "pushed"]
    for u in active:
        print(f"train: re-attaching to {u['id']} version {u.get('version')} (pushed {u.get('pushed_at')})", flush=True)
    last: dict[str, tuple[str, float]] = {}
    while pending or active:
        while pending and len(active) < s["parallel"] and not failures:
            u = pending.pop(0)
            target = build_unit(comp, state, u, folds_csv, gpu=not args.no_gpu)
            u["version"] = kaggle_cli.push_kernel(target)
            u.update(status="pushed", pushed=time.time(), pushed_at=time.strftime("%Y-%m-%d %H:%M:%S"), message=None)
            save_state(comp, state)
            todo = [k for k in u["folds"] if str(k) not in u["imported"]]
            print(f"train: pushed {u['id']} version {u['version']} (fold(s) {','.join(map(str, todo))}; run "
                  f"{s['run']})", flush=True)
            active.append(u)
        if not active:
            break
        for u in list(active):
            status, message = kaggle_cli.kernel_status(u["id"])
            now = time.time()
            seen = last.get(u["slug"])
            if seen is None or seen[0] != status or now - seen[1] >= args.report:
                print(f"train: {u['id']} v{u['version']} {status} {_elapsed(now - u.get('pushed', now))} since push"
                      + (f": {message}" if message else ""), flush=True)
                last[u["slug"]] = (status, now)
            if status not in kaggle_cli.TERMINAL_STATUSES:
                continue
            active.remove(u)
            if status in FAILED:
                try:
                    tail = _log_tail(os.path.join(download(comp, u), u["slug"] + ".log"))
                except KitError as e:            # no output to show: the failure is still what counts
                    tail = [f"(its log could not be downloaded: {e})"]
                u.update(status=status, message=message)
                save_state(comp, state)
                failures.append(f"{u['id']} v{u['version']} ended with {status}" + (f": {message}" if message else "")
                                + "; nothing imported" + ("; its log ends:\n  " + "\n  ".join(tail) if tail else ""))
                print(f"train: {failures[-1]}", flush=True)
                continue
            refused = import_unit(comp, state, u, download(comp, u))
            u.update(status="imported" if not refused else "refused", message="; ".join(refused) or None)
            save_state(comp, state)
            for r in refused:
                print(f"train: refused {r}", flush=True)
            failures += refused
        if active:
            time.sleep(args.poll)
    imported = sorted((int(k), p) for u in units for k, p in u["imported"].items())
    if imported:
        print(f"train: run {s['run']}: fold(s) {', '.join(str(k) for k, _ in imported)} imported under "
              f"{os.path.dirname(imported[0][1])}; predict with python -m {comp.modules['predict']}", flush=True)
    if failures:
        raise KitError(f"{len(failures)} problem(s): " + list_some(failures, 10) + "; run the same command again to "
                       "push the failed kernel(s) again", exit_code=1)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--owner", default=None, help="Kaggle user name (default: the kaggle CLI's)")
    p.add_argument("--data-dir", default=None, help="the local competition data (default: as src.cv finds it): "
                                                    "its dataset name is where the runs are imported")
    p.add_argument("--folds", default="all", help="'all' or fold numbers, e.g. 0,2 (default: all)")
    p.add_argument("--parallel", type=int, default=1,
                   help=f"kernels at once, one per fold when above 1 (default 1, at most {MAX_PARALLEL}: Kaggle's "
                        f"limit on GPU sessions running at once per user is taken as {MAX_PARALLEL}, a conservative "
                        f"figure: no authoritative one was found in Kaggle's documentation)")
    p.add_argument("--train-args", default="", help="the src.cv flags, e.g. '--epochs 30 --model vgg19'")
    p.add_argument("--name", dest="run", default=None, help="run name (default: the model): work/<dataset>/<name>/")
    p.add_argument("--no-gpu", action="store_true", help="ask for CPU kernels")
    p.add_argument("--poll", type=float, default=30, help="seconds between status checks (default 30)")
    p.add_argument("--report", type=float, default=300,
                   help="print a kernel's status at least every this many seconds (default 300)")
