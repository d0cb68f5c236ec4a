"""The classical family's implementations (specs in :mod:`dpbench.models.classical`):
the field's own baselines, fitted in closed form rather than trained by gradient steps.

* ``persistence``: ŷ(t+j) = x(t) for every output step j (the "last value persists"
  forecast; Murphy 1992, Wea. Forecasting 7:692, the reference of skill scores).
* ``mean``: ŷ(t+j) = the training mean of the target at step j (climatology).
* ``linear``: ridge regression on the delay embedding, a vector autoregression VAR(k)
  (Lütkepohl 2005, New Introduction to Multiple Time Series Analysis, eq. 2.1.1).
* ``ngrc``: next-generation reservoir computer / NVAR (Gauthier et al. 2021, Nat. Commun.
  12:5564, eqs. 5-8): k delays with skip s, constant + linear + quadratic (optionally cubic)
  monomials, ridge readout predicting the increment x(t+1) − x(t) (their eq. 4).
* ``esn``: leaky echo-state network (Jaeger 2001, GMD report 148; Lukoševičius 2012, "A
  practical guide to applying echo state networks", eq. 2-3):
  h(t) = (1 − a) h(t−1) + a tanh(ρ W h(t−1) + σ W_in x(t) + b), h(0) = 0, run over the
  input window (the window is the washout / teacher-forcing period), readout
  ŷ = W_out [x(T); h(T)] + c (the "extended state" of the guide, eq. 4). Output feedback
  in free runs comes from the harness's closed-loop rollout, which feeds ŷ back as input.

Every model maps ``x [B, T, D_in]`` → ``y [B, output_steps, D_out]``; the predicted
columns are the last ``D_out`` of ``D_in`` (exogenous inputs come first, see
:mod:`dpbench.data`). Forecasts are ``x_last + Δ`` where the readout fits the increment Δ
(Gauthier et al. 2021 eq. 4; equivalent to fitting the level for a linear readout up to
the ridge penalty).

The reservoir (W, W_in, b) is drawn with reservoirpy's initialisers (``mat_gen.normal``
rescaled to unit spectral radius, ``mat_gen.bernoulli``), and the NVAR features follow
reservoirpy's ``NVAR`` node (linear features newest-first, then the unique monomials of
``itertools.combinations_with_replacement``); the forward passes are re-implemented in
torch, batched over windows, because reservoirpy steps one sample at a time in Python
(``tests/test_classical.py`` checks agreement with ``reservoirpy.nodes.Reservoir``,
``NVAR`` and ``Ridge``; speeds are in ``results/README.md``).

Fitting (:func:`fit`): the hyper-parameters in ``dpbench.models.classical.GRIDS`` are chosen on the validation
split by exhaustive search over a small grid — each default is the grid written as
``"v1/v2/..."``; a user value (``ngrc:alpha=1e-6``) fixes it, ``ngrc:alpha=1e-6/1e-4``
searches those. The readout is the ridge solution on the training windows
(:func:`ridge_fit`); the grid point with the lowest validation MSE is kept. Fitted
weights are ``nn.Parameter`` (the parameter budget counts them); a reservoir's fixed
random weights are buffers, reported as ``fixed_param_count``.
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Mapping

import numpy as np
import scipy.linalg
import torch
from torch import nn

from dpbench.data import Split
from dpbench.rollout import closed_loop, series_of
from dpbench.models.classical import GRID_SEP

#: The validation criterion: closed-loop steps and starts (see FittedModel.val_score).
VAL_STEPS, VAL_STARTS = 200, 16


class SingularFit(RuntimeError):
    """The ridge normal equations are singular (collinear features with alpha = 0)."""


def parse_grid(name: str, value: Any, cast: type = float) -> tuple[Any, ...]:
    """A fixed value or a ``"v1/v2/..."`` grid as a tuple of ``cast`` values."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (cast(value),)
    try:
        out = tuple(cast(float(v)) if cast is int else cast(v) for v in str(value).split(GRID_SEP) if v.strip())
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a number or numbers joined by '{GRID_SEP}'") from None
    if not out or any(not math.isfinite(v) or v < 0 for v in out):
        raise ValueError(f"{name}={value!r}: expected non-negative finite numbers")
    return out


