"""What a built kernel runs on Kaggle: find the models dataset by its manifest, rebuild and check
every fold, predict with the kit's own code, write /kaggle/working/submission.csv.

Paths: the root is /kaggle, or $KAGGLE_KIT_ROOT (tests lay out a fake one): competition data in
<root>/input/<competition>/, the models dataset wherever under <root>/input/ its kit-manifest.json
is (mount names change: it is searched for, never named), outputs in <root>/working/. Every fold's
outputs on the stored reference inputs are recomputed after loading; any difference beyond float
tolerance stops the kernel before a submission is written, naming the run and fold.
"""
from __future__ import annotations

import contextlib
import glob
import os
import sys
import time

import numpy as np

from ..kit import runs
from ..kit.atomic import read_json
from ..kit.errors import KitError, cli, warn

MANIFEST = "kit-manifest.json"
TOLERANCE = 2e-3          # sigmoid/softmax outputs; a silently wrong load differs by far more


def kaggle_root() -> str:
    return os.environ.get("KAGGLE_KIT_ROOT", "/kaggle")


@contextlib.contextmanager
def stage(what: str):
    """Progress and timing per stage, into the kernel's log."""
    t0 = time.time()
    print(f"kernel: {what} ...", flush=True)
    yield
    print(f"kernel: {what} done in {time.time() - t0:.1f}s", flush=True)


def find_manifest(input_root: str, competition: str) -> tuple[str, dict]:
    """(folder, manifest) of the models dataset for `competition` under the input root."""
    patterns = [os.path.join(input_root, "*", MANIFEST), os.path.join(input_root, "*", "*", MANIFEST),
                os.path.join(input_root, "*", "*", "*", MANIFEST)]
    found = sorted({p for pat in patterns for p in glob.glob(pat)})
    mine = [(os.path.dirname(p), m) for p in found if (m := read_json(p)).get("competition") == competition]
    if not mine:
        raise KitError(f"no models dataset: looked for {MANIFEST} with competition '{competition}' in "
                       f"{input_root}/*/ (and two levels below); found {len(found)} manifest(s) "
                       f"{[os.path.relpath(p, input_root) for p in found]}. Attach the dataset made by "
                       f"`python -m src.kernels dataset` to this kernel", exit_code=1)
    if len(mine) > 1:
        warn(f"{len(mine)} models datasets for {competition}; using the newest ({mine[-1][0]})")
    return max(mine, key=lambda t: t[1].get("created", ""))


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
        got = model.predict(ref["x"], verbose=0)
        diff = float(np.abs(got - ref["y"]).max())
        if not np.isfinite(diff) or diff > TOLERANCE:
            raise KitError(f"run {fold.run} fold {fold.fold}: after loading, its outputs on the reference inputs "
                           f"differ from the stored ones by {diff:.3g} (tolerance {TOLERANCE}): the weights did not "
                           f"load as trained; refusing to write a submission", exit_code=1)
        print(f"kernel: {fold.run} fold {fold.fold} loaded, reference outputs match (max diff {diff:.1e})", flush=True)
        return model
    return load_and_check


def _predict_freesound(root: str) -> None:
    from ..fat2019 import data as fat_data
    from .. import predict
    from ..fat2019.config import COMPETITION, FatConfig
    from ..kit import configio
    from ..fat2019.submission import write_submission

    with stage("finding the data and the models"):
        folder, manifest = find_manifest(os.path.join(root, "input"), COMPETITION)
        found = manifest_runs(folder, manifest)
        data = fat_data.load(FatConfig(data_dir=os.path.join(root, "input", COMPETITION)))
        if sorted(manifest["labels"]) != sorted(data.labels):
            raise KitError(f"{folder}/{MANIFEST}: the models know other labels than {data.root}/sample_submission.csv",
                           exit_code=1)
        print(f"kernel: {len(found)} run(s), {sum(map(len, found.values()))} fold(s) from {folder}", flush=True)
        fnames = data.sample_submission["fname"].tolist()
        predict.check_test_files(data, fnames, allow_missing=True)
    blend = manifest.get("blend") or {}
    with stage(f"features of {len(fnames)} test clips"):
        predict.test_features([configio.from_dict(FatConfig, f.config) for folds in found.values() for f in folds],
                              data, fnames)
    with stage(f"scoring {len(fnames)} test clips with {sum(map(len, found.values()))} fold(s)"):
        scores, failed = predict.scores_by_clip(found, data, fnames, None, None, blend.get("weights"),
                                                blend.get("fold_mean") or "mean", 256, load=checked(predict.load_model))
    first = next(iter(found.values()))[0]                 # label frequencies, aligned by name
    prior = dict(zip(first.labels, first.config["label_prior"]))
    for f, why in sorted(failed.items()):
        warn(f"{f}: {why}; its row gets the training label frequencies")
        scores[f] = np.array([prior.get(label, 0.0) for label in data.labels])
    out = os.path.join(root, "working", "submission.csv")
    write_submission(out, data.sample_submission, data.labels, scores)
    print(f"kernel: wrote {out} ({len(fnames)} clips, {len(failed)} unreadable or missing)", flush=True)


