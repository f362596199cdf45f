"""Training curves as PNG, beside each run's history.csv."""
from __future__ import annotations

import pandas as pd

from .atomic import atomic_path


def plot_history(history: pd.DataFrame, path: str, metric: str, title: str) -> None:
    """Loss (left axis) and the validation metric (right axis) per epoch, best epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if history.empty:
        return
    epochs = history["epoch"] + 1
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, history["loss"], color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(epochs, history[metric], color="tab:orange", marker=".", label=metric)
    best = history[metric].idxmax()
    ax2.scatter([epochs[best]], [history[metric][best]], color="red", zorder=3,
                label=f"best {history[metric][best]:.4f} (epoch {epochs[best]})")
    ax2.set_ylabel(metric, color="tab:orange")
    ax2.legend(loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
