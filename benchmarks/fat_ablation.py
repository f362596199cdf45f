"""FAT2019 ablation on the real recordings: every row a full 5-fold run, compared on out-of-fold lwlrap.

    python ../shared/data/make_fat_layout.py --out /tmp/fat-real
    python -m benchmarks.fat_ablation --data-dir /tmp/fat-real [--rows cnn128,none,...] [--work-dir work]

Each row runs `python -m src.cv --data-dir DIR --fold all --name ROW --resume <its flags>` (finished
folds are kept, so an interrupted ablation continues), then prints and writes
benchmarks/ablation.md: the row's command, out-of-fold lwlrap, epochs and wall time. The window
aggregation rows re-score the best row's validation clips with each aggregation (no training).
Test answers are never read here: test lwlrap comes from `src.predict` + `src.score` for the
rows chosen on these out-of-fold scores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# Width 16: a quarter of the width-32 CNN's compute (0.58 s against 2.57 s a batch of 32 on a
# 2-core CPU), so each 5-fold row takes about 25 minutes rather than 75.
COMMON = ["--n-mels", "64", "--width", "16", "--eval-hop", "1.0", "--patience", "20", "--spec-augment"]
NOISY_ROWS = ("none", "all", "weighted", "lsoft", "finetune")
ROWS = {     # name: (what, src.cv flags; None: built on the best noisy row)
    "cnn32": ("the CNN as it stood: width 32, 64 mels, --noisy weighted (the README's best so far)",
              ["--n-mels", "64", "--width", "32", "--eval-hop", "1.0", "--patience", "20", "--spec-augment",
               "--noisy", "weighted"]),
    "none": ("width 16, curated only", COMMON + ["--noisy", "none"]),
    "all": ("width 16, --noisy all", COMMON + ["--noisy", "all"]),
    "weighted": ("width 16, --noisy weighted (0.5, bce)", COMMON + ["--noisy", "weighted"]),
    "lsoft": ("width 16, --noisy weighted --noisy-loss lsoft", COMMON + ["--noisy", "weighted", "--noisy-loss", "lsoft"]),
    "finetune": ("width 16, --noisy finetune (last 10 epochs curated only)", COMMON + ["--noisy", "finetune"]),
    "mixup": ("best noisy row + mixup 0.4", None),
    "nospec": ("best noisy row without SpecAugment", None),
    "e80": ("best noisy row without SpecAugment, 80 epochs (the 40-epoch runs mostly ended at the cap)", None),
    "w32": ("e80 at width 32 (about 4x the compute)", None),
    "sep32": ("e80 at width 32 with depthwise-separable convolutions (--conv separable: 10 GFLOP a step "
              "against w32's 80)", None),
    "sep48": ("e80 at width 48, depthwise-separable (22 GFLOP a step: under a third of w32's)", None),
    "mix": ("e80 with mix-and-union (--mix-clips 0.5): half the training crops are two clips mixed, "
            "labels the union", None),
    "w32mix": ("w32 with mix-and-union (--mix-clips 0.5): the default width with the test's kind of mixtures "
               "in training", None),
    "vgg19": ("VGG19, body frozen at random weights (--weights none): NOT transfer learning; 12 epochs or "
                        "4 minutes a fold on a CPU; without SpecAugment", None),
}


def cv_flags(name: str, best: list[str]) -> list[str]:
    what, flags = ROWS[name]
    if flags is not None:
        return flags
    nospec = [f for f in best if f != "--spec-augment"] + ["--no-spec-augment"]
    return {"mixup": best + ["--mixup-alpha", "0.4"], "nospec": nospec, "e80": nospec + ["--epochs", "80"],
            "w32": nospec + ["--epochs", "80", "--width", "32"],
            "mix": nospec + ["--epochs", "80", "--mix-clips", "0.5"],
            "w32mix": nospec + ["--epochs", "80", "--width", "32", "--mix-clips", "0.5"],
            # without XLA: TensorFlow's CPU depthwise convolutions run ~4x slower under it (benchmarks.step_time)
            "sep32": nospec + ["--epochs", "80", "--width", "32", "--conv", "separable", "--no-jit"],
            "sep48": nospec + ["--epochs", "80", "--width", "48", "--conv", "separable", "--no-jit"],
            "vgg19": nospec + ["--model", "vgg19", "--weights", "none", "--epochs", "12", "--patience", "6",
                               "--batch-size", "16", "--max-minutes", "4"]}[name]


def oof_score(work: str, dataset: str, run: str, data) -> float:
    from src.fat2019 import data as fat_data
    from src.kit import runs
    from src.kit.metrics import lwlrap

    folds = [runs.Fold(run, k, runs.fold_dir(work, dataset, run, k), {}, {}) for k in range(5)]
    oof = runs.read_oof(folds)
    return lwlrap(fat_data.truth(data, oof.index.tolist()), oof[data.labels].to_numpy())


def rescore_windows(work: str, dataset: str, run: str, data) -> dict[str, float]:
    """Out-of-fold lwlrap of `run` with each window aggregation and two denser window grids: its
    folds re-score their validation clips (the same models, no training)."""
    import dataclasses

    import numpy as np

    from src.fat2019 import data as fat_data, features, folds as fat_folds
    from src.fat2019.config import FatConfig
    from src.kit import configio, runs
    from src.kit.atomic import read_json
    from src.kit.metrics import lwlrap
    from src.fat2019.competition import load_model
    from src.fat2019.infer import predict_clips

    out = {}
    preds = {agg: [] for agg in ("mean", "max", "meanmax", "mean, --tta 3", "mean, --eval-hop 0.5")}
    names = []
    for k in range(5):
        path = runs.fold_dir(work, dataset, run, k)
        config = read_json(os.path.join(path, "config.json"))
        cfg = configio.from_dict(FatConfig, config)
        fold_of, _ = fat_folds.load_folds(data, cfg)
        val = [f for f in data.curated["fname"] if fold_of[f] == k]
        feats, _ = features.extract(cfg, data.name, "train_curated", data.audio_dir("train_curated"), val)
        model = load_model(runs.Fold(run, k, path, config, {}))
        names += feats.fnames
        for agg in ("mean", "max", "meanmax"):
            preds[agg].append(predict_clips(model, feats, cfg, window_agg=agg))
        # test-time crops: three shifted window grids, and windows at half the hop
        preds["mean, --tta 3"].append(predict_clips(model, feats, cfg, window_agg="mean", tta=3))
        preds["mean, --eval-hop 0.5"].append(predict_clips(model, feats, dataclasses.replace(cfg, eval_hop=0.5),
                                                            window_agg="mean"))
    y = fat_data.truth(data, names)
    for agg, parts in preds.items():
        out[agg] = lwlrap(y, np.concatenate(parts))
    return out


def _finished(args, data, run: str) -> bool:
    return all(os.path.exists(os.path.join(args.work_dir, data.name, run, f"fold{k}", "metrics.json")) for k in range(5))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fat_ablation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="/tmp/fat-real")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    ap.add_argument("--best", default=None, help="the noisy row the mixup/nospec/vgg19 rows build on "
                                                  "(default: the best noisy row by out-of-fold lwlrap so far)")
    ap.add_argument("--work-dir", default="work")
    ap.add_argument("--out", default=os.path.join("benchmarks", "ablation.md"))
    args = ap.parse_args(argv)
    from src.fat2019 import data as fat_data
    from src.fat2019.config import FatConfig

    data = fat_data.load(FatConfig(data_dir=args.data_dir))
    lines = ["| row | what | command (`python -m src.cv --data-dir DIR --fold all --name ROW ...`) | out-of-fold lwlrap "
             "| epochs run (folds) | training s (5 folds) | GFLOP a training step |", "|---|---|---|---|---|---|---|"]
    results = {}
    for name in args.rows.split(","):
        done = {n: oof_score(args.work_dir, data.name, n, data) for n in NOISY_ROWS if _finished(args, data, n)}
        best_name = args.best or (max(done, key=done.get) if done else "weighted")
        flags = cv_flags(name, ROWS[best_name][1])
        t0 = time.time()
        cmd = [sys.executable, "-m", "src.cv", "--data-dir", args.data_dir, "--fold", "all", "--name", name,
               "--work-dir", args.work_dir, "--resume", *flags]
        print("ablation:", " ".join(cmd[1:]), flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - t0
        if r.returncode != 0:
            print(r.stderr[-3000:], file=sys.stderr)
            lines.append(f"| {name} | {ROWS[name][0]} | `{' '.join(flags)}` | failed | | {wall:.0f} | |")
            continue
        score = oof_score(args.work_dir, data.name, name, data)
        metrics = [json.load(open(os.path.join(args.work_dir, data.name, name, f"fold{k}", "metrics.json")))
                   for k in range(5)]
        epochs = [m["epochs_run"] for m in metrics]
        train_s = sum(m["train_seconds"] for m in metrics)    # the folds' own clocks: right for resumed rows too
        results[name] = score
        lines.append(f"| {name} | {ROWS[name][0]}{f' (on {best_name})' if ROWS[name][1] is None else ''} | "
                     f"`{' '.join(flags)}` | {score:.4f} | {'/'.join(map(str, epochs))} "
                     f"| {train_s:.0f} | {metrics[0].get('gflop_per_step', '')} |")
        print(lines[-1], flush=True)
    if results:
        top = max((n for n in results if n not in ("vgg19", "cnn32")), key=results.get, default=None)
        if top:
            for agg, s in rescore_windows(args.work_dir, data.name, top, data).items():
                flag = agg.split(", ")[1] if ", " in agg else f"--window-agg {agg}"
                lines.append(f"| {top} {flag} | windows of {top}'s folds re-scored ({agg}) | "
                             f"`{'src.cv' if 'eval-hop' in flag else 'src.predict'} {flag}` | {s:.4f} | | | |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.out, "w") as f:
        f.write(f"Data: {args.data_dir} ({data.name}); {time.strftime('%Y-%m-%d')}; {os.cpu_count()} CPUs.\n\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