def _predict_quickdraw(root: str) -> None:
    from ..quickdraw import data, predict
    from ..quickdraw.config import COMPETITION

    with stage("finding the data and the models"):
        folder, manifest = find_manifest(os.path.join(root, "input"), COMPETITION)
        found = manifest_runs(folder, manifest)
        data_dir = os.path.join(root, "input", COMPETITION)
        categories = data.list_categories(data_dir)
        unknown = [w for w in manifest["labels"] if w not in categories]
        if unknown:
            raise KitError(f"{folder}/{MANIFEST}: the models know categories the data has not: {unknown[:5]}",
                           exit_code=1)
        print(f"kernel: {len(found)} run(s), {sum(map(len, found.values()))} fold(s) from {folder}", flush=True)
    blend = manifest.get("blend") or {}
    out = os.path.join(root, "working", "submission.csv")
    with stage("predicting the test drawings"):
        loader = checked(lambda f: predict.load_model(f)[0])
        predict.predict_test(found, data_dir, manifest["labels"], blend.get("weights"), blend.get("fold_mean") or "mean",
                             out, load=lambda f: (loader(f), predict.fold_config(f)))
    print(f"kernel: wrote {out}", flush=True)


def _train(name: str, root: str, build: dict) -> None:
    """Train every fold with the build's flags on the competition data, then predict; the runs
    stay in <root>/working/work/ (the kernel's output)."""
    import subprocess

    from ..kit import foldfile

    os.chdir(os.path.join(root, "working"))
    if name == "freesound":
        from ..fat2019 import data as fat_data
        from ..fat2019.config import COMPETITION, FatConfig

        data_dir = os.path.join(root, "input", COMPETITION)
        if build.get("folds_csv"):
            path = foldfile.folds_path(fat_data.load(FatConfig(data_dir=data_dir)).name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(build["folds_csv"])
        cmds = [["src.cv", "--fold", "all"], ["src.predict"]]
    else:
        from ..quickdraw.config import COMPETITION

        data_dir = os.path.join(root, "input", COMPETITION)
        cmds = [["src.quickdraw.cv", "--fold", "all"], ["src.quickdraw.predict", "--out", "submission.csv"]]
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    for i, cmd in enumerate(cmds):
        full = [sys.executable, "-m", cmd[0], "--data-dir", data_dir, *cmd[1:], *(build.get("train_args", []) if i == 0 else [])]
        if cmd[0] == "src.predict":
            full += ["--out", "submission.csv"]
        with stage(" ".join(full[2:])):
            if subprocess.run(full, env=env).returncode != 0:
                raise KitError(f"{' '.join(full[2:])} failed (see above)", exit_code=1)


@cli
def main(name: str, kind: str = "predict", build: dict | None = None) -> int:
    root = kaggle_root()
    t0 = time.time()
    print(f"kernel: {name} {kind}, root {root}", flush=True)
    if kind == "train":
        _train(name, root, build or {})
    elif name == "freesound":
        _predict_freesound(root)
    else:
        _predict_quickdraw(root)
    print(f"kernel: finished in {time.time() - t0:.0f}s", flush=True)
    return 0
