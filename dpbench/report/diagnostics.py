"""Heatmaps of saved model diagnostics (attention alignments, memory weightings, gates).

Arrays are drawn by rank, per sample (first axis): ``[K, A, B]`` as one heatmap per
sample (seed Fig. 5 for attention, ``[K, T_out, T_in]``); ``[K, T, R, N]`` as one heatmap
per sample and head; ``[K, T]`` as line plots.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

AXES = {
    "attention": ("input step", "output step"),
    "input_attention": ("input series", "input step"),
    "read_weights": ("memory slot", "time step"),
    "write_weights": ("memory slot", "time step"),
    "usage": ("memory slot", "time step"),
}
MAX_PANELS = 8


def _heatmaps(name: str, maps: torch.Tensor, path: Path, title: str) -> Path:
    panels = min(len(maps), MAX_PANELS)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.0), squeeze=False)
    xlabel, ylabel = AXES.get(name, ("index", "step"))
    for i in range(panels):
        ax = axes[0, i]
        im = ax.imshow(maps[i].numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_title(f"sample {i}", fontsize=9)
        ax.set_xlabel(xlabel)
        if i == 0:
            ax.set_ylabel(ylabel)
    fig.colorbar(im, ax=axes[0, :].tolist(), shrink=0.8, label="weight")
    fig.suptitle(f"{title}: {name}", fontsize=10, y=1.04)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_diagnostics(diag: dict[str, torch.Tensor], folder: Path, stem: str, title: str = "") -> list[Path]:
    """Draw every diagnostic in ``diag``; returns the PNG paths written."""
    written = []
    for name, value in diag.items():
        path = Path(folder) / f"{stem}-{name}.png"
        if value.dim() == 3:
            written.append(_heatmaps(name, value, path, title))
        elif value.dim() == 4:  # [K, T, heads, N]: one panel per head of the first sample
            written.append(_heatmaps(name, value[0].permute(1, 0, 2), path, f"{title} (sample 0, per head)"))
        elif value.dim() == 2:
            fig, ax = plt.subplots(figsize=(6, 3))
            for i in range(min(len(value), MAX_PANELS)):
                ax.plot(value[i].numpy(), label=f"sample {i}")
            ax.set_xlabel("time step")
            ax.set_ylabel(name)
            ax.set_title(f"{title}: {name}")
            ax.legend(fontsize=7)
            fig.savefig(path, dpi=90, bbox_inches="tight")
            plt.close(fig)
            written.append(path)
    return written
