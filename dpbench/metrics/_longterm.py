"""Long-term statistics ("climate") of a learned model's long autonomous rollouts: the
computation (specs in :mod:`dpbench.metrics.longterm`).

After a chaotic forecast has diverged from the truth, a good model still reproduces the
attractor's statistics (Pathak et al. 2018, PRL 120:024102, Fig. 3; Vlachas et al. 2020,
Neural Networks 126:191, §6 power spectra; Gilpin 2021, NeurIPS Datasets & Benchmarks).
Rollouts ``pred [S, L, D]`` of ``S`` starts are compared with a long reference
trajectory ``ref [L_ref, D]`` of the true system from other initial conditions, all in
units of the training standard deviation.

* ``psd_distance``: mean over dimensions and Welch frequencies of
  ``|log10 P̂_d(f) − log10 P_d(f)|`` (decades; Welch 1967, IEEE Trans. Audio
  Electroacoust. 15:70, ``scipy.signal.welch``, Hann window, ``nperseg`` ≤ 256); both
  spectra are kept within ``[1e-6, 1e6]`` × the reference's peak per dimension, so one
  bin contributes at most 12 decades (:data:`PSD_WORST`, the value of a diverged rollout).
* ``w1_marginal``: mean over dimensions of the Wasserstein-1 distance between the
  one-dimensional marginals (``scipy.stats.wasserstein_distance``; Villani 2009, §6).
* ``w1_sliced``: sliced Wasserstein-1 of the joint distribution, the mean W1 of the
  projections on 64 fixed random unit directions (Bonneel et al. 2015, J. Math. Imaging
  Vis. 51:22).
* ``lyapunov_model``: the largest Lyapunov exponent of the learned closed-loop map
  (Benettin et al. 1980, Meccanica 15:9: a twin rollout started ``δ`` away, renormalised
  to ``δ`` after every model call, ``λ̂ = Σ ln(d_k/δ) / t``), per time unit;
  ``lyapunov_rel_error`` = ``|λ̂ − λ| / λ`` with the dataset's λ, capped at
  :data:`LAMBDA_ERROR_WORST`.
* ``climate_ok``: 1 when the rollouts are finite and bounded (``max |x̂| ≤ 3 max |x|``)
  and have not collapsed onto a fixed point or a short cycle: for every lag ``p`` up to
  5 Lyapunov times the median distance of ``x̂(t)`` to the segment
  ``[x̂(t+p), x̂(t+p+1)]`` over the rollouts' second half is at least 0.1 × the same
  statistic of the reference (a periodic orbit returns onto itself; a chaotic one never does).

Divergence never gives NaN: non-finite values become ``±`` :data:`CLIP` and every value
is clipped to ``[−CLIP, CLIP]`` first, so a model that runs away gets the worst distances
(W1 of order ``CLIP``; ``psd_distance`` = :data:`PSD_WORST`; ``lyapunov_rel_error`` =
:data:`LAMBDA_ERROR_WORST`; ``climate_ok`` = 0).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.signal import welch
from scipy.stats import wasserstein_distance


CLIP = 100.0
LAMBDA_ERROR_WORST = 10.0
PSD_FLOOR = 1e-6
PSD_WORST = 2 * 6.0  # decades: log10 of the [PSD_FLOOR, 1 / PSD_FLOOR] range around the peak
PROJECTIONS = 64
BOUND_FACTOR = 3.0
CYCLE_RATIO = 0.1
CYCLE_LYAPUNOV_TIMES = 5.0
RETURN_POINTS = 400


def sanitize(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """``x`` with non-finite values set to ``±CLIP`` (NaN → +CLIP) and clipped; and whether
    anything was non-finite or outside ``[−CLIP, CLIP]`` (the rollout diverged)."""
    x = np.asarray(x, dtype=np.float64)
    diverged = bool(not np.all(np.isfinite(x)) or np.abs(x).max(initial=0.0) > CLIP)
    x = np.nan_to_num(x, nan=CLIP, posinf=CLIP, neginf=-CLIP)
    return np.clip(x, -CLIP, CLIP), diverged


def _as_batch(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[None] if x.ndim == 2 else x


def power_spectra(x: np.ndarray, dt: float = 1.0, nperseg: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Welch spectra of ``x [L, D]`` or ``[S, L, D]`` averaged over ``S``: ``(f [F], P [F, D])``."""
    x = _as_batch(x)
    seg = int(min(nperseg, x.shape[1]))
    f, p = welch(x, fs=1.0 / dt, nperseg=seg, axis=1)
    return f, p.mean(axis=0)


def log_psd_distance(pred: np.ndarray, ref: np.ndarray, dt: float = 1.0, nperseg: int = 256) -> float:
    """Mean ``|log10 P̂ − log10 P|`` over dimensions and frequencies (see module docstring)."""
    seg = int(min(nperseg, _as_batch(pred).shape[1], len(ref)))
    _, p_hat = power_spectra(pred, dt, seg)
    _, p_ref = power_spectra(ref, dt, seg)
    peak = p_ref.max(axis=0, keepdims=True)
    peak = np.where(peak > 0, peak, 1e-300)
    lo, hi = PSD_FLOOR * peak, peak / PSD_FLOOR
    return float(np.mean(np.abs(np.log10(np.clip(p_hat, lo, hi)) - np.log10(np.clip(p_ref, lo, hi)))))


