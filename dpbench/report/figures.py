"""Report figures (matplotlib, headless Agg): recall vs lag, throughput/memory bars,
gradient sensitivity (seed Fig. 6), forecast-vs-truth rollouts and learning curves.

Each ``plot_*`` function writes one PNG and returns its path, or ``None`` when the run
holds nothing to draw (partial runs are normal).
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dpbench.report.tables import (REFERENCE_MODEL, UNCONVERGED_MARK, cost_by_model, label,  # noqa: E402
                                   ok_trials, times, unconverged)
from dpbench.results import TrialResult, dataset_label  # noqa: E402

SWEEP_KEYS = ("lag", "length")
DPI = 100


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def recall_curves(trials: Iterable[TrialResult]) -> dict[str, dict[str, list[tuple[float, float, float]]]]:
    """``{dataset label (sweep key as *): {model: [(lag, mean acc, std acc), ...]}}``."""
    acc: dict[str, dict[str, dict[float, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for t in ok_trials(trials):
        key = next((k for k in SWEEP_KEYS if k in t.dataset_params), None)
        a = t.metrics.get("accuracy")
        if key is None or a is None:
            continue
        rest = {k: v for k, v in t.dataset_params.items() if k != key}
        dlabel = label(t.dataset, {key: "*", **rest})
        acc[dlabel][label(t.model, t.model_params) + ("" if t.device == "cpu" else f" ({t.device})")][
            float(t.dataset_params[key])].append(float(a))
    out: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
    for dlabel, by_model in acc.items():
        out[dlabel] = {m: [(lag, float(np.mean(v)), float(np.std(v))) for lag, v in sorted(by_lag.items())]
                       for m, by_lag in by_model.items()}
    return out


def plot_recall(trials: Iterable[TrialResult], folder: Path) -> list[Path]:
    """One figure per swept recall dataset: accuracy vs lag, one line per model."""
    written = []
    for i, (dlabel, by_model) in enumerate(sorted(recall_curves(trials).items())):
        if not any(len(points) > 1 for points in by_model.values()):
            continue
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for model, points in sorted(by_model.items()):
            lags, mean, std = (np.array(c) for c in zip(*points))
            ax.errorbar(lags, mean, yerr=std, marker="o", capsize=3, label=model)
        ax.axhline(0.9, color="grey", linestyle=":", linewidth=1, label="90 % level")
        lags = [p[0] for points in by_model.values() for p in points]
        if min(lags) > 0 and max(lags) / min(lags) >= 8:  # geometric sweeps, e.g. 10, 50, 200
            ax.set_xscale("log")
        ax.set_xlabel("lag (time steps)")
        ax.set_ylabel("test accuracy (fraction)")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(f"Long-dependency recall: {dlabel}", fontsize=10)
        ax.legend(fontsize=8)
        written.append(_save(fig, folder / f"recall-{i}.png"))
    return written


def plot_cost(trials: Iterable[TrialResult], folder: Path) -> Path | None:
    """Bars per model and device: training and inference throughput (speedup vs
    ``lstm`` written on the bars) and peak memory."""
    cost = cost_by_model(trials)
    if not cost:
        return None
    keys = sorted(cost)
    names = [m if dev == "cpu" else f"{m} ({dev})" for m, dev in keys]
    panels = [("train_seq_per_s", "training throughput", "sequences / s"),
              ("infer_seq_per_s", "inference throughput", "sequences / s"),
              ("peak_memory_mb", "peak memory of a training step", "MB")]
    fig, axes = plt.subplots(1, 3, figsize=(4.2 * 3, 0.45 * len(keys) + 2.0), sharey=True)
    y = np.arange(len(keys))
    for ax, (metric, title, unit) in zip(axes, panels):
        vals = np.array([cost[k].get(metric, math.nan) for k in keys], dtype=float)
        ax.barh(y, np.nan_to_num(vals), color=["C1" if k[0] == REFERENCE_MODEL else "C0" for k in keys])
        if ax is axes[0]:
            ax.set_yticks(y, names, fontsize=8)
        ax.set_xlabel(unit)
        ax.set_title(title, fontsize=10)
        if metric != "peak_memory_mb":
            for yi, k, v in zip(y, keys, vals):
                ref = cost.get((REFERENCE_MODEL, k[1]), {}).get(metric)
                if ref and math.isfinite(v):
                    ax.text(v, yi, " " + times(v / ref), va="center", fontsize=7)
            pos = vals[np.isfinite(vals) & (vals > 0)]
            if len(pos) and pos.max() / pos.min() > 20:  # orders of magnitude apart
                ax.set_xscale("log")
                ax.set_xlim(pos.min() / 2, pos.max() * 4)
            else:
                ax.set_xlim(0, (pos.max() if len(pos) else 1) * 1.2)
    fig.suptitle("Cost per model (median over trials; ×: speedup vs lstm, orange)", fontsize=10)
    fig.tight_layout()
    return _save(fig, folder / "cost.png")


def plot_gradient_sensitivity(trials: Iterable[TrialResult], folder: Path) -> list[Path]:
    """‖∂y_T/∂x_t‖ against t − T per model (mean over seeds), log y, one figure per
    recall dataset: how far back the gradient reaches (seed Fig. 6)."""
    curves: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for t in ok_trials(trials):
        g = t.samples.get("grad_sensitivity")
        if g:
            curves[label(t.dataset, t.dataset_params)][label(t.model, t.model_params)].append(np.asarray(g, float))
    written = []
    for i, (dlabel, by_model) in enumerate(sorted(curves.items())):
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for model, arrays in sorted(by_model.items()):
            n = min(len(a) for a in arrays)
            mean = np.mean([a[-n:] for a in arrays], axis=0)
            offsets = np.arange(n) - (n - 1)
            ax.plot(offsets, np.maximum(mean, 1e-30), label=model)
        ax.set_yscale("log")
        ax.set_xlabel("t − T (input steps before the last output)")
        ax.set_ylabel("‖∂y_T/∂x_t‖ (normalised units)")
        ax.set_title(f"Gradient sensitivity: {dlabel}", fontsize=10)
        ax.legend(fontsize=8)
        written.append(_save(fig, folder / f"gradient-{i}.png"))
    return written


#: line styles cycled with the colours so that no two models share both
LINE_STYLES = ("--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1)))
FORECAST_TOP = 4
FORECAST_PER_APPENDIX = 6


def _load_rollouts(rollouts: dict[str, Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    loaded = {}
    for model, npz in rollouts.items():
        with np.load(npz) as data:
            if "pred" in data and "truth" in data:
                pred, truth = np.asarray(data["pred"], float), np.asarray(data["truth"], float)
                if pred.ndim == 1:
                    pred, truth = pred[:, None], truth[:, None]
                if pred.ndim == 2 and pred.shape == truth.shape and pred.size:
                    loaded[model] = (pred, truth)
    return loaded


def _forecast_figure(loaded: dict[str, tuple[np.ndarray, np.ndarray]], models: list[str], styles: dict[str, tuple],
                     ranks: dict[str, int], path: Path, title: str, max_dims: int) -> Path:
    truth = loaded[models[0]][1]
    dims = min(truth.shape[1], max_dims)
    fig, axes = plt.subplots(dims, 1, figsize=(8, 1.8 * dims + 0.8), sharex=True, squeeze=False)
    for d in range(dims):
        ax = axes[d, 0]
        ax.plot(np.arange(len(truth)), truth[:, d], color="black", linewidth=1.8, label="truth")
        for model in models:
            pred = loaded[model][0]
            colour, style = styles[model]
            ax.plot(np.arange(len(pred)), pred[:, d], color=colour, linestyle=style, linewidth=1.2,
                    label=f"#{ranks[model]} {model}")
        ax.set_ylabel(f"x{d} (std units)")
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axes[-1, 0].set_xlabel("closed-loop step (sampling intervals)")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_learning_curves(trials: Iterable[TrialResult], folder: Path, max_datasets: int = 24) -> list[Path]:
    """One PNG per dataset (and block): validation loss (solid) and training loss (dashed)
    against step, every seed of every model, log scale; † marks a model with an
    unconverged seed. Trials without a recorded curve are skipped."""
    by_ds: dict[str, dict[str, list[TrialResult]]] = defaultdict(lambda: defaultdict(list))
    for t in ok_trials(trials):
        if t.samples.get("curve_step"):
            by_ds[dataset_label(t)][label(t.model, t.model_params)].append(t)
    out = []
    for i, ds in enumerate(sorted(by_ds)[:max_datasets]):
        fig, ax = plt.subplots(figsize=(7, 4))
        for j, (model, ts) in enumerate(sorted(by_ds[ds].items())):
            color = f"C{j % 10}"
            for k, t in enumerate(sorted(ts, key=lambda t: t.seed)):
                steps = t.samples["curve_step"]
                name = model + (UNCONVERGED_MARK if unconverged(ts) else "") if k == 0 else None
                ax.plot(steps, t.samples.get("curve_val_loss", []), color=color, lw=1.2, label=name)
                ax.plot(steps, t.samples.get("curve_train_loss", []), color=color, lw=0.8, ls="--", alpha=0.6)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (solid: validation, dashed: training)")
        ax.set_title(f"Learning curves: {ds}")
        ax.legend(fontsize=7, ncol=2)
        out.append(_save(fig, folder / f"learning-{i}.png"))
    return out


def plot_forecasts(rollouts: dict[str, Path], path: Path, title: str, order: list[str] | None = None,
                   max_dims: int = 3, top: int = FORECAST_TOP) -> list[Path]:
    """Closed-loop predictions vs the truth of one test trajectory, legibly.

    ``rollouts`` maps a model label to its ``forecasts/*.npz`` (``pred``/``truth``
    ``[steps, D]``, normalised units; same dataset and seed, so the same trajectory);
    ``order`` ranks the models, best first (:func:`dpbench.report.tables.ranking`).
    ``path`` shows the truth, the ``top`` best models and ``lstm`` (the reference); the
    others follow in ``<stem>-more-<j>.png`` figures of at most
    :data:`FORECAST_PER_APPENDIX` models. Each model keeps one colour and line style
    (from 10 colours × 5 styles) in every figure; the legend sits outside the axes.
    One panel per dimension (the first ``max_dims``)."""
    loaded = _load_rollouts(rollouts)
    if not loaded:
        return []
    ranked = [m for m in (order or []) if m in loaded] + sorted(m for m in loaded if m not in (order or []))
    styles = {m: (plt.get_cmap("tab10")(i % 10), LINE_STYLES[(i // 10 + i) % len(LINE_STYLES)])
              for i, m in enumerate(ranked)}
    ranks = {m: i + 1 for i, m in enumerate(ranked)}
    main = ranked[:top] + [m for m in ranked[top:] if m.split(":")[0] == REFERENCE_MODEL]
    rest = [m for m in ranked if m not in main]
    written = [_forecast_figure(loaded, main, styles, ranks, path, f"{title}\nbest {min(top, len(ranked))} "
                                f"by VPT{' and lstm' if len(main) > top else ''}; #: rank", max_dims)]
    for j in range(0, len(rest), FORECAST_PER_APPENDIX):
        part = rest[j:j + FORECAST_PER_APPENDIX]
        more = path.with_name(f"{path.stem}-more-{j // FORECAST_PER_APPENDIX}{path.suffix}")
        written.append(_forecast_figure(loaded, part, styles, ranks, more,
                                        f"{title}\nthe other models, #: rank by VPT", max_dims))
    return written


def _density(ax, xy: np.ndarray, extent: tuple[float, float, float, float], title: str, bins: int = 80) -> None:
    """Log-scaled 2-D histogram of ``xy [N, 2]`` on ``extent`` (x0, x1, y0, y1)."""
    h, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins, range=[extent[:2], extent[2:]])
    ax.imshow(np.log1p(h.T), origin="lower", extent=extent, aspect="auto", cmap="magma")
    ax.set_title(title, fontsize=9)


def plot_attractors(rollouts: dict[str, Path], path: Path, title: str) -> Path | None:
    """Attractor densities (first vs last component) of the true system and of each model's
    long rollout, and their power spectra (first component).

    ``rollouts`` maps a model label to its ``forecasts/*.npz`` holding ``long_pred``
    ``[L, D]`` and ``long_truth`` ``[L_ref, D]`` (normalised units) and ``dt``."""
    from dpbench.metrics._longterm import power_spectra, sanitize

    loaded = {}
    for model, npz in rollouts.items():
        with np.load(npz) as data:
            if "long_pred" in data and "long_truth" in data:
                dt = float(data["dt"]) if "dt" in data else 1.0
                loaded[model] = (sanitize(data["long_pred"])[0], np.asarray(data["long_truth"], float), dt)
    if not loaded:
        return None
    truth, dt = next(iter(loaded.values()))[1:]
    dims = (0, truth.shape[1] - 1) if truth.shape[1] > 1 else (0, 0)
    lo, hi = truth[:, dims].min(axis=0), truth[:, dims].max(axis=0)
    pad = 0.15 * (hi - lo + 1e-9)
    extent = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    n = len(loaded) + 1
    fig = plt.figure(figsize=(max(3.0 * n, 7.5), 6.4))
    grid = fig.add_gridspec(2, n, height_ratios=[1.0, 0.9], hspace=0.45)
    lag_xy = (lambda x: np.stack([x[:-1, 0], x[1:, 0]], axis=1)) if dims == (0, 0) else (lambda x: x[:, dims])
    _density(fig.add_subplot(grid[0, 0]), lag_xy(truth), extent, "truth (other initial condition)")
    for j, (model, (pred, _, _)) in enumerate(sorted(loaded.items()), start=1):
        ax = fig.add_subplot(grid[0, j])
        _density(ax, lag_xy(pred), extent, model)
    for ax in fig.axes:
        ax.set_xlabel(f"x{dims[0]} (std units)", fontsize=8)
        ax.set_ylabel(f"x{dims[1]}{'(t+1)' if dims == (0, 0) else ''} (std units)", fontsize=8)
        ax.tick_params(labelsize=7)
    ax = fig.add_subplot(grid[1, :])
    f, p = power_spectra(truth, dt)
    ax.semilogy(f[1:], p[1:, 0], color="black", linewidth=1.8, label="truth")
    for j, (model, (pred, _, _)) in enumerate(sorted(loaded.items())):
        f, p = power_spectra(pred, dt)
        ax.semilogy(f[1:], np.maximum(p[1:, 0], 1e-12), color=f"C{j}", linewidth=1.1, label=model)
    ax.set_xlabel("frequency (1 / time unit)" if dt != 1.0 else "frequency (1 / step)")
    ax.set_ylabel("Welch PSD of x0")
    ax.legend(fontsize=8, ncol=min(4, n))
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)