def ridge_fit(features: torch.Tensor, targets: torch.Tensor, alphas: tuple[float, ...]
              ) -> list[tuple[np.ndarray, np.ndarray] | SingularFit]:
    """Ridge (Tikhonov) readouts, one per ``alpha``, for ``features [n, F]`` → ``targets [n, K]``.

    Solves (X̃ᵀX̃ + αI) W = X̃ᵀỸ on centred X̃, Ỹ and sets c = ȳ − x̄ W, so the constant
    term is not penalised (Hoerl & Kennard 1970; the formulation of reservoirpy's ``Ridge``).
    Returns ``[(W [F, K], c [K]) or SingularFit, ...]`` in float64: a :class:`SingularFit`
    (not raised) where the system is singular or numerically so (scipy's ``LinAlgWarning``:
    rcond < eps).
    """
    x = features.double().cpu().numpy()
    y = targets.double().cpu().numpy()
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    gram, cross = xc.T @ xc, xc.T @ yc
    eye = np.eye(gram.shape[0])
    out: list[tuple[np.ndarray, np.ndarray] | SingularFit] = []
    for alpha in alphas:
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            try:
                w = scipy.linalg.solve(gram + alpha * eye, cross, assume_a="sym")
            except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning) as exc:
                out.append(SingularFit(
                    f"ridge fit is singular with alpha={alpha:g} on {x.shape[1]} features "
                    f"({str(exc).splitlines()[0]}); the features are collinear: raise alpha"))
                continue
        if not np.all(np.isfinite(w)):
            out.append(SingularFit(f"ridge fit with alpha={alpha:g} gave non-finite weights: raise alpha"))
            continue
        out.append((w, y_mean - x_mean @ w))
    return out


