"""soft-switch: the seed's differentiable "if" mixes exactly a·y + (1 − a)·z; the gate–regime
metric lines gates up with the right raw steps; the model contract."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dpbench.data import Split, TaskData, prepare
from dpbench.models.branching import (
    SoftSwitch, correlation_ratio, gate_regime_metrics, regimes_at_predictions,
)


def _model(task: str = "forecast", steps: int = 2, hidden: int = 8, gate_hidden: int = 4,
           delays: int = 3, seed: int = 0) -> SoftSwitch:
    torch.manual_seed(seed)
    return SoftSwitch(input_size=2, input_steps=5, output_size=3, output_steps=steps, task=task,
                      hidden=hidden, gate_hidden=gate_hidden, delays=delays)


def _embedding_by_hand(x: torch.Tensor, positions: list[int], delays: int) -> torch.Tensor:
    """``[B, P, delays * D]``: steps ``p−delays+1 .. p`` of ``x``, zeros before step 0."""
    rows = []
    for p in positions:
        steps = [x[:, k] if k >= 0 else torch.zeros_like(x[:, 0]) for k in range(p - delays + 1, p + 1)]
        rows.append(torch.cat(steps, dim=-1))
    return torch.stack(rows, dim=1)


@pytest.mark.parametrize("task,steps,positions", [("forecast", 2, [4]), ("recall", 4, [1, 2, 3, 4])])
def test_gate_mixes_the_two_branches_exactly(task, steps, positions):
    model = _model(task, steps)
    x = torch.randn(6, 5, 2)
    u = _embedding_by_hand(x, positions, delays=3)
    shape = (6, steps, 3)
    a = torch.sigmoid(model.gate(u)).reshape(6, steps)
    y, z = model.branch_y(u).reshape(shape), model.branch_z(u).reshape(shape)
    diag: dict = {}
    out = model(x, diagnostics=diag)
    assert torch.allclose(out, a[..., None] * y + (1 - a[..., None]) * z, atol=1e-6)
    assert torch.allclose(diag["gate"], a, atol=1e-7) and diag["gate"].shape == (6, steps)
    assert torch.equal(model(x), out)  # diagnostics do not change the output
    # a extreme gate selects one branch: the "if" of seed §2
    with torch.no_grad():
        model.gate[-1].bias.fill_(50.0)
    assert torch.allclose(model(x), y, atol=1e-6)


def test_linear_gate_is_sigmoid_of_affine_map():
    model = _model(gate_hidden=0)
    x = torch.randn(4, 5, 2)
    u = x[:, 2:].reshape(4, -1)
    a = torch.sigmoid(u @ model.gate.weight.T + model.gate.bias)
    a_model, _, _ = model.parts(x)
    assert isinstance(model.gate, torch.nn.Linear)
    assert torch.allclose(a_model, a, atol=1e-7)


def test_correlation_ratio_known_values():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 3, size=3000)
    assert correlation_ratio(groups * 0.2 + 0.1, groups) == pytest.approx(1.0)
    assert correlation_ratio(rng.random(3000), groups) < 0.06
    assert correlation_ratio(np.full(10, 0.5), groups[:10]) == 0.0
    two = groups[:500] % 2
    gate = two + rng.normal(scale=0.7, size=500)
    r = np.corrcoef(gate, two)[0, 1]
    assert correlation_ratio(gate, two) == pytest.approx(abs(r), rel=1e-10)


def _synthetic_task(length: int = 100, window: int = 5, steps: int = 2) -> TaskData:
    n_test = 15 - window - steps + 1
    x = torch.zeros(n_test, window, 1)
    split = Split(x, torch.zeros(n_test, steps, 1))
    meta = {"regimes": np.arange(length) % 7, "split_bounds": [(0, 70), (70, 85), (85, 100)]}
    return TaskData(name="synthetic", params={}, kind="forecast", loss="mse", train=split, val=split,
                    test=split, input_size=1, output_size=1, output_steps=steps, metadata=meta)


def test_regimes_line_up_with_predicted_steps():
    task = _synthetic_task()
    regimes = regimes_at_predictions(task.metadata, n=9, window=5, steps=2)
    # window i covers raw 85+i .. 89+i; its forecasts are raw 90+i and 91+i
    expected = (85 + 5 + np.arange(9)[:, None] + np.arange(2)[None, :]) % 7
    np.testing.assert_array_equal(regimes, expected)
    with pytest.raises(ValueError, match="regimes"):
        regimes_at_predictions(task.metadata, n=10, window=5, steps=2)


def test_gate_regime_metric_on_synthetic_task():
    task = _synthetic_task()
    regimes = regimes_at_predictions(task.metadata, 9, 5, 2)
    perfect = {"gate": torch.as_tensor(regimes / 10.0)}
    assert gate_regime_metrics(None, task, perfect)["gate_regime_corr"] == pytest.approx(1.0)
    constant = {"gate": torch.full((9, 2), 0.3)}
    assert gate_regime_metrics(None, task, constant)["gate_regime_corr"] == 0.0
    task.metadata.pop("regimes")
    assert gate_regime_metrics(None, task, perfect) == {}


def test_switching_delay_targets_follow_the_aligned_regime(registry):
    """On the real dataset, the regime the metric pairs with test prediction i drives that
    step: x_k = r s(1 − s), s = (1 − w) x_{k−1} + w x_{k−lag(regime_k)}."""
    spec = registry.dataset("switching-delay")
    task = prepare(spec, {"length": 600, "window": 12}, seed=3, use_cache=False)
    p = task.params
    mean, std = task.metadata["train_mean"][0], task.metadata["train_std"][0]
    x = task.test.x[..., 0].double() * std + mean  # [n, window] raw values
    target = task.test.y[:, 0, 0].double() * std + mean
    regimes = regimes_at_predictions(task.metadata, len(task.test), 12, 1)[:, 0]
    lags = np.array([p["d1"], p["d2"], p["d3"]])[regimes]
    # lag d: the delayed state is x[k − d] = window step (12 − d); lags are < window here
    delayed = x[torch.arange(len(x)), torch.as_tensor(12 - lags)]
    s = (1 - p["w"]) * x[:, -1] + p["w"] * delayed
    assert torch.allclose(target, p["r"] * s * (1 - s), atol=1e-4)


@pytest.mark.parametrize("task,steps", [("forecast", 3), ("recall", 4)])
def test_contract_shapes_gradients_determinism(task, steps):
    x = torch.randn(5, 5, 2)
    model = _model(task, steps, seed=2)
    out = model(x)
    assert out.shape == (5, steps, 3)
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.equal(_model(task, steps, seed=2)(x), model(x))


def test_registered_spec_width_monotone(registry):
    spec = registry.model("soft-switch")
    assert spec.family == "feedforward" and spec.diagnostics == ("gate",)

    def count(hidden: int) -> int:
        model = spec.build(input_size=2, input_steps=5, output_size=3, output_steps=1, hidden=hidden)
        return sum(p.numel() for p in model.parameters())

    counts = [count(h) for h in (2, 4, 8, 16)]
    assert counts == sorted(counts) and len(set(counts)) == 4
