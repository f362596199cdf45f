"""`python -m src.kernels check NAME`: run the built kernel here as Kaggle would, before spending a
Kaggle session on it.

    python -m src.kernels check freesound                      # the inference kernel vs src.predict
    python -m src.kernels check quickdraw --kaggle-versions    # ... under Kaggle's package versions
    python -m src.kernels check freesound --kind train         # the training kernel finishes

A fake Kaggle root is laid out in a temporary folder: input/<competition slug> -> the local
competition data (a link), input/<models dataset slug>/ a copy of the staged kernels/NAME/dataset/,
working/ the kernel's cwd. The built kernels/NAME/build/kernel.py runs there with KAGGLE_KIT_ROOT
pointing at it, offline (a sitecustomize refuses connections to other hosts), and with the
installed kit hidden (the same sitecustomize drops the repository and editable installs from the
import path: the kernel must run on the source it carries). Its log and submission.csv are kept in
kernels/NAME/check/, next to the local prediction (src.predict on the runs the manifest ships, same
fold mean) it is compared with: byte for byte, else score by score within --tolerance (FAT2019's
scores) and word by word (Quick Draw's); any difference exits 1, naming the first rows and columns.

--kind train runs kernels/NAME/build-train/kernel.py with only the competition data attached and
checks that it finishes, writes trained folds under working/work/ and a submission.csv whose ids
are the sample submission's (make the train args tiny at build time: that is the user's business).

--kaggle-versions runs the kernel with another Python: a virtual environment holding the package
versions of Kaggle's image, as listed (with where they were read) in src/ship/kaggle_image.txt. It
is built once, under ~/.cache/kaggle-kit/venv-<hash of the list and Python version>/
($KAGGLE_KIT_CACHE overrides ~/.cache/kaggle-kit), and reused; a half-built one is rebuilt.
"""
from __future__ import annotations

import ast
import contextlib
import fcntl
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from ..kit import atomic
from ..kit.competition import Competition
from ..kit.errors import KitError

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VERSIONS_FILE = os.path.join(HERE, "kaggle_image.txt")
READY = "kit-venv-ready.json"          # written last: a venv folder without it is half built
LOG_TAIL = 40                          # lines of the kernel's log shown on failure
SHOWN = 5                              # differing rows named

# Put first on the kernel's PYTHONPATH: hide the kit installed here (the repository on sys.path, an
# editable install's finder) and refuse network connections other than to this machine.
SITECUSTOMIZE = """\
import os, socket, sys
_repo = {repo!r}
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
# any copy of the kit: this checkout, or another one a legacy editable install (.pth) names
sys.path[:] = [p for p in sys.path if not os.path.realpath(p or os.getcwd()).startswith(_repo)
               and not os.path.isfile(os.path.join(p or os.getcwd(), "src", "kit", "competition.py"))]
_connect = socket.socket.connect


def _offline_connect(self, address, *args):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = str(address[0])
        if host not in ("localhost", "::1") and not host.startswith("127."):
            raise OSError("kernels check: no internet (a Kaggle kernel runs offline): refused connection to "
                          + host)
    return _connect(self, address, *args)


socket.socket.connect = _offline_connect
"""


# ------------------------------------------------------------------------ Kaggle's package versions

