"""Long-term statistics of long autonomous rollouts: the registered specs. Definitions,
constants and the computation: :mod:`dpbench.metrics._longterm` (docs/reports.md)."""
from __future__ import annotations

from typing import Any

from dpbench.hookspecs import hookimpl
from dpbench.specs import MetricSpec

IMPL = "dpbench.metrics._longterm:"
CITE = "Pathak et al. 2018, PRL 120:024102; Vlachas et al. 2020, Neural Networks 126:191 (docs/reports.md)"


def _spec(name: str, title: str, description: str, compute: Any, higher: bool | None, tolerance: float,
          order: int, citation: str = CITE, gate: str = "accuracy") -> MetricSpec:
    return MetricSpec(name, title, description, citation, higher_is_better=higher, compute=compute,
                      tasks=("forecast",), needs=("long_rollouts",), tolerance=tolerance, gate=gate,
                      table="long_term", order=order)


SPECS = (
    _spec("psd_distance", "log-PSD (dec)", "mean |log10 PSD difference| of long rollouts vs truth",
          IMPL + "psd_distance", False, 0.05, 10, "Welch 1967; scipy.signal.welch"),
    _spec("w1_marginal", "W1 (std)", "mean per-dimension Wasserstein-1 of the invariant measure",
          IMPL + "w1_marginal", False, 0.05, 20, "Villani 2009, Optimal Transport, ch. 6"),
    _spec("w1_sliced", "SW1 (std)", "sliced Wasserstein-1 of the joint invariant measure",
          IMPL + "w1_sliced", False, 0.05, 30, "Bonneel et al. 2015, J. Math. Imaging Vis. 51:22"),
    _spec("lyapunov_model", "λ model (1/t)", "largest Lyapunov exponent of the learned closed-loop model",
          IMPL + "lyapunov", None, 0.0, 40, "Benettin et al. 1980, Meccanica 15:9", gate="none"),
    _spec("lyapunov_rel_error", "λ rel. err", "|λ_model − λ| / λ (capped at 10)", None, False, 0.1, 41,
          "Benettin et al. 1980, Meccanica 15:9"),
    _spec("climate_ok", "climate ok", "bounded, not a fixed point or short cycle", IMPL + "climate", True,
          0.5, 50),
)


@hookimpl
def dpbench_register_metrics(register) -> None:
    for spec in SPECS:
        register(spec)
