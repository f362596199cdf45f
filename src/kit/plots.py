"""PNG plots beside the outputs they describe: users look before they read."""
from __future__ import annotations

import pandas as pd

from .atomic import atomic_path


def _pyplot():
    import matplotlib  # half a second to import: paid only by the commands that plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    plt = _pyplot()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def plot_history(history: pd.DataFrame, path: str, metric: str, title: str) -> None:
    """Training loss (left axis) and the validation metric (right axis) per epoch (1-based),
    best epoch marked."""
    if history.empty:
        return
    plt = _pyplot()
    h = history.reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(h["epoch"], h["loss"], color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(h["epoch"], h[metric], color="tab:orange", marker=".", label=metric)
    best = h[metric].idxmax()
    ax2.scatter([h["epoch"][best]], [h[metric][best]], color="red", zorder=3,
                label=f"best {h[metric][best]:.4f} (epoch {h['epoch'][best]})")
    ax2.set_ylabel(metric, color="tab:orange")
    ax2.legend(loc="lower right")
    ax.set_title(title)
    _save(fig, path)


def plot_bars(values: pd.Series, path: str, xlabel: str, title: str, limit: int = 40) -> None:
    """Horizontal bars, worst first (at the top), at most `limit` of them."""
    if values.empty:
        return
    plt = _pyplot()
    v = values.sort_values().iloc[:limit]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.22 * len(v)))
    ax.barh(range(len(v)), v.to_numpy(), color="tab:blue")
    ax.set_yticks(range(len(v)))
    ax.set_yticklabels([str(i) for i in v.index], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(xlabel)
    shown = f" (worst {len(v)} of {len(values)})" if len(values) > len(v) else ""
    ax.set_title(title + shown, fontsize=10)
    for i, x in enumerate(v.to_numpy()):
        ax.text(min(x + 0.01, 0.93), i, f"{x:.2f}", va="center", fontsize=7)
    _save(fig, path)


def plot_values(values: pd.Series, path: str, title: str) -> None:
    """One bar per value, labelled: a side-by-side comparison (benchmarks)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 0.8 + 0.5 * len(values)))
    ax.barh(range(len(values)), values.to_numpy(), color="tab:orange")
    ax.set_yticks(range(len(values)))
    ax.set_yticklabels([str(i) for i in values.index])
    ax.invert_yaxis()
    for i, v in enumerate(values.to_numpy()):
        ax.text(v, i, f" {v:,.1f}", va="center", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_xlim(0, values.max() * 1.25)
    _save(fig, path)


def plot_tradeoff(points: dict[str, tuple[float, float]], path: str, xlabel: str, ylabel: str,
                  share: float, title: str) -> None:
    """Runs as points (x, y), with lines of equal (1 - share) x + share y through each: the
    runs on the highest line rank first, and a line's tilt shows what the share trades."""
    if not points:
        return
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    xs = [p[0] for p in points.values()]
    lo, hi = min(xs) - 0.01, max(xs) + 0.01
    for name, (x, y) in points.items():
        ax.scatter([x], [y], zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        if 0 < share:                                   # y on the line: c = (1 - s) x' + s y'
            c = (1 - share) * x + share * y
            ax.plot([lo, hi], [(c - (1 - share) * lo) / share, (c - (1 - share) * hi) / share],
                    color="grey", lw=0.5, ls=":")
    ys = [p[1] for p in points.values()]
    ax.set_xlim(lo, hi)
    ax.set_ylim(min(ys) - 0.02, max(ys) + 0.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    _save(fig, path)
