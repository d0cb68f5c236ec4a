"""Legible report output (issue 21): forecast figures limited to the best models and lstm,
distinct styles, integer heatmap ticks, block columns, model metrics and budget outliers."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from dpbench.report import figures as F  # noqa: E402
from dpbench.report import tables as T  # noqa: E402
from dpbench.report.diagnostics import plot_diagnostics  # noqa: E402
from dpbench.results import TrialResult  # noqa: E402

MODELS = [f"m{i}" for i in range(11)] + ["lstm"]


def trial(model: str, vpt: float, **extra) -> TrialResult:
    return TrialResult(f"id-{model}", model, {}, "lorenz", {}, 0, "cpu",
                       metrics={"vpt_lyapunov": vpt, "nrmse_rollout": 1.0, **extra.get("metrics", {})},
                       info=extra.get("info", {}), block=extra.get("block", ""))


def test_forecast_figures_show_the_best_four_and_lstm_then_the_rest(tmp_path, monkeypatch):
    truth = np.sin(np.linspace(0, 6, 50))[:, None].repeat(3, 1)
    rollouts = {}
    for i, m in enumerate(MODELS):
        np.savez(tmp_path / f"{m}.npz", pred=truth + 0.01 * i, truth=truth)
        rollouts[m] = tmp_path / f"{m}.npz"
    trials = [trial(m, vpt=float(len(MODELS) - i)) for i, m in enumerate(MODELS[:-1])] + [trial("lstm", 0.0)]
    order = T.ranking(trials, "lorenz")
    assert order[:4] == ["m0", "m1", "m2", "m3"] and order[-1] == "lstm"
    drawn: list[list[str]] = []
    real = F._save

    def spy(fig, path):
        drawn.append([ln.get_label() for ln in fig.axes[0].get_lines()])
        styles = {(str(ln.get_color()), str(ln.get_linestyle())) for ln in fig.axes[0].get_lines()}
        assert len(styles) == len(fig.axes[0].get_lines())  # no two lines look alike
        return real(fig, path)

    monkeypatch.setattr(F, "_save", spy)
    paths = F.plot_forecasts(rollouts, tmp_path / "forecast-0.png", "Lorenz", order=order)
    assert [p.name for p in paths] == ["forecast-0.png", "forecast-0-more-0.png", "forecast-0-more-1.png"]
    assert drawn[0] == ["truth", "#1 m0", "#2 m1", "#3 m2", "#4 m3", "#12 lstm"]
    assert all(len(labels) <= 1 + F.FORECAST_PER_APPENDIX for labels in drawn)
    shown = [lab.split(" ", 1)[1] for labels in drawn for lab in labels if lab != "truth"]
    assert sorted(shown) == sorted(MODELS)  # every model once
    assert all(p.stat().st_size > 0 for p in paths)


def test_heatmap_ticks_are_integers_and_one_output_step_is_a_curve(tmp_path, monkeypatch):
    seen = []
    real = plt.Figure.savefig

    def spy(fig, path, **kw):
        seen.append((path.name, [(ax.get_xticks(), ax.get_yticks(), len(ax.images)) for ax in fig.axes
                                 if ax.get_label() != "<colorbar>"]))
        return real(fig, path, **kw)

    monkeypatch.setattr(plt.Figure, "savefig", spy)
    diag = {"attention": torch.rand(2, 1, 10), "read_weights": torch.rand(2, 7, 2, 16)}
    plot_diagnostics(diag, tmp_path, "x", title="bahdanau on adding:lag=10")
    by_name = dict(seen)
    attention = by_name["x-attention.png"]
    assert attention[0][2] == 0  # drawn as lines, not a one-row image
    heat = by_name["x-read_weights.png"]
    assert all(images == 1 for _, _, images in heat[:2])
    for xt, yt, images in heat[:2]:
        assert np.allclose(xt, np.round(xt)) and np.allclose(yt, np.round(yt))


def test_long_dependency_table_gets_a_block_column_only_when_blocks_repeat():
    row = {"dataset": "copy", "dataset_params": "lag=*", "model": "lstm", "model_params": "", "device": "cpu",
           "metric": "max_lag_at_90", "value": 10, "lags": [5, 10]}
    headers, rows = T.max_lag_table([{**row, "block": "a"}])
    assert "block" not in headers
    headers, rows = T.max_lag_table([{**row, "block": "a"}, {**row, "block": "b", "value": 20}])
    assert "block" in headers and {r[headers.index("block")] for r in rows} == {"a", "b"}


def test_model_metrics_and_budget_outliers_are_tabled():
    hybrid = trial("hybrid", 1.0, metrics={"sigma_hat": 9.9, "sigma_rel_err": 0.01, "budget_ok": 0.0,
                                           "param_count": 3.0})
    lstm = trial("lstm", 1.0, metrics={"budget_ok": 1.0, "param_count": 2000.0})
    headers, rows = T.model_metric_table([hybrid, lstm])  # registered model metrics, their titles and directions
    assert rows == [["lorenz", "hybrid", "cpu", "σ learned", "-", "9.9 ± 0", "1"],
                    ["lorenz", "hybrid", "cpu", "σ rel. err", "lower", "0.01 ± 0", "1"]]
    headers, rows = T.budget_table([hybrid, lstm])
    assert rows == [["lorenz", "hybrid", "cpu", "3"]]