def marginal_w1(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean over dimensions of W1 between the marginals of ``pred`` and ``ref``."""
    pts, refp = _as_batch(pred).reshape(-1, ref.shape[-1]), np.asarray(ref, np.float64)
    return float(np.mean([wasserstein_distance(pts[:, d], refp[:, d]) for d in range(refp.shape[1])]))


def sliced_w1(pred: np.ndarray, ref: np.ndarray, projections: int = PROJECTIONS, seed: int = 0) -> float:
    """Sliced W1: mean W1 of the projections on ``projections`` fixed random directions."""
    pts, refp = _as_batch(pred).reshape(-1, ref.shape[-1]), np.asarray(ref, np.float64)
    dirs = np.random.default_rng(seed).standard_normal((projections, refp.shape[1]))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    a, b = pts @ dirs.T, refp @ dirs.T
    return float(np.mean([wasserstein_distance(a[:, k], b[:, k]) for k in range(projections)]))


def return_distances(x: np.ndarray, max_lag: int) -> np.ndarray:
    """For ``p = 1..max_lag``: median over starts and ``t`` of the distance from ``x(t)`` to
    the segment ``[x(t+p), x(t+p+1)]`` of ``x [L, D]`` or ``[S, L, D]`` → ``[max_lag]``."""
    x = _as_batch(x)
    stride = max(1, (x.shape[1] - max_lag) // RETURN_POINTS)  # the median needs a few hundred t
    out = np.empty(max_lag)
    for p in range(1, max_lag + 1):
        n = x.shape[1] - p - 1
        q, a, b = x[:, :n:stride], x[:, p:p + n:stride], x[:, p + 1:p + 1 + n:stride]
        v = b - a
        s = np.clip(((q - a) * v).sum(-1) / np.maximum((v * v).sum(-1), 1e-300), 0.0, 1.0)
        out[p - 1] = np.median(np.linalg.norm(q - a - s[..., None] * v, axis=-1))
    return out


def climate_ok(pred: np.ndarray, ref: np.ndarray, diverged: bool, max_lag: int) -> bool:
    """Finite, bounded and neither a fixed point nor a cycle of period ≤ ``max_lag`` steps."""
    pred, ref = _as_batch(pred), np.asarray(ref, np.float64)
    if diverged or np.abs(pred).max() > BOUND_FACTOR * np.abs(ref).max():
        return False
    tail, ref_tail = pred[:, pred.shape[1] // 2:], ref[len(ref) // 2:]
    lags = int(max(1, min(max_lag, tail.shape[1] // 2 - 1, len(ref_tail) // 2 - 1)))
    ratio = return_distances(tail, lags) / np.maximum(return_distances(ref_tail, lags), 1e-300)
    return bool(ratio.min() >= CYCLE_RATIO)


def _long(ctx: Any) -> tuple[np.ndarray, np.ndarray, bool, Any]:
    lr = ctx.long_rollouts
    pred, diverged = sanitize(lr.pred)
    return pred, np.asarray(lr.reference, np.float64), diverged, lr


def psd_distance(ctx: Any) -> float:
    pred, ref, diverged, lr = _long(ctx)
    return PSD_WORST if diverged else log_psd_distance(pred, ref, lr.dt)


def w1_marginal(ctx: Any) -> float:
    pred, ref, _, _ = _long(ctx)
    return marginal_w1(pred, ref)


def w1_sliced(ctx: Any) -> float:
    pred, ref, _, _ = _long(ctx)
    return sliced_w1(pred, ref)


def lyapunov_estimate(log_growth: np.ndarray, time: float) -> float:
    """``mean(Σ ln(d_k/δ)) / t`` over starts; NaN when any twin diverged."""
    lam = float(np.mean(log_growth)) / time if time > 0 else math.nan
    return lam if math.isfinite(lam) else math.nan


def relative_error(estimate: float, truth: float) -> float:
    """``|λ̂ − λ| / λ`` capped at :data:`LAMBDA_ERROR_WORST` (also for a non-finite ``λ̂``)."""
    if not math.isfinite(estimate):
        return LAMBDA_ERROR_WORST
    return float(min(abs(estimate - truth) / abs(truth), LAMBDA_ERROR_WORST))


def lyapunov(ctx: Any) -> dict[str, float]:
    lr = ctx.long_rollouts
    lam = lyapunov_estimate(lr.log_growth, lr.time)
    out = {"lyapunov_model": lam} if math.isfinite(lam) else {}
    truth = ctx.task.lyapunov_exponent
    if truth:
        out["lyapunov_rel_error"] = relative_error(lam, float(truth))
    return out


def climate(ctx: Any) -> float:
    pred, ref, diverged, lr = _long(ctx)
    lam, dt = ctx.task.lyapunov_exponent, lr.dt
    max_lag = int(math.ceil(CYCLE_LYAPUNOV_TIMES / (lam * dt))) if lam else pred.shape[-2] // 4
    return float(climate_ok(pred, ref, diverged, max_lag))
