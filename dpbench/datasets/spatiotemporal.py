"""Kuramoto–Sivashinsky equation: spatiotemporal chaos.

u_t = −u u_x − u_xx − u_xxxx on x ∈ [0, L) with periodic boundaries (Kuramoto 1978;
Sivashinsky 1977), L = 22, discretised by a Fourier pseudo-spectral method with
``modes`` grid points and integrated by ETDRK4 (Kassam & Trefethen 2005, SIAM J. Sci.
Comput. 26:1214, eq. 2.2 with the coefficients of their eq. 2.5 evaluated by contour
integrals over M = 32 points; dealiasing is not applied, as in their code). The state is
sampled every ``dt`` (internal step dt / ``substeps``) after a discarded transient; the
columns are the grid values u(x_j), x_j = j L / modes.

Largest Lyapunov exponent for L = 22: 0.048 per time unit (Cvitanović, Davidchack &
Siminos 2010, SIAM J. Appl. Dyn. Syst. 9:1). Our Benettin estimate on this integrator
(16 orbits × 5000 time units) is 0.0482 ± 0.0006, and the tests re-check it; the value
0.043 quoted by some forecasting papers (e.g. Vlachas et al. 2020) does not match it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dpbench.data import Trajectory
from dpbench.datasets._common import COMMON_DOCS, need, positive_ints, system_metadata
from dpbench.hookspecs import hookimpl
from dpbench.specs import DatasetSpec


class KuramotoSivashinsky:
    """ETDRK4 stepper in Fourier space (``rfft`` coefficients ``[..., modes/2 + 1]``)."""

    def __init__(self, length: float, modes: int, h: float, contour_points: int = 32):
        self.modes, self.h = modes, h
        k = 2.0 * np.pi / length * np.arange(modes // 2 + 1)
        self.g = -0.5j * k  # N(v) = −½ ∂x (u²) in Fourier space
        self.g[-1] = 0.0  # zero the Nyquist mode's derivative (odd derivative)
        lin = k ** 2 - k ** 4  # −∂xx − ∂xxxx
        self.E, self.E2 = np.exp(h * lin), np.exp(h * lin / 2.0)
        r = np.exp(1j * np.pi * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
        lr = h * lin[:, None] + r[None, :]
        self.Q = h * np.real(np.mean((np.exp(lr / 2.0) - 1.0) / lr, axis=1))
        el = np.exp(lr)
        self.f1 = h * np.real(np.mean((-4.0 - lr + el * (4.0 - 3.0 * lr + lr ** 2)) / lr ** 3, axis=1))
        self.f2 = h * np.real(np.mean((2.0 + lr + el * (-2.0 + lr)) / lr ** 3, axis=1))
        self.f3 = h * np.real(np.mean((-4.0 - 3.0 * lr - lr ** 2 + el * (4.0 - lr)) / lr ** 3, axis=1))

    def nonlinear(self, v: np.ndarray) -> np.ndarray:
        u = np.fft.irfft(v, n=self.modes, axis=-1)
        return self.g * np.fft.rfft(u * u, axis=-1)

    def step(self, v: np.ndarray) -> np.ndarray:
        """One ETDRK4 step of size h (Kassam & Trefethen 2005, eq. 2.2)."""
        nv = self.nonlinear(v)
        a = self.E2 * v + self.Q * nv
        na = self.nonlinear(a)
        b = self.E2 * v + self.Q * na
        nb = self.nonlinear(b)
        c = self.E2 * a + self.Q * (2.0 * nb - nv)
        nc = self.nonlinear(c)
        return self.E * v + nv * self.f1 + 2.0 * (na + nb) * self.f2 + nc * self.f3

    def to_fourier(self, u: np.ndarray) -> np.ndarray:
        return np.fft.rfft(u, axis=-1)

    def to_grid(self, v: np.ndarray) -> np.ndarray:
        return np.fft.irfft(v, n=self.modes, axis=-1)


def generate_ks(params: dict[str, Any], seed: int) -> Trajectory:
    """KS field ``[length, modes]`` (columns u0..u{modes-1})."""
    name = "kuramoto-sivashinsky"
    (length,) = positive_ints(name, params, "length", minimum=2)
    modes, substeps = positive_ints(name, params, "modes", "substeps")
    need(name, modes % 2 == 0 and modes >= 8, f"modes={modes} must be even and >= 8")
    dt, size, transient = float(params["dt"]), float(params["L"]), float(params["transient"])
    need(name, dt > 0 and size > 0 and transient >= 0, "need dt > 0, L > 0, transient >= 0")
    ks = KuramotoSivashinsky(size, modes, dt / substeps)
    x = np.arange(modes) * size / modes
    rng = np.random.default_rng(seed)
    u0 = sum(rng.normal(scale=0.5) * np.cos(2 * np.pi * j * x / size + rng.uniform(0, 2 * np.pi))
             for j in range(1, 4))
    v = ks.to_fourier(u0)
    v[0] = 0.0  # zero mean (conserved)
    for _ in range(int(round(transient / dt)) * substeps):
        v = ks.step(v)
    out = np.empty((length, modes))
    for t in range(length):
        out[t] = ks.to_grid(v)
        for _ in range(substeps):
            v = ks.step(v)
    need(name, bool(np.all(np.isfinite(out))), "integration blew up; lower dt or raise substeps")
    meta = system_metadata(params, {"L": 22.0, "modes": 64.0}, dt)
    return Trajectory(values=out, columns=[f"u{j}" for j in range(modes)], metadata=meta)


@hookimpl
def dpbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name="kuramoto-sivashinsky", kind="forecast",
        description="Kuramoto-Sivashinsky PDE, L=22, 64 grid points, ETDRK4, sampled at dt=0.25",
        citation="Kassam & Trefethen 2005, SIAM J. Sci. Comput. 26:1214 (ETDRK4); "
                 "lambda=0.048 for L=22 (Cvitanovic, Davidchack & Siminos 2010)",
        generate=generate_ks,
        defaults={"length": 3000, "dt": 0.25, "substeps": 1, "L": 22.0, "modes": 64,
                  "transient": 250.0},
        param_docs={**COMMON_DOCS, "substeps": "ETDRK4 steps per sample (h = dt/substeps)",
                    "L": "domain length", "modes": "grid points (Fourier modes), even"},
        metadata={"dt": 0.25, "lyapunov_exponent": 0.048, "parameters": {"L": 22.0, "modes": 64},
                  "equations": "u_t = -u u_x - u_xx - u_xxxx, periodic on [0, L)"},
    ))