def kaggle_requirements(path: str = VERSIONS_FILE) -> list[str]:
    """The lines of the versions file: 'name==version' (pinned) or 'name' (unpinned)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                out.append(line)
    if not any(r.startswith("tensorflow==") for r in out):
        raise KitError(f"{path} pins no tensorflow==VERSION")
    return out


def pins(requirements: list[str]) -> dict[str, str]:
    return dict(r.split("==", 1) for r in requirements if "==" in r)


def cache_root() -> str:
    return os.environ.get("KAGGLE_KIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "kaggle-kit")


def venv_dir(requirements: list[str]) -> str:
    key = "\n".join(requirements) + f"\npython {sys.version_info.major}.{sys.version_info.minor}"
    return os.path.join(cache_root(), "venv-" + hashlib.sha1(key.encode()).hexdigest()[:12])


def _venv_python(venv: str) -> str:
    return os.path.join(venv, "bin", "python")


def installed_versions(python: str, names: list[str]) -> dict[str, str | None]:
    """{distribution: version or None} as `python` sees them (importlib.metadata: imports nothing)."""
    code = ("import importlib.metadata as m, json, sys\n"
            "out = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = None\n"
            "print(json.dumps(out))\n")
    r = subprocess.run([python, "-c", code, *names], capture_output=True, text=True, env=_clean_env())
    if r.returncode != 0:
        raise KitError(f"{python} cannot report its package versions: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _tf_versions(python: str) -> str:
    v = installed_versions(python, ["tensorflow", "tensorflow-cpu", "keras", "numpy"])
    tf = v["tensorflow"] or v["tensorflow-cpu"]
    return f"TensorFlow {tf}, Keras {v['keras']}, numpy {v['numpy']}"


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def kaggle_python(requirements: list[str] | None = None, log=print) -> str:
    """The Python of the virtual environment holding Kaggle's versions, built on first use (several
    minutes: pip downloads TensorFlow) and reused. KitError when it cannot be built (no network)."""
    requirements = requirements or kaggle_requirements()
    venv = venv_dir(requirements)
    python = _venv_python(venv)
    if os.path.exists(os.path.join(venv, READY)):
        return python
    os.makedirs(cache_root(), exist_ok=True)
    with open(venv + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)               # another check building the same one: wait for it
        if os.path.exists(os.path.join(venv, READY)):
            return python
        shutil.rmtree(venv, ignore_errors=True)        # half built by a run that died
        t0 = time.time()
        log(f"check: building the Kaggle-versions environment in {venv} (once; later checks reuse it; several "
            f"minutes): {' '.join(requirements)} (from {VERSIONS_FILE})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, env=_clean_env())
        build_log = os.path.join(cache_root(), os.path.basename(venv) + ".build.log")
        tf = pins(requirements)["tensorflow"]
        rest = [r for r in requirements if not r.startswith("tensorflow==")]
        for dist in ("tensorflow-cpu", "tensorflow"):   # the CPU wheel where PyPI has it for this Python
            cmd = [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
                   f"{dist}=={tf}", *rest]
            log(f"check: pip install {dist}=={tf} {' '.join(rest)} (log: {build_log})", flush=True)
            with open(build_log, "a", encoding="utf-8") as f:
                f.write(f"$ {' '.join(cmd)}\n")
                f.flush()
                r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=_clean_env())
            if r.returncode == 0:
                break
            with open(build_log, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-3000:]
            if dist == "tensorflow-cpu" and f"No matching distribution found for tensorflow-cpu=={tf}" in tail:
                log(f"check: PyPI has no tensorflow-cpu=={tf} for this Python; trying tensorflow=={tf}", flush=True)
                continue
            shutil.rmtree(venv, ignore_errors=True)
            last = [ln for ln in tail.splitlines() if ln.strip()][-3:]
            raise KitError(f"could not build the Kaggle-versions environment (pip install failed; it needs PyPI "
                           f"over the network): {' | '.join(last)} (full log: {build_log})")
        got = installed_versions(python, [dist] + [n for n in pins(requirements) if n != "tensorflow"])
        wrong = {n: v for n, v in got.items() if v != pins(requirements).get("tensorflow" if n == dist else n)}
        if wrong:
            shutil.rmtree(venv, ignore_errors=True)
            raise KitError(f"the Kaggle-versions environment got other versions than {VERSIONS_FILE} pins: {wrong}")
        seconds = time.time() - t0
        atomic.write_json(os.path.join(venv, READY), {"requirements": requirements, "tensorflow_dist": dist,
                                                      "versions": got, "python": sys.version.split()[0],
                                                      "seconds": round(seconds),
                                                      "built": time.strftime("%Y-%m-%d %H:%M:%S")})
        log(f"check: built {venv} in {seconds:.0f}s ({dist} {tf})", flush=True)
    return python


# ------------------------------------------------------------------------------ running the kernel

def build_info(script: str) -> dict:
    """The KIT_BUILD dict a built kernel.py carries (kernels.kernel_script)."""
    with open(script, encoding="utf-8") as f:
        for line in f:
            if line.startswith("KIT_BUILD = "):
                return ast.literal_eval(line[len("KIT_BUILD = "):].strip())
    raise KitError(f"{script} carries no KIT_BUILD line: not a kernel built by python -m src.kernels build")


def hide_kit(folder: str, python: str) -> dict:
    """The environment for the kernel's process: PYTHONPATH holding only the sitecustomize that hides
    the kit and the network; checked: `import src` fails with it."""
    with open(os.path.join(folder, "sitecustomize.py"), "w", encoding="utf-8") as f:
        f.write(SITECUSTOMIZE.format(repo=os.path.realpath(REPO)))
    env = _clean_env()
    env["PYTHONPATH"] = folder
    r = subprocess.run([python, "-c", "import src"], cwd=folder, env=env, capture_output=True, text=True)
    if r.returncode == 0 or "No module named 'src'" not in r.stderr:
        raise KitError(f"cannot hide the installed kit from the kernel ({python} still imports src with "
                       f"{folder}/sitecustomize.py): {r.stderr.strip()[-300:]}")
    return env


def fake_root(top: str, comp: Competition, data_root: str, dataset: str | None, dataset_slug: str | None) -> str:
    root = os.path.join(top, "kaggle")
    os.makedirs(os.path.join(root, "input"))
    os.makedirs(os.path.join(root, "working"))
    os.symlink(os.path.abspath(data_root), os.path.join(root, "input", comp.slug))
    if dataset is not None:
        shutil.copytree(dataset, os.path.join(root, "input", dataset_slug))
    return root


def run_kernel(script: str, root: str, python: str, env: dict, log_path: str) -> tuple[int, float]:
    t0 = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        r = subprocess.run([python, os.path.abspath(script)], cwd=os.path.join(root, "working"), stdout=log,
                           stderr=subprocess.STDOUT, env={**env, "KAGGLE_KIT_ROOT": root})
    return r.returncode, time.time() - t0


def log_tail(path: str, n: int = LOG_TAIL) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return "".join(f.readlines()[-n:])


def _kernel_error(path: str) -> str:
    """The kernel's own one-line error (the kit prints 'error: ...'), else its last line."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [ln.rstrip() for ln in f if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    return (errors[-1] if errors else lines[-1] if lines else "(no output)")


