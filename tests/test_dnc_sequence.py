"""The whole-sequence op ``dpbench::dnc_sequence`` (controller + interface + access, autograd in
C++) against the DNC model on the reference access step and on the per-step fused op."""
from __future__ import annotations


import pytest
import torch

from dpbench.models.dnc import DNC, InterfaceLayer
from dpbench.ops import fused_sequence, sequence_weights
from dpbench.ops.dnc_check import rollout


pytestmark = pytest.mark.usefixtures("fused_kernels")


def _pair(dtype=torch.float64, seed=0, **kw):
    """The same DNC (same weights) three ways: reference, fused per step, fused sequence."""
    args = dict(input_size=5, input_steps=9, output_size=4, output_steps=9, task="recall",
                hidden_size=6, memory_slots=7, word_size=3, read_heads=2)
    args.update(kw)
    torch.manual_seed(seed)
    ref = DNC(impl="reference", **args).to(dtype)
    step = DNC(impl="fused", fused_sequence=False, **args).to(dtype)
    seq = DNC(impl="fused", **args).to(dtype)
    step.load_state_dict(ref.state_dict())
    seq.load_state_dict(ref.state_dict())
    return ref, step, seq


def _grads(model, x):
    y = model(x)
    loss = (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)).sum()
    return y.detach(), torch.autograd.grad(loss, list(model.parameters()))


def _graph_nodes(y: torch.Tensor) -> list[str]:
    seen, todo, names = set(), [y.grad_fn], []
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "AccumulateGrad" not in node.name():   # parameter leaves
            names.append(node.name())
        todo.extend(n for n, _ in node.next_functions)
    return names


