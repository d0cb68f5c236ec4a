"""Figures for ``dpbench data plot`` (matplotlib, Agg backend)."""
from __future__ import annotations

import numpy as np

from dpbench.data import RecallSplits, Trajectory, split_bounds
from dpbench.specs import DatasetSpec


def _series(ax, traj: Trajectory, dt: float) -> None:
    t = np.arange(len(traj.values)) * dt
    for j, name in enumerate(traj.columns[:4]):
        ax.plot(t, traj.values[:, j], lw=0.6, label=name)
    test_start = split_bounds(len(traj.values))[2][0] * dt
    ax.axvline(test_start, color="k", ls="--", lw=0.8, label="test split")
    ax.set_xlabel("time")
    ax.set_ylabel("value")
    ax.set_title("trajectory")
    ax.legend(loc="upper right", fontsize=7)


def _phase(ax, traj: Trajectory) -> None:
    states = [j for j, c in enumerate(traj.columns) if c not in traj.exogenous]
    v = traj.values
    if len(states) == 1:
        j = states[0]
        ax.plot(v[:-1, j], v[1:, j], ".", ms=1)
        ax.set_xlabel(f"{traj.columns[j]}(t)")
        ax.set_ylabel(f"{traj.columns[j]}(t+1)")
        ax.set_title("return map")
    else:
        a, b = states[0], states[-1]
        ax.plot(v[:, a], v[:, b], lw=0.3)
        ax.set_xlabel(traj.columns[a])
        ax.set_ylabel(traj.columns[b])
        ax.set_title("attractor projection")


def _spacetime(fig, ax, traj: Trajectory, dt: float) -> None:
    n = min(len(traj.values), 800)
    im = ax.imshow(traj.values[:n].T, aspect="auto", origin="lower", cmap="RdBu_r",
                   extent=(0, n * dt, 0, traj.values.shape[1]))
    ax.set_xlabel("time")
    ax.set_ylabel("grid point")
    ax.set_title("space-time (first samples)")
    fig.colorbar(im, ax=ax)


def _recall(axes, raw: RecallSplits) -> None:
    x = raw.train.x[0].numpy()
    axes[0].imshow(x.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("input channel")
    axes[0].set_title("first training input")
    y = raw.train.y[0].numpy().reshape(raw.train.y.shape[1], -1)
    steps = np.arange(x.shape[0] - y.shape[0], x.shape[0])
    axes[1].plot(steps, y, "o-")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("target (class or value)")
    axes[1].set_title("its targets")


def plot_raw(spec: DatasetSpec, raw, out: str, title: str) -> None:
    """Write a two-panel PNG of ``raw`` (a Trajectory or RecallSplits) to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if isinstance(raw, RecallSplits):
        _recall(axes, raw)
    else:
        dt = float(raw.metadata.get("dt", spec.metadata.get("dt", 1.0)))
        _series(axes[0], raw, dt)
        if raw.values.shape[1] > 8:
            _spacetime(fig, axes[1], raw, dt)
        else:
            _phase(axes[1], raw)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