# ------------------------------------------------------------------------------------- comparing

def _fmt(x: float) -> str:
    return f"{x:.3g}"


def compare(kernel_csv: str, local_csv: str, id_column: str, tolerance: float) -> str:
    """A line saying how the kernel's submission equals the local one; KitError(exit 1) naming the
    first differing rows and columns when it does not."""
    with open(kernel_csv, "rb") as f:
        kb = f.read()
    with open(local_csv, "rb") as f:
        lb = f.read()
    k = pd.read_csv(kernel_csv, dtype=str, keep_default_na=False)
    l = pd.read_csv(local_csv, dtype=str, keep_default_na=False)
    if kb == lb:
        return f"check: kernel submission.csv equals local prediction ({len(l)} rows, byte for byte)"
    head = "check: kernel submission.csv differs from local prediction"
    if list(k.columns) != list(l.columns):
        i = next((i for i, (a, b) in enumerate(zip(k.columns, l.columns)) if a != b), min(len(k.columns), len(l.columns)))
        raise KitError(f"{head}: its columns differ from column {i + 1} on (kernel "
                       f"{list(k.columns[i:i + 3])}, local {list(l.columns[i:i + 3])}; {len(k.columns)} vs "
                       f"{len(l.columns)} columns)", exit_code=1)
    kid, lid = list(k[id_column]), list(l[id_column])
    if kid != lid:
        i = next((i for i, (a, b) in enumerate(zip(kid, lid)) if a != b), min(len(kid), len(lid)))
        only_k, only_l = sorted(set(kid) - set(lid)), sorted(set(lid) - set(kid))
        raise KitError(f"{head}: its rows differ from row {i + 1} on ({id_column} kernel "
                       f"{kid[i] if i < len(kid) else '(none)'}, local {lid[i] if i < len(lid) else '(none)'}); "
                       f"{len(kid)} vs {len(lid)} rows, {len(only_k)} {id_column}(s) only in the kernel's "
                       f"{only_k[:SHOWN]}, {len(only_l)} only in the local one {only_l[:SHOWN]}", exit_code=1)
    numeric, text = [], []
    for c in l.columns:
        if c == id_column:
            continue
        kn, ln = pd.to_numeric(k[c], errors="coerce"), pd.to_numeric(l[c], errors="coerce")
        (numeric if kn.notna().all() and ln.notna().all() else text).append(c)
    bad = np.zeros(len(l), dtype=bool)
    notes, worst = [], None
    if numeric:
        kn = k[numeric].apply(pd.to_numeric).to_numpy(dtype=np.float64)
        ln = l[numeric].apply(pd.to_numeric).to_numpy(dtype=np.float64)
        diff = np.abs(kn - ln)
        r, c = np.unravel_index(int(np.argmax(diff)), diff.shape)
        worst = (float(diff[r, c]), lid[r], numeric[c])
        over = diff > tolerance
        bad |= over.any(axis=1)
        for i in np.flatnonzero(over.any(axis=1))[:SHOWN]:
            cols = [numeric[j] for j in np.flatnonzero(over[i])]
            notes.append(f"{lid[i]} ({', '.join(cols[:3])}{', ...' if len(cols) > 3 else ''}: kernel "
                         f"{k.at[i, cols[0]]}, local {l.at[i, cols[0]]})")
    for c in text:
        differ = (k[c] != l[c]).to_numpy()
        for i in np.flatnonzero(differ & ~bad)[:max(0, SHOWN - len(notes))]:
            notes.append(f"{lid[i]} ({c}: kernel '{k.at[i, c]}', local '{l.at[i, c]}')")
        bad |= differ
    max_note = (f"max abs score difference {_fmt(worst[0])} ({id_column} {worst[1]}, column {worst[2]}), "
                f"tolerance {_fmt(tolerance)}") if worst else ""
    if bad.any():
        raise KitError(f"{head}: {int(bad.sum())} of {len(l)} rows differ" + (f"; {max_note}" if max_note else "") +
                       f"; first differing {id_column}s: " + "; ".join(notes), exit_code=1)
    return (f"check: kernel submission.csv equals local prediction ({len(l)} rows; scores within tolerance: "
            f"{max_note})")


