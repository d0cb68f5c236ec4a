"""Heatmaps of saved model diagnostics (attention alignments, memory weightings, gates).

Arrays are drawn by rank, per sample (first axis): ``[K, A, B]`` as one heatmap per
sample (seed Fig. 5 for attention, ``[K, T_out, T_in]``), or as one line per sample when
``A == 1`` (a single output step: a one-row heatmap says less than a curve);
``[K, T, R, N]`` as one heatmap per sample and head; ``[K, T]`` as line plots. Axes count
steps, slots and heads, so their ticks are integers.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

AXES = {
    "attention": ("input step", "output step"),
    "input_attention": ("input series", "input step"),
    "read_weights": ("memory slot", "time step"),
    "write_weights": ("memory slot", "time step"),
    "usage": ("memory slot", "time step"),
}
MAX_PANELS = 8


def _integer_ticks(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _curves(name: str, rows: torch.Tensor, path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    """``rows [K, B]``: one line per sample (weight against the x axis)."""
    fig, ax = plt.subplots(figsize=(6, 3))
    for i in range(min(len(rows), MAX_PANELS)):
        ax.plot(rows[i].numpy(), marker="." if rows.shape[-1] <= 64 else None, label=f"sample {i}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{title}: {name}", fontsize=10)
    if len(rows) > 1:
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def _heatmaps(name: str, maps: torch.Tensor, path: Path, title: str, panel: str = "sample") -> Path:
    xlabel, ylabel = AXES.get(name, ("index", "step"))
    if maps.shape[1] == 1:  # one output step: weights along the x axis, one line per sample
        return _curves(name, maps[:, 0], path, f"{title} ({ylabel} 0)", xlabel, "weight")
    panels = min(len(maps), MAX_PANELS)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.0), squeeze=False)
    for i in range(panels):
        ax = axes[0, i]
        im = ax.imshow(maps[i].numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
        _integer_ticks(ax)
        ax.set_title(f"{panel} {i}", fontsize=9)
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
            written.append(_heatmaps(name, value[0].permute(1, 0, 2), path, f"{title} (sample 0)", panel="head"))
        elif value.dim() == 2:
            written.append(_curves(name, value, path, title, "time step", name))
    return written
