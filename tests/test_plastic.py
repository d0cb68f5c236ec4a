"""plastic-rnn: seed eq. 12–13 (and Oja's rule) checked by hand and against an
element-wise float64 reference; BPTT through the trace; the model contract."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

from dpbench.models.plastic import PlasticRNN, hebb_update, oja_update

F64 = torch.float64
# Hand example: trace H, presynaptic y_i(t−1), postsynaptic y_j(t), η = 0.1.
H0 = [[0.5, -0.2], [0.1, 0.0]]
PRE, POST, ETA = [1.0, -0.5], [0.2, 0.4], 0.1


def _args():
    return (torch.tensor([H0], dtype=F64), torch.tensor([PRE], dtype=F64),
            torch.tensor([POST], dtype=F64), torch.tensor(ETA, dtype=F64))


def test_hebb_update_matches_eq13_by_hand():
    # H_ij ← η y_i y_j + (1 − η) H_ij, e.g. (0,1): 0.1·1·0.4 + 0.9·(−0.2) = −0.14
    #                                       (1,0): 0.1·(−0.5)·0.2 + 0.9·0.1 = 0.08
    expected = [[0.47, -0.14], [0.08, -0.02]]
    assert torch.allclose(hebb_update(*_args())[0], torch.tensor(expected, dtype=F64), atol=1e-15)


def test_oja_update_matches_rule_by_hand():
    # H_ij ← H_ij + η y_j (y_i − y_j H_ij), e.g. (0,1): −0.2 + 0.1·0.4·(1 + 0.4·0.2) = −0.1568
    #                                          (1,0): 0.1 + 0.1·0.2·(−0.5 − 0.2·0.1) = 0.0896
    expected = [[0.518, -0.1568], [0.0896, -0.02]]
    assert torch.allclose(oja_update(*_args())[0], torch.tensor(expected, dtype=F64), atol=1e-15)


def _model(rule: str = "hebb", hidden: int = 4, task: str = "forecast", steps: int = 1,
           seed: int = 0) -> PlasticRNN:
    torch.manual_seed(seed)
    return PlasticRNN(input_size=2, input_steps=6, output_size=3, output_steps=steps, task=task,
                      hidden=hidden, rule=rule, eta=0.3)


def _reference_states(model: PlasticRNN, x: np.ndarray) -> np.ndarray:
    """Eq. 12–13 (or Oja) written out neuron by neuron in float64: ``x [T, D] -> y [T, N]``."""
    w = model.w.detach().double().numpy()
    alpha = model.alpha.detach().double().numpy()
    w_in = model.input.weight.detach().double().numpy()
    b_in = model.input.bias.detach().double().numpy()
    eta = float(torch.sigmoid(model.eta_logit.detach().double()))
    n = w.shape[0]
    y, trace, out = np.zeros(n), np.zeros((n, n)), []
    for x_t in x:
        new = np.array([
            np.tanh(sum((w[i, j] + alpha[i, j] * trace[i, j]) * y[i] for i in range(n))
                    + w_in[j] @ x_t + b_in[j])
            for j in range(n)
        ])
        for i in range(n):
            for j in range(n):
                if model.rule == "hebb":
                    trace[i, j] = eta * y[i] * new[j] + (1 - eta) * trace[i, j]
                else:
                    trace[i, j] += eta * new[j] * (y[i] - new[j] * trace[i, j])
        y = new
        out.append(y)
    return np.array(out)


@pytest.mark.parametrize("rule", ["hebb", "oja"])
def test_forward_matches_elementwise_reference(rule):
    model = _model(rule, task="recall", steps=6).double()
    with torch.no_grad():
        model.alpha.mul_(4.0)  # make the plastic part matter
    x = torch.randn(3, 6, 2, dtype=F64)
    head_w = model.head.linear.weight.detach().numpy()
    head_b = model.head.linear.bias.detach().numpy()
    out = model(x).detach().numpy()
    for b in range(3):
        states = _reference_states(model, x[b].numpy())
        np.testing.assert_allclose(out[b], states @ head_w.T + head_b, rtol=1e-12, atol=1e-12)


def test_trace_resets_per_sequence_and_diagnostics():
    model = _model("hebb", hidden=8)
    x = torch.randn(4, 6, 2)
    diag: dict = {}
    together = model(x, diagnostics=diag)
    alone = torch.cat([model(x[i:i + 1]) for i in range(4)])
    assert torch.allclose(together, alone, atol=1e-6)  # no trace leaks between sequences
    assert torch.equal(model(x), together)  # nor between calls; diagnostics change nothing
    norms = diag["trace_norm"]
    assert norms.shape == (4, 6)
    assert torch.all(norms[:, 0] == 0) and torch.all(norms[:, 2:] > 0)


def test_hebbian_trace_stays_in_unit_box():
    """Eq. 13 with η ∈ (0, 1) is a convex combination of H and y_i y_j ∈ [−1, 1]."""
    model = _model("hebb", hidden=6)
    with torch.no_grad():
        model.eta_logit.fill_(3.0)  # η ≈ 0.95: fast, large updates
        model.w.mul_(10.0)  # saturated units, |y| ≈ 1
    drives = torch.randn(8, 40, 6) * 10
    y, trace = torch.zeros(8, 6), torch.zeros(8, 6, 6)
    peak = 0.0
    with torch.no_grad():
        for t in range(40):
            y, trace = model.step(drives[:, t], y, trace)
            peak = max(peak, float(trace.abs().max()))
    assert 0.5 < peak <= 1.0


def test_eta_alpha_trained_through_bptt_gradcheck():
    model = _model("oja", hidden=3).double()
    x = torch.randn(2, 6, 2, dtype=F64)
    names = ("alpha", "eta_logit")

    def f(*params):
        return functional_call(model, dict(zip(names, params)), (x,))

    params = tuple(getattr(model, k).detach().clone().requires_grad_() for k in names)
    assert torch.autograd.gradcheck(f, params)


@pytest.mark.parametrize("task,steps", [("forecast", 3), ("recall", 4)])
def test_contract_shapes_gradients_determinism(task, steps):
    x = torch.randn(5, 6, 2)
    model = _model("hebb", hidden=8, task=task, steps=steps, seed=1)
    out = model(x)
    assert out.shape == (5, steps, 3)
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    again = _model("hebb", hidden=8, task=task, steps=steps, seed=1)
    assert torch.equal(again(x), model(x))


def test_registered_width_monotone_and_bad_rule(registry):
    spec = registry.model("plastic-rnn")
    assert spec.family == "plastic" and spec.width == "hidden"

    def count(hidden: int) -> int:
        model = spec.build(input_size=2, input_steps=6, output_size=3, output_steps=1, hidden=hidden)
        return sum(p.numel() for p in model.parameters())

    counts = [count(h) for h in (2, 4, 8, 16)]
    assert counts == sorted(counts) and len(set(counts)) == 4
    with pytest.raises(ValueError, match="rule"):
        spec.build(input_size=2, input_steps=6, output_size=3, output_steps=1, rule="stdp")