# ------------------------------------------------------------------------------------- the command

def add_arguments(p) -> None:
    p.add_argument("--kind", choices=["predict", "train"], default="predict",
                   help="check the inference kernel (against local prediction) or the training kernel")
    p.add_argument("--kaggle-versions", action="store_true",
                   help=f"run the kernel in a virtual environment with the package versions of Kaggle's image "
                        f"({os.path.relpath(VERSIONS_FILE, REPO)}; built once under ~/.cache/kaggle-kit/)")
    p.add_argument("--data-dir", default=None, help="competition data folder (default: as src.cv finds it)")
    p.add_argument("--work-dir", default="work", help="where the runs are, for local prediction (default: work)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest absolute score difference still equal (FAT2019's scores; default 1e-4)")


def cmd_check(comp: Competition, args) -> int:
    from . import kernels

    t0 = time.time()
    target = kernels.folder(comp.name, "build" if args.kind == "predict" else "build-train")
    script = os.path.join(target, kernels.CODE_FILE)
    if not os.path.exists(script):
        kind = "" if args.kind == "predict" else " --kind train"
        raise KitError(f"{script} is missing: run python -m src.kernels build {comp.name}{kind} first")
    info = build_info(script)
    if info.get("name") != comp.name or info.get("kind") != args.kind:
        raise KitError(f"{script} was built for {info.get('name')} {info.get('kind')}, not {comp.name} {args.kind}: "
                       f"rebuild it")
    dataset = dataset_slug = manifest = None
    if args.kind == "predict":
        manifest_path, sha1 = kernels.staged_manifest(comp)
        if info.get("manifest_sha1") != sha1:
            raise KitError(f"{script} was built for another models dataset (manifest sha1 "
                           f"{info.get('manifest_sha1')}) than the one staged now in {os.path.dirname(manifest_path)} "
                           f"(sha1 {sha1}); Kaggle would refuse it too: rebuild it with python -m src.kernels build "
                           f"{comp.name}", exit_code=1)
        dataset = os.path.dirname(manifest_path)
        manifest = atomic.read_json(manifest_path)
        meta = atomic.read_json(os.path.join(dataset, "dataset-metadata.json")) if os.path.exists(
            os.path.join(dataset, "dataset-metadata.json")) else {}
        dataset_slug = (meta.get("id") or f"x/kit-{comp.name}-models").split("/")[-1]
    data_root = comp.open_data(args.data_dir).root
    python = kaggle_python() if args.kaggle_versions else sys.executable
    out = kernels.folder(comp.name, "check")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    log_path = os.path.join(out, "kernel.log")
    with tempfile.TemporaryDirectory(prefix="kit-check-") as top:
        root = fake_root(top, comp, data_root, dataset, dataset_slug)
        env = hide_kit(top, python)
        print(f"check: running {script} (kit {info.get('kit_version')}, built {info.get('built')}) with {python} "
              f"({_tf_versions(python)}{', Kaggle versions' if args.kaggle_versions else ''})", flush=True)
        print(f"check: fake Kaggle root {root}: input/{comp.slug} -> {os.path.abspath(data_root)}" +
              (f", input/{dataset_slug}/ = copy of {dataset}" if dataset else "") +
              "; working/ as cwd; offline; the installed kit hidden", flush=True)
        rc, seconds = run_kernel(script, root, python, env, log_path)
        if rc != 0:
            print(f"check: the kernel failed (exit {rc}) after {seconds:.0f}s; the last lines of its log "
                  f"({log_path}):\n{log_tail(log_path)}", end="", flush=True)
            raise KitError(f"the kernel failed (exit {rc}): {_kernel_error(log_path)}", exit_code=1)
        print(f"check: the kernel finished in {seconds:.0f}s (log: {log_path})", flush=True)
        working = os.path.join(root, "working")
        sub = os.path.join(working, "submission.csv")
        if not os.path.exists(sub):
            raise KitError(f"the kernel exited 0 but wrote no {sub} (log: {log_path})", exit_code=1)
        kernel_csv = os.path.join(out, "kernel-submission.csv")
        shutil.copyfile(sub, kernel_csv)
        if args.kind == "train":
            line = _check_training(comp, working, root, kernel_csv)
        else:
            line = _check_predict(comp, args, manifest, out, kernel_csv)
    print(line, flush=True)
    print(f"check: done in {time.time() - t0:.0f}s ({out}/: kernel.log, kernel-submission.csv"
          f"{', local-submission.csv' if args.kind == 'predict' else ''})", flush=True)
    return 0


