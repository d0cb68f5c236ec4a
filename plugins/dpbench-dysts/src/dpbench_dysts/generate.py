"""Integrate one dysts flow and sample it: the ``dysts`` dataset's generator.

The right-hand sides are dysts' own (``dysts.flows.<Name>.rhs``, the equations of the
paper each system cites, collected by Gilpin 2021, NeurIPS Datasets and Benchmarks).
Protocol, for system ``S`` with dysts' period ``P`` and largest Lyapunov exponent ``λ``:

1. sampling step ``dt = P / points`` (``sampling="period"``) or ``dt = 1 / (λ points)``
   (``sampling="lyapunov"``);
2. start from dysts' initial condition (on the attractor) plus a seeded perturbation of
   ``1e-3`` times each variable's attractor std, then discard ``transient`` periods so
   that different seeds give decorrelated trajectories;
3. integrate with scipy's DOP853 at ``rtol = atol = RTOL`` (1e-9; chosen for speed: see
   ``docs/plugin-guide.md`` for the measured error against a 1e-12 reference), falling
   back to the implicit Radau method for stiff systems; then apply dysts' own
   post-processing for the systems that map an unbounded variable to a bounded one;
4. report failures per system: a :class:`IntegrationError` naming the system, the method
   and the solver's message, or non-finite / escaping values.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from dpbench.data import Trajectory
from dpbench_dysts.systems import lookup, system_facts

RTOL = ATOL = 1e-9
PERTURBATION = 1e-3
#: an explicit solve that needs more right-hand-side calls per sample than this is
#: treated as stiff and redone with Radau
STIFF_NFEV_PER_SAMPLE = 2000


class IntegrationError(RuntimeError):
    """A dysts system could not be integrated with the requested settings."""


def flow(name: str):
    """The dysts flow object for ``name`` (imports ``dysts.flows`` on first use)."""
    lookup(name)  # a clear error for unknown or delay systems
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Numba not installed": the plain-numpy path is fine
        import dysts.flows

    return getattr(dysts.flows, name)()


def sampling_step(facts: dict[str, Any], sampling: str, points: float) -> float:
    """``dt`` from points per period or per Lyapunov time (step 1 of the module doc)."""
    if points <= 0:
        raise ValueError(f"points={points} must be > 0")
    if sampling == "period":
        return facts["period"] / points
    if sampling == "lyapunov":
        return 1.0 / (facts["lyapunov_exponent"] * points)
    raise ValueError(f"sampling={sampling!r}; valid: period, lyapunov")


def _solve(rhs, span: tuple[float, float], x0: np.ndarray, t_eval: np.ndarray | None,
           method: str, jac=None, rtol: float = RTOL, atol: float = ATOL):
    kwargs = {"jac": jac} if jac is not None and method == "Radau" else {}
    return solve_ivp(rhs, span, x0, method=method, t_eval=t_eval, rtol=rtol, atol=atol, **kwargs)


def integrate_system(name: str, x0: np.ndarray, t_eval: np.ndarray, transient: float,
                     rtol: float = RTOL) -> np.ndarray:
    """``[len(t_eval), D]`` samples of system ``name`` after a ``transient`` from ``x0``."""
    system = flow(name)
    rhs = lambda t, x: np.asarray(system.rhs(x, t), dtype=np.float64)
    jac = (lambda t, x: np.asarray(system.jac(x, t), dtype=np.float64)) if system.has_jacobian() else None
    t0 = t_eval[0] - transient
    last = None
    for method in ("DOP853", "Radau"):
        sol = _solve(rhs, (t0, t_eval[-1]), x0, t_eval, method, jac, rtol, rtol)
        last = sol
        stiff = sol.nfev > STIFF_NFEV_PER_SAMPLE * len(t_eval)
        if sol.success and sol.y.shape[1] == len(t_eval) and np.all(np.isfinite(sol.y)) and not stiff:
            values = sol.y.T
            post = getattr(system, "_postprocessing", None)
            if post is not None:
                values = np.stack(post(*values.T), axis=1)
            return np.ascontiguousarray(values, dtype=np.float64)
    raise IntegrationError(f"dysts system {name!r}: integration failed with DOP853 and Radau "
                           f"(rtol={rtol:g}): {last.message if last is not None else 'no solution'}")


def initial_state(name: str, seed: int) -> np.ndarray:
    """dysts' initial condition plus a seeded perturbation (step 2 of the module doc)."""
    m = lookup(name)
    ic = np.asarray(m["initial_conditions"], dtype=np.float64)
    std = np.asarray(m.get("std", np.ones_like(ic)), dtype=np.float64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xD757]))
    return ic + PERTURBATION * std * rng.standard_normal(ic.shape)


def generate(params: dict[str, Any], seed: int) -> Trajectory:
    """The ``dysts`` dataset: ``[length, D]`` samples of ``params["system"]``, columns
    ``x0 .. x{D-1}``; metadata holds ``dt``, ``lyapunov_exponent`` and the system's facts."""
    name = str(params["system"])
    facts = system_facts(name)
    length = int(params["length"])
    if length < 2:
        raise ValueError(f"dysts: length={length} must be >= 2")
    dt = sampling_step(facts, str(params["sampling"]), float(params["points"]))
    transient = float(params["transient"]) * facts["period"]
    if transient < 0:
        raise ValueError("dysts: transient must be >= 0")
    values = integrate_system(name, initial_state(name, seed), np.arange(length) * dt, transient)
    bound = float(params["bound"])
    if not np.all(np.abs(values) < bound):
        raise IntegrationError(f"dysts system {name!r}: trajectory leaves |x| < {bound:g}")
    facts.update(dt=dt, sampling=str(params["sampling"]), points=float(params["points"]))
    return Trajectory(values=values, columns=[f"x{i}" for i in range(values.shape[1])], metadata=facts)
