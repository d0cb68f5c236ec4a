"""Every registered model honours the model contract on both task kinds, and every
registered dataset honours the dataset contract (shapes, backward, parameter budget)."""
import pytest
import torch

from dpbench.data import prepare
from dpbench.harness.budget import build_at_budget
from dpbench.plugins import load_registry

REGISTRY = load_registry(disable_third_party=True)
SMALL = {
    "forecast": ("lorenz", {"length": 400, "window": 8, "horizon": 2}),
    "recall": ("copy", {"lag": 3, "symbols": 2, "n_train": 16, "n_val": 8, "n_test": 8}),
}
CASES = [(m, k) for m, s in sorted(REGISTRY.models.items()) for k in s.tasks]


@pytest.fixture(scope="module")
def tasks():
    return {kind: prepare(REGISTRY.dataset(name), params, seed=0) for kind, (name, params) in SMALL.items()}


@pytest.mark.parametrize("model_name, kind", CASES)
def test_model_contract(model_name, kind, tasks):
    spec, task = REGISTRY.model(model_name), tasks[kind]
    torch.manual_seed(0)
    built = build_at_budget(spec, task, {}, budget=3000, tolerance=0.1)
    model = built.module
    x = task.train.x[:3]
    y = model(x)
    assert y.shape == (3, task.output_steps, task.output_size)
    assert torch.isfinite(y).all()
    if spec.fitted:  # fixed-size, fitted in closed form: tests/test_classical.py covers the fit
        return
    assert built.budget_ok, f"{model_name}: {built.param_count} params at width {built.width}, budget 3000 ± 10%"
    loss = (y.float() ** 2).mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{model_name}: no gradient reaches {missing}"
    if spec.diagnostics:
        d = {}
        with torch.no_grad():
            y2 = model(x, diagnostics=d)
        assert set(spec.diagnostics) <= set(d), f"{model_name}: declared {spec.diagnostics}, filled {sorted(d)}"
        assert torch.allclose(y2, y.detach(), atol=1e-6), "diagnostics must not change the output"


@pytest.mark.parametrize("name", sorted(REGISTRY.datasets))
def test_dataset_spec_metadata_is_documented(name):
    spec = REGISTRY.dataset(name)
    assert set(spec.defaults) <= set(spec.param_docs)
    if spec.kind == "forecast":
        assert "dt" in spec.metadata, f"{name}: forecast datasets declare their sampling step"