def _check_predict(comp: Competition, args, manifest: dict, out: str, kernel_csv: str) -> str:
    from ..kit import predict

    local_csv = os.path.join(out, "local-submission.csv")
    argv = ["--work-dir", args.work_dir, "--models", ",".join(manifest["runs"]), "--out", local_csv]
    argv += ["--data-dir", args.data_dir] if args.data_dir else []
    fold_mean = (manifest.get("blend") or {}).get("fold_mean")
    argv += ["--fold-mean", fold_mean] if fold_mean in ("mean", "geo") else []
    print(f"check: local prediction: python -m {comp.modules['predict']} {' '.join(argv)}", flush=True)
    with contextlib.redirect_stdout(sys.stderr):       # its progress is not the check's result
        rc = predict.main(comp, argv)
    if rc != 0:
        raise KitError(f"local prediction failed (exit {rc}): python -m {comp.modules['predict']} {' '.join(argv)}")
    return compare(kernel_csv, local_csv, comp.id_column, args.tolerance)


def _check_training(comp: Competition, working: str, root: str, kernel_csv: str) -> str:
    from .runtime import competition_data

    folds: dict[str, int] = {}
    for fold_dir in sorted({os.path.dirname(w) for w in glob.glob(os.path.join(working, "work", "*", "*", "fold*",
                                                                                "*.weights.h5"))}):
        run = os.path.basename(os.path.dirname(fold_dir))
        folds[run] = folds.get(run, 0) + 1
    if not folds:
        raise KitError(f"the training kernel finished but wrote no trained fold (no *.weights.h5 under "
                       f"{working}/work/*/RUN/foldK/)", exit_code=1)
    with contextlib.redirect_stdout(io.StringIO()):
        ids = comp.open_data(competition_data(root, comp.slug)).sample_ids()
    got = list(pd.read_csv(kernel_csv, dtype=str, keep_default_na=False)[comp.id_column])
    if got != list(ids):
        raise KitError(f"the training kernel's submission.csv has {len(got)} rows, not the sample submission's "
                       f"{len(ids)} ids in order", exit_code=1)
    runs = ", ".join(f"{r} ({n} fold{'s' if n > 1 else ''})" for r, n in folds.items())
    return f"check: the training kernel finished, wrote runs {runs} and a submission.csv ({len(got)} rows)"
