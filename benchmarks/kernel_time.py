"""Run time of the built inference kernel, measured here and extrapolated to the competition's test set.

    python -m benchmarks.kernel_time freesound --data-dir /tmp/fat-real --work-dir /tmp/abl/work --runs weighted
    python -m benchmarks.kernel_time quickdraw --data-dir /tmp/qd-real --work-dir work

Stages the models (`src.kernels dataset --dry-run`) and builds the kernel in a scratch folder, runs
the built script as Kaggle would (a fake /kaggle root via KAGGLE_KIT_ROOT: the data mounted as the
competition, the staged dataset under another name), reads each stage's time from the kernel's own
log, and scales the stages that grow with the test set linearly to 3,361 clips (FAT2019) or 112,199
drawings (Quick Draw). The model stage is divided by --gpu-speedup, an assumption the user states;
feature extraction stays on the CPU in a kernel too.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL = {"freesound": ("freesound-audio-tagging-2019", 3361, "clips"),
        "quickdraw": ("quickdraw-doodle-recognition", 112_199, "drawings")}
STAGE = re.compile(r"^kernel: (.+) done in ([\d.]+)s$", re.M)


def scale(stages: dict[str, float], n_here: int, n_full: int, gpu_speedup: float) -> list[tuple[str, float, float]]:
    """(stage, seconds here, seconds estimated on the full test set) for each stage of the kernel's log.

    Stages naming the test items grow linearly; the model's ("scoring"/"predicting") is divided by
    the GPU speed-up; the rest (unpacking, finding the data, reference checks) is fixed."""
    rows = []
    for what, s in stages.items():
        grows = "test" in what
        full = s * n_full / n_here if grows else s
        if grows and ("scoring" in what or "predicting" in what):
            full /= gpu_speedup
        rows.append((what, s, full))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.kernel_time", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=sorted(FULL))
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--work-dir", default="work")
    ap.add_argument("--runs", default=None, help="runs to ship (default: every finished one)")
    ap.add_argument("--gpu-speedup", type=float, default=10.0,
                    help="assumed speed-up of the model stage on Kaggle's GPU over this CPU (default 10)")
    args = ap.parse_args(argv)
    competition, n_full, unit = FULL[args.name]
    data_dir, work_dir = os.path.abspath(args.data_dir), os.path.abspath(args.work_dir)
    scratch = tempfile.mkdtemp(prefix="kernel-time-")
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    if os.path.isdir("folds"):                 # the runs are matched to the folds files where they were trained
        os.symlink(os.path.abspath("folds"), os.path.join(scratch, "folds"))
    demo = os.path.basename(data_dir).startswith("demo-")
    if demo:        # the built-in demo is found as ./data/demo-*, and named by its content, as cv named it
        os.symlink(os.path.dirname(data_dir), os.path.join(scratch, "data"))
    try:
        for step in ("dataset", "build"):
            cmd = [sys.executable, "-m", "src.kernels", step, args.name, "--owner", "benchmark", "--work-dir", work_dir]
            cmd += ([] if demo else ["--data-dir", data_dir]) + (["--dry-run"] if step == "dataset" else [])
            cmd += ["--runs", args.runs] if args.runs and step == "dataset" else []
            subprocess.run(cmd, cwd=scratch, env=env, check=True)
        root = os.path.join(scratch, "kaggle")
        os.makedirs(os.path.join(root, "input"))
        os.makedirs(os.path.join(root, "working"))
        os.symlink(data_dir, os.path.join(root, "input", competition))
        shutil.copytree(os.path.join(scratch, "kernels", args.name, "dataset"), os.path.join(root, "input", "models"))
        hidden = {k: v for k, v in env.items() if k != "PYTHONPATH"}        # the kernel carries its own kit
        t0 = time.time()
        r = subprocess.run([sys.executable, os.path.join(scratch, "kernels", args.name, "build", "kernel.py")],
                           cwd=os.path.join(root, "working"), env={**hidden, "KAGGLE_KIT_ROOT": root},
                           capture_output=True, text=True)
        wall = time.time() - t0
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:], sep="\n", file=sys.stderr)
            return 1
        n_here = sum(1 for _ in open(os.path.join(root, "working", "submission.csv"))) - 1
        rows = scale({w: float(s) for w, s in STAGE.findall(r.stdout)}, n_here, n_full, args.gpu_speedup)
        fixed = wall - sum(s for _, s, _ in rows)                 # interpreter start, unpacking the kit
        total = fixed + sum(f for _, _, f in rows)
        print(f"| stage | here ({n_here} {unit}) | estimated, {n_full:,} {unit} |\n|---|---|---|")
        for what, s, f in rows:
            print(f"| {what} | {s:.1f} s | {f / 60:.1f} min |")
        print(f"| start-up and unpacking | {fixed:.1f} s | {fixed / 60:.1f} min |")
        print(f"| **whole kernel** | {wall:.1f} s | **{total / 60:.0f} min** (model stage / {args.gpu_speedup:g}) |")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
