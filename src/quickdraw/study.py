"""Class-count study: every model at every number of categories, one validation split per size.

    python -m src.quickdraw.study --classes 8,16,32                       # demo data (8 categories max)
    python -m src.quickdraw.study --data-dir /tmp/qd-real --classes 8,16,32 --max-minutes 2

For each size N the categories are `--classes N`'s fixed seeded choice (a smaller N's categories
are a subset of a larger N's); each model trains on folds 1..K-1 of folds/<dataset>.csv
and is scored on fold 0 (one split per size, not full cross-validation). Every config flag applies
to every run. Writes WORK_DIR/<dataset>/study/: results.csv, study.md (table of top-1
accuracy and MAP@3 per model and size) and study.png; runs in study/c<N>/<model>/fold0/.
"""
from __future__ import annotations

import argparse
import dataclasses
import os

import numpy as np
import pandas as pd

from ..kit import atomic, configio
from ..kit.cv import epochs_rule
from ..kit.errors import KitError, cli, list_some
from . import data
from .config import MODELS, QDConfig
from .data import TrainSet
from .train import run_fold

FOLD = 0


def _gflop(v) -> str:
    """A study's GFLOP cell: blank for results written before folds counted them."""
    return "" if v is None or pd.isna(v) else f"{v:.2f}"


def markdown(df, dataset: str, n_folds: int) -> str:
    sizes = sorted(df["classes"].unique())
    head = "| model | " + " | ".join(f"{n} classes: top-1 / MAP@3" for n in sizes) + " |"
    sep = "|---|" + "---|" * len(sizes)
    lines = [head, sep]
    for m in [m for m in MODELS if m in set(df["model"])]:
        cells = []
        for n in sizes:
            r = df[(df["model"] == m) & (df["classes"] == n)]
            cells.append("—" if r.empty else f"{r.iloc[0]['val_top1']:.3f} / {r.iloc[0]['val_map3']:.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    detail = ["", "| classes | model | train | val | top-1 | MAP@3 | best epoch | epochs run | train s | GFLOP a step |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in df.iterrows():
        detail.append(f"| {r['classes']} | {r['model']} | {r['n_train']} | {r['n_val']} | {r['val_top1']:.3f} "
                      f"| {r['val_map3']:.3f} | {r['best_epoch']} | {r['epochs_run']} | {r['train_seconds']:.0f} "
                      f"| {_gflop(r.get('gflop_per_step'))} |")
    note = (f"\nDataset '{dataset}'; validation = fold {FOLD} of {n_folds} stratified folds "
            f"(one split per size, not full cross-validation).\n")
    return "\n".join(lines + detail) + "\n" + note


def plot(df, path: str) -> None:
    import matplotlib  # half a second to import: paid only by the commands that plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, col, title in ((axes[0], "val_top1", "top-1 accuracy"), (axes[1], "val_map3", "MAP@3")):
        for m in [m for m in MODELS if m in set(df["model"])]:
            d = df[df["model"] == m].sort_values("classes")
            ax.plot(d["classes"], d[col], marker="o", label=m)
        ax.set_xscale("log", base=2)
        sizes = sorted(df["classes"].unique())
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.set_xlabel("categories")
        ax.set_title(f"validation {title}")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[1].legend()
    fig.tight_layout()
    with atomic.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def subset(ts, folds, words: list[str]):
    """The drawings of `words` (a subset of ts.words), labels renumbered."""

    remap = np.full(len(ts.words), -1)
    remap[[ts.words.index(w) for w in words]] = np.arange(len(words))
    idx = np.nonzero(remap[ts.y] >= 0)[0]
    sub = ts.take(idx)
    return TrainSet(sub.ink, remap[sub.y].astype(np.int32), sub.key_ids, list(words)), folds[idx]


@cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.quickdraw.study", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--classes", dest="sizes", default="8,16,32", help="comma list of category counts")
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of models (default: all four)")
    configio.add_config_args(ap, QDConfig, skip=("classes", "model"))
    args = ap.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        raise KitError(f"--classes {args.sizes!r}: give numbers like 8,16,32") from None
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models or not sizes:
        raise KitError(f"--models: unknown {list_some(unknown)}; choose from {', '.join(MODELS)}" if unknown
                       else "--models and --classes need at least one entry")
    base, _ = epochs_rule(configio.from_args(QDConfig, args), configio.given(QDConfig, args))   # --epochs obeyed

    data_dir, dataset = data.resolve(base.data_dir)
    all_words = data.list_categories(data_dir)
    if sizes[-1] > len(all_words):
        raise KitError(f"--classes {sizes[-1]}: the data has {len(all_words)} categories")
    out = os.path.join(base.work_dir, dataset, "study")
    rows = []
    # read the largest set once (folds made over it); each smaller size is a subset of it
    big = data.load_train(data_dir, sizes[-1], base.per_class, base.seed, base.chunk_size)
    big_folds, sha1 = data.load_folds(dataset, big, base.n_folds, base.seed)
    for n in sizes:
        words = data.choose_classes(all_words, n, base.seed)
        ts, folds = subset(big, big_folds, words)
        for m in models:
            cfg = dataclasses.replace(base, classes=n, model=m)
            print(f"study: {n} categories, {m}", flush=True)
            r = run_fold(cfg, ts, folds, sha1, FOLD, os.path.join(out, f"c{n}", m, f"fold{FOLD}"), dataset,
                         restart=True)        # a study re-run retrains every cell
            rows.append({"classes": n, **{k: r[k] for k in ("model", "val_top1", "val_map3", "best_epoch",
                                                             "epochs_run", "n_train", "n_val", "train_seconds")},
                         "gflop_per_step": r.get("gflop_per_step")})
            df = pd.DataFrame(rows)
            atomic.write_csv(os.path.join(out, "results.csv"), df)   # partial results survive a kill
    n_folds = int(folds.max()) + 1
    atomic.write_text(os.path.join(out, "study.md"), markdown(df, dataset, n_folds))
    plot(df, os.path.join(out, "study.png"))
    print(markdown(df, dataset, n_folds))
    print(f"study: wrote {out}/study.md, study.png, results.csv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