class FittedModel(nn.Module):
    """Base of the closed-form models: a ridge readout on ``features(x)``.

    Shapes: ``forward(x [B, T, D_in]) → [B, output_steps, output_size]``. Subclasses define
    :meth:`features` (``[B, T, D_in] → [B, F]`` float64) and the grid of :meth:`candidates`.
    """

    residual = True
    #: closed-loop validation steps and starts (:meth:`val_score`); 0 steps: one-step MSE
    val_steps, val_starts = VAL_STEPS, VAL_STARTS

    def __init__(self, input_size: int, input_steps: int, output_size: int, output_steps: int,
                 task: str, n_features: int):
        super().__init__()
        if task != "forecast":
            raise ValueError(f"{type(self).__name__} supports forecast tasks only, got {task!r}")
        self.input_size, self.input_steps = input_size, input_steps
        self.output_size, self.output_steps = output_size, output_steps
        k = output_size * output_steps
        self.w_out = nn.Parameter(torch.zeros(n_features, k, dtype=torch.float64))
        self.b_out = nn.Parameter(torch.zeros(k, dtype=torch.float64))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def candidates(self) -> list[dict[str, Any]]:
        """Settings of the non-readout grid hyper-parameters to try (default: one)."""
        return [{}]

    def configure(self, **setting: Any) -> None:
        """Apply one element of :meth:`candidates` (and resize the readout if needed)."""

    def alphas(self) -> tuple[float, ...]:
        return (0.0,)

    def _last(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1, -self.output_size:].double()

    def _target(self, split: Split) -> torch.Tensor:
        y = split.y.double()
        if self.residual:
            y = y - self._last(split.x)[:, None, :]
        return y.reshape(len(split), -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x) @ self.w_out + self.b_out
        out = out.reshape(x.shape[0], self.output_steps, self.output_size)
        if self.residual:
            out = out + self._last(x)[:, None, :]
        return out.to(x.dtype)

    @torch.no_grad()
    def fit(self, train: Split, val: Split) -> dict[str, Any]:
        """Grid search scored on ``val`` (:meth:`val_score`); keeps the best readout.
        Singular grid points are skipped; :class:`SingularFit` is raised when all are.
        Returns the chosen settings and their score."""
        device = self.w_out.device
        best: tuple[float, dict[str, Any], Any] | None = None
        singular: SingularFit | None = None
        for setting in self.candidates():
            self.configure(**setting)
            f_train = self.features(train.x.to(device))
            for alpha, solved in zip(self.alphas(), ridge_fit(f_train, self._target(train), self.alphas())):
                if isinstance(solved, SingularFit):  # skipped; an error only if all are
                    singular = singular or solved
                    continue
                w, c = solved
                self._set_readout(w, c)
                score = self.val_score(val)
                if best is None or score < best[0]:
                    best = (score, {**setting, "alpha": alpha}, (w, c))
        if best is None:
            raise singular or SingularFit("no grid point could be fitted")
        score, chosen, (w, c) = best
        self.configure(**{k: v for k, v in chosen.items() if k != "alpha"})
        self._set_readout(w, c)
        return {"val_score": score, **chosen}

    def val_score(self, val: Split) -> float:
        """Mean squared error of a closed-loop forecast of ``val_steps`` steps from
        ``val_starts`` starts in the validation series (what the rollout metrics score;
        one-step fits alone pick unstable readouts), or the one-step validation MSE when the
        series is too short. Non-finite errors score ``inf``."""
        device = self.w_out.device
        series = series_of(val)
        window = val.x.shape[1]
        if self.val_steps > 0 and series is not None and len(series) > window + 1:
            targets = list(range(self.input_size - self.output_size, self.input_size))
            pred, truth = closed_loop(self, series.to(device), window, targets, self.val_steps,
                                      self.val_starts, str(device))
        else:
            pred, truth = self(val.x.to(device)), val.y
        err = float(((pred.double().cpu() - truth.double()) ** 2).mean())
        return err if math.isfinite(err) else math.inf

    def _set_readout(self, w: np.ndarray, c: np.ndarray) -> None:
        device = self.w_out.device
        self.w_out = nn.Parameter(torch.as_tensor(w, dtype=torch.float64, device=device))
        self.b_out.data = torch.as_tensor(c, dtype=torch.float64, device=device)


class Persistence(FittedModel):
    """ŷ(t+j) = x(t): zero features, zero fitted parameters beyond the (zero) constant."""

    def __init__(self, input_size: int, input_steps: int, output_size: int, output_steps: int, task: str):
        super().__init__(input_size, input_steps, output_size, output_steps, task, n_features=0)
        self.b_out.requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 0, dtype=torch.float64)

    def fit(self, train: Split, val: Split) -> dict[str, Any]:
        return {}


class Mean(FittedModel):
    """ŷ(t+j) = mean of the training targets at step j (the constant of a featureless ridge)."""

    residual = False

    def __init__(self, input_size: int, input_steps: int, output_size: int, output_steps: int, task: str):
        super().__init__(input_size, input_steps, output_size, output_steps, task, n_features=0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 0, dtype=torch.float64)

    @torch.no_grad()
    def fit(self, train: Split, val: Split) -> dict[str, Any]:
        self.b_out.data = self._target(train).mean(dim=0).to(self.b_out.device)
        return {}


def monomial_index(n: int, order: int) -> torch.Tensor:
    """``[M, order]`` indices of the unique monomials of ``order`` in ``n`` variables
    (``itertools.combinations_with_replacement`` order, as reservoirpy's NVAR)."""
    return torch.tensor(list(itertools.combinations_with_replacement(range(n), order)),
                        dtype=torch.long).reshape(-1, order)


