"""hybrid: the Lorenz vector field term by term, the differentiable integration against
scipy, parameter recovery from a short noisy trajectory, the residual supplying a missing
term, and the model contract."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from dpbench.data import prepare
from dpbench.datasets.flows import lorenz_rhs
from dpbench.models.hybrid import HybridODE, hybrid_metrics

TRUE = {"sigma": 10.0, "rho": 28.0, "beta": 8.0 / 3.0}
META = {"dt": 0.025, "train_mean": [0.5, 0.4, 23.0], "train_std": [8.0, 9.0, 8.5],
        "columns": ["x", "y", "z"]}


def _set_true_parameters(model: HybridODE) -> None:
    with torch.no_grad():
        for i, (name, value) in enumerate(TRUE.items()):
            model.field.log_scale[name].fill_(float(np.log(value / float(model.field.prior[i]))))


def _model(steps: int = 3, seed: int = 0, **hparams) -> HybridODE:
    torch.manual_seed(seed)
    return HybridODE(input_size=3, input_steps=4, output_size=3, output_steps=steps,
                     task="forecast", metadata=META, **hparams)


def test_vector_field_is_lorenz_and_drop_term_removes_one_term():
    states = torch.randn(50, 3, dtype=torch.float64) * 10
    full = _model(residual=False).double()
    _set_true_parameters(full)
    reference = lorenz_rhs(**TRUE)(0.0, states.numpy().T).T
    np.testing.assert_allclose(full.field.physics(states).detach(), reference, rtol=1e-12)
    x, y, z = states.unbind(-1)
    missing = {"xy": (2, x * y), "xz": (1, -x * z), "beta_z": (2, -TRUE["beta"] * z),
               "sigma_x": (0, -TRUE["sigma"] * x)}
    for term, (component, value) in missing.items():
        dropped = _model(residual=False, drop_term=term).double()
        _set_true_parameters(dropped)
        gap = full.field.physics(states) - dropped.field.physics(states)
        expected = torch.zeros_like(states)
        expected[:, component] = value
        assert torch.allclose(gap, expected, rtol=1e-12, atol=1e-9), term


def test_forecast_matches_scipy_integration():
    model = _model(steps=8, residual=False, substeps=4).double()
    _set_true_parameters(model)
    start = np.array([-5.0, -7.0, 20.0])
    mean, std = np.array(META["train_mean"]), np.array(META["train_std"])
    x = torch.as_tensor((start - mean) / std)[None, None].repeat(1, 4, 1)
    out = model(x)[0].detach().numpy() * std + mean
    times = np.arange(1, 9) * META["dt"]
    ref = solve_ivp(lorenz_rhs(**TRUE), (0, times[-1]), start, method="DOP853", t_eval=times,
                    rtol=1e-12, atol=1e-12).y.T
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)


def _lorenz_task(registry, length: int, horizon: int, noise: float):
    spec = registry.dataset("lorenz")
    return prepare(spec, {"length": length, "noise": noise, "window": 1, "horizon": horizon}, seed=0)


def _fit(model: torch.nn.Module, task, iterations: int, lr: float) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(iterations):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(task.train.x), task.train.y).backward()
        opt.step()


def _build(registry, task, **hparams) -> HybridODE:
    torch.manual_seed(0)
    return registry.model("hybrid").build(
        input_size=3, input_steps=1, output_size=3, output_steps=task.output_steps,
        metadata=task.metadata, **hparams)


def test_recovers_lorenz_parameters_from_short_noisy_trajectory(registry):
    """600 samples (15 time units), 1 % observation noise, from the prior guess
    σ=5, ρ=20, β=2: σ, ρ, β within 1 % (seed §5(iii), de Avila Belbute-Peres et al. 2018)."""
    task = _lorenz_task(registry, length=600, horizon=4, noise=0.01)
    model = _build(registry, task, residual=False)
    before = hybrid_metrics(model, task, {})
    assert before["rho_rel_err"] > 0.2
    _fit(model, task, iterations=150, lr=0.05)
    found = hybrid_metrics(model, task, {})
    for name, value in TRUE.items():
        assert found[f"{name}_rel_err"] < 0.01, (name, found[f"{name}_hat"], value)
        assert found[f"{name}_hat"] == pytest.approx(value, rel=0.01)


def test_residual_supplies_a_missing_term(registry):
    """Without the x·y term of dz/dt, the physics-only model cannot follow Lorenz; the
    same model with the MLP residual in its vector field forecasts 20 steps (0.5 time
    units) with an error far below it."""
    task = _lorenz_task(registry, length=600, horizon=1, noise=0.01)
    horizon = _lorenz_task(registry, length=600, horizon=20, noise=0.0).test
    errors = {}
    for residual in (False, True):
        model = _build(registry, task, residual=residual, drop_term="xy", hidden=16, substeps=1)
        _fit(model, task, iterations=150, lr=0.01)
        model.output_steps = 20
        with torch.no_grad():
            errors[residual] = torch.nn.functional.mse_loss(model(horizon.x), horizon.y).item()
    assert errors[False] > 1.0  # worse than predicting the mean (normalised data)
    assert errors[True] < 0.02 * errors[False], errors


def test_contract_gradients_determinism_width(registry):
    x = torch.randn(5, 4, 3)
    model = _model(steps=3, hidden=8)
    out = model(x)
    assert out.shape == (5, 3, 3)
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.equal(_model(steps=3, hidden=8)(x), model(x))
    spec = registry.model("hybrid")
    assert spec.family == "hybrid" and spec.uses_metadata and spec.tasks == ("forecast",)
    counts = [sum(p.numel() for p in _model(hidden=h).parameters()) for h in (2, 4, 8, 16)]
    assert counts == sorted(counts) and len(set(counts)) == 4
    assert sum(p.numel() for p in _model(residual=False).parameters()) == 3


@pytest.mark.parametrize("change,match", [
    ({"metadata": {**META, "columns": ["x", "z"]}, "input_size": 2, "output_size": 2}, "observed"),
    ({"metadata": {"train_mean": [0, 0, 0]}}, "sampling step"),
    ({"task": "recall"}, "forecast"),
    ({"drop_term": "yz"}, "drop_term"),
    ({"system": "rossler"}, "system"),
])
def test_rejects_unusable_configurations(change, match):
    kwargs = dict(input_size=3, input_steps=4, output_size=3, output_steps=1, task="forecast",
                  metadata=META)
    with pytest.raises(ValueError, match=match):
        HybridODE(**{**kwargs, **change})