@pytest.mark.parametrize("stop", [False, True], ids=["exact", "usage-stop-gradient"])
def test_sequence_matches_the_reference_model_in_float64(stop):
    """Outputs and every parameter's gradient agree with the model on the reference access
    step (and with the per-step fused op) to float64 rounding."""
    ref, step, seq = _pair(usage_stop_gradient=stop)
    x = torch.randn(3, 9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y_ref, g_ref = _grads(ref, x)
    for model in (step, seq):
        y, g = _grads(model, x)
        assert (y - y_ref).abs().max() <= 1e-12 * y_ref.abs().max()
        for a, b in zip(g, g_ref):
            assert (a - b).abs().max() <= 1e-11 * b.abs().max().clamp_min(1e-30)


def test_stop_gradient_changes_the_gradient():
    """The flag reaches the op: with it, the controller's gradients differ from the exact ones."""
    _, _, exact = _pair()
    _, _, stopped = _pair(usage_stop_gradient=True)
    x = torch.randn(2, 9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    g_exact, g_stop = _grads(exact, x)[1][0], _grads(stopped, x)[1][0]
    assert (g_exact - g_stop).abs().max() > 1e-6 * g_exact.abs().max()


def test_training_graph_is_one_node_per_sequence():
    """The sequence op records one autograd node; the per-step path records one access node
    per step plus the controller's and interface's small ops."""
    _, step, seq = _pair(dtype=torch.float32)
    x = torch.randn(2, 9, 5)
    seq_nodes, step_nodes = _graph_nodes(seq(x)), _graph_nodes(step(x))
    assert sum("SequenceFunction" in n for n in seq_nodes) == 1
    assert not any("AccessFunction" in n for n in seq_nodes)
    assert sum("AccessFunction" in n for n in step_nodes) == 9
    assert len(seq_nodes) < 10 and len(step_nodes) > 9 * 10


def test_float32_sequence_tracks_the_per_step_op():
    """float32 over 40 steps: the sequence op and the per-step op differ by rounding only."""
    _, step, seq = _pair(dtype=torch.float32, input_steps=40, output_steps=40, memory_slots=16)
    x = torch.randn(4, 40, 5, generator=torch.Generator().manual_seed(3))
    y_step, g_step = _grads(step, x)
    y_seq, g_seq = _grads(seq, x)
    assert (y_seq - y_step).abs().max() <= 1e-4 * y_step.abs().max()
    for a, b in zip(g_seq, g_step):
        assert (a - b).abs().max() <= 1e-3 * b.abs().max().clamp_min(1e-12)


def test_inference_path_equals_the_training_forward():
    """Under inference_mode the op runs its CPU kernel (no autograd key): same features."""
    _, _, seq = _pair()
    x = torch.randn(2, 9, 5, dtype=torch.float64)
    with torch.inference_mode():
        y_inf = seq(x)
    assert torch.equal(y_inf, seq(x).detach())


def _op_inputs(seed=0, b=2, t=3, d=3, h=4, n=5, w=3, r=2):
    """x, weights and a non-trivial initial state (a reference rollout), all float64 leaves."""
    gen = torch.Generator().manual_seed(seed)
    states, _, _ = rollout(b, n, w, r, steps=3, seed=seed)
    cell = torch.nn.LSTMCell(d + r * w, h).double()
    iface = InterfaceLayer(h, w, r).linear.double()
    weights = [p.detach().clone().requires_grad_() for p in sequence_weights(cell, iface)]
    init = [s.detach().clone().requires_grad_() for s in states[-1]]
    init += [torch.randn(b, h, dtype=torch.float64, generator=gen).requires_grad_()
             for _ in range(2)]
    init.append(torch.randn(b, r * w, dtype=torch.float64, generator=gen).requires_grad_())
    x = torch.randn(b, t, d, dtype=torch.float64, generator=gen).requires_grad_()
    return x, weights, init


def test_gradcheck_over_inputs_weights_and_initial_state():
    x, weights, init = _op_inputs()

    def fn(x, *rest):
        return fused_sequence(x, list(rest[:6]), list(rest[6:]))

    assert torch.autograd.gradcheck(fn, (x, *weights, *init), eps=1e-6, atol=1e-7)


def test_opcheck():
    """Schema, fake rule, autograd registration and AOT tracing of the sequence op."""
    x, weights, init = _op_inputs(seed=1)
    torch.library.opcheck(torch.ops.dpbench.dnc_sequence.default, (x, weights, init, False))


def test_bad_shapes_are_named():
    x, weights, init = _op_inputs()
    with pytest.raises(RuntimeError, match="interface width"):
        fused_sequence(x, weights[:4] + [weights[4][:-1], weights[5][:-1]], init)
    with pytest.raises(RuntimeError, match="expected 9 initial tensors"):
        fused_sequence(x, weights, init[:8])


_PEAK_SCRIPT = r"""
import json, sys, torch
from dpbench.models.dnc import DNC
from dpbench.ops import _loader
assert _loader.load().available
torch.manual_seed(0)
model = DNC(impl="fused", input_size=8, input_steps=15, output_size=8, output_steps=15,
            task="recall", hidden_size=32, memory_slots=128, word_size=16, read_heads=2)
x = torch.randn(64, 30, 8)

def rss(field):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))

def peak_mb(run):
    run()                                        # warm-up: first-touch pages, kernels loaded
    torch.ops.dpbench.dnc_link_cache_release()   # the warm-up's pooled links, out of the base
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = rss("VmRSS")
    run()
    return (rss("VmHWM") - base) / 1024

def no_grad():
    with torch.no_grad():
        model(x)

def taped():
    model(x).sum().backward()

print(json.dumps({"no_grad": peak_mb(no_grad), "taped": peak_mb(taped)}))
"""


def test_no_grad_forward_keeps_no_tape():
    """Under no_grad the sequence op frees each step's state as it goes: its peak memory is a
    small fraction of a training forward's, whose tape holds all T link matrices (here
    T = 30 × B·N² = 64·128² floats ≈ 126 MB)."""
    import json
    import os
    import subprocess
    import sys

    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux /proc to read the resident-set high-water mark")
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    peak = json.loads(out.stdout.strip().splitlines()[-1])
    assert peak["taped"] > 100, peak            # the tape: ≥ 30 link matrices of 4 MB
    assert peak["no_grad"] < 0.2 * peak["taped"], peak