class DelayRidge(FittedModel):
    """NVAR features of the last ``delays`` inputs spaced by ``skip`` (Gauthier et al. 2021
    eq. 5-7): O_lin = x(t) ⊕ x(t−s) ⊕ … ⊕ x(t−(k−1)s), then the unique monomials of order
    2 (``quadratic``) and 3 (``cubic``) of O_lin; the constant is the ridge intercept.
    With neither, a VAR(k) on the delay embedding (``linear``).

    Shapes: ``features(x [B, T, D]) → [B, F]``, F = kD (+ C(kD+1, 2)) (+ C(kD+2, 3)).
    """

    def __init__(self, input_size: int, input_steps: int, output_size: int, output_steps: int,
                 task: str, delays: Any = 2, skip: int = 1, quadratic: bool = True,
                 cubic: bool = False, alpha: Any = 1e-6):
        self.delay_grid = parse_grid("delays", delays, int)
        self.skip, self.quadratic, self.cubic = int(skip), bool(quadratic), bool(cubic)
        if self.skip < 1 or min(self.delay_grid) < 1:
            raise ValueError(f"delays={delays} and skip={skip} must be >= 1")
        fits = tuple(k for k in self.delay_grid if (k - 1) * self.skip + 1 <= input_steps)
        if not fits:  # grid values longer than the window are dropped; none left is an error
            raise ValueError(f"delays={delays} with skip={skip} span more than the window's "
                             f"{input_steps} steps: raise the dataset's window")
        self.delay_grid = fits
        self.alpha_grid = parse_grid("alpha", alpha)
        self.delays = self.delay_grid[0]
        super().__init__(input_size, input_steps, output_size, output_steps, task,
                         n_features=self.n_features(self.delays, input_size))
        self.register_buffer("delays_used", torch.tensor(self.delays), persistent=True)

    def n_features(self, delays: int, dim: int) -> int:
        n = delays * dim
        return n + (math.comb(n + 1, 2) if self.quadratic else 0) + (math.comb(n + 2, 3) if self.cubic else 0)

    def candidates(self) -> list[dict[str, Any]]:
        return [{"delays": k} for k in self.delay_grid]

    def alphas(self) -> tuple[float, ...]:
        return self.alpha_grid

    def configure(self, delays: int | None = None, **_: Any) -> None:
        if delays is not None and delays != self.delays:
            self.delays = int(delays)
            self.delays_used.fill_(self.delays)
            k = self.output_size * self.output_steps
            self.w_out = nn.Parameter(torch.zeros(self.n_features(self.delays, self.input_size), k,
                                                  dtype=torch.float64, device=self.w_out.device))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "delays_used"
        if key in state_dict:
            self.configure(delays=int(state_dict[key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1] - 1 - self.skip * torch.arange(self.delays, device=x.device)
        lin = x[:, steps, :].double().reshape(x.shape[0], -1)  # newest first, as NVAR
        parts = [lin]
        for order, on in ((2, self.quadratic), (3, self.cubic)):
            if on:
                idx = monomial_index(lin.shape[1], order).to(x.device)
                parts.append(lin[:, idx].prod(dim=-1))
        return torch.cat(parts, dim=1)


class EchoState(FittedModel):
    """Leaky ESN (module docstring) with a ridge readout on ``[x(T); h(T)]``.

    Buffers (fixed, not fitted): ``w [N, N]`` (unit spectral radius, density
    ``connectivity``), ``w_in [N, D_in]`` (±1, density ``input_connectivity``),
    ``bias [N]`` (±``bias_scaling``). Fitted: ``w_out [D_in + N, D_out·T_out]``, ``b_out``.
    Shapes: ``states(x [B, T, D]) → [B, N]`` (float64).

    Validation: closed loop of 50 steps from 4 starts (a forward pass costs T·N², so the
    cheaper criterion keeps the grid affordable).
    """

    val_steps, val_starts = 50, 4

    def __init__(self, input_size: int, input_steps: int, output_size: int, output_steps: int,
                 task: str, units: int = 400, connectivity: float = 0.1, input_connectivity: float = 1.0,
                 bias_scaling: float = 0.5, spectral_radius: Any = 0.95, leak: Any = 1.0,
                 input_scaling: Any = 1.0, alpha: Any = 1e-6, max_fit_windows: int = 3000,
                 reservoir_seed: int = -1):
        from reservoirpy import mat_gen

        super().__init__(input_size, input_steps, output_size, output_steps, task,
                         n_features=input_size + int(units))
        self.alpha_grid = parse_grid("alpha", alpha)
        self.grid = {"spectral_radius": parse_grid("spectral_radius", spectral_radius),
                     "leak": parse_grid("leak", leak), "input_scaling": parse_grid("input_scaling", input_scaling)}
        if not (0 < min(self.grid["leak"]) and max(self.grid["leak"]) <= 1):
            raise ValueError(f"leak={leak} must be in (0, 1]")
        self.max_fit_windows = int(max_fit_windows)
        seed = int(reservoir_seed) if reservoir_seed >= 0 else int(torch.randint(2**31 - 1, ()).item())
        rng = np.random.default_rng(seed)
        w = mat_gen.normal(units, units, connectivity=connectivity, sr=1.0, seed=rng)
        w_in = mat_gen.bernoulli(units, input_size, connectivity=input_connectivity, input_scaling=1.0, seed=rng)
        b = mat_gen.bernoulli(units, connectivity=1.0, input_scaling=bias_scaling, seed=rng)
        dense = lambda m: torch.as_tensor(m.toarray() if hasattr(m, "toarray") else np.asarray(m), dtype=torch.float64)
        self.register_buffer("w", dense(w))
        self.register_buffer("w_in", dense(w_in).reshape(units, input_size))
        self.register_buffer("bias", dense(b).reshape(units))
        self.setting = [v[0] for v in self.grid.values()]  # spectral radius, leak, input scaling

    def get_extra_state(self) -> dict[str, Any]:
        return {"setting": list(self.setting)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.setting = [float(v) for v in state["setting"]]

    def candidates(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    def alphas(self) -> tuple[float, ...]:
        return self.alpha_grid

    def configure(self, spectral_radius: float | None = None, leak: float | None = None,
                  input_scaling: float | None = None, **_: Any) -> None:
        for i, v in enumerate((spectral_radius, leak, input_scaling)):
            if v is not None:
                self.setting[i] = float(v)

    def states(self, x: torch.Tensor) -> torch.Tensor:
        rho, a, sigma = self.setting
        drive = sigma * (x.double() @ self.w_in.T) + self.bias  # [B, T, N]
        w = rho * self.w.T
        h = drive.new_zeros(x.shape[0], self.w.shape[0])
        for t in range(x.shape[1]):
            h = (1 - a) * h + a * torch.tanh(h @ w + drive[:, t])
        return h

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, -1].double(), self.states(x)], dim=1)

    def fit(self, train: Split, val: Split) -> dict[str, Any]:
        n = len(train)
        if n > self.max_fit_windows:  # evenly spaced windows: the readout is far smaller
            idx = torch.linspace(0, n - 1, self.max_fit_windows).round().long()
            train = Split(train.x[idx], train.y[idx])
        return super().fit(train, val)


def build_persistence(**kw: Any) -> nn.Module:
    return Persistence(**kw)


def build_mean(**kw: Any) -> nn.Module:
    return Mean(**kw)


def build_linear(**kw: Any) -> nn.Module:
    return DelayRidge(quadratic=False, cubic=False, **kw)


def build_ngrc(**kw: Any) -> nn.Module:
    return DelayRidge(**kw)


def build_esn(**kw: Any) -> nn.Module:
    return EchoState(**kw)


def fit(model: nn.Module, train: Split, val: Split, *, seed: int = 0) -> Mapping[str, Any]:
    """The fit hook of every classical spec: ``model.fit(train, val)`` (grid search on val)."""
    torch.manual_seed(seed)
    return model.fit(train, val)
