"""Memory-family models: memn2n, mtnet (dpbench.models.memory) and dnc (dpbench.models.dnc).

Contract checks for all three, structural checks of the papers' equations against
independent float64 re-computations, numerical safety of the DNC at its all-zero start,
and small learning checks on the copy task.
"""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from dpbench.datasets.recall import copy_split, split_rngs
from dpbench.models import _dnc as dnc_module  # the implementation (dnc.py holds the spec)
from dpbench.models.dnc import DNC, InterfaceLayer
from dpbench.models.memory import MemN2N, MTNet

MODELS = ("memn2n", "mtnet", "dnc")
#: Small configurations (the width hparam is overridden where a test needs it).
SMALL = {
    "memn2n": {"embed": 12, "hops": 3},
    "mtnet": {"hidden": 8, "block": 4, "kernel": 2, "ar": 3},
    "dnc": {"hidden_size": 12, "memory_slots": 6, "word_size": 5, "read_heads": 2},
}
#: (task, input_size, input_steps, output_size, output_steps)
CASES = {
    "forecast": ("forecast", 3, 14, 2, 3),
    "recall": ("recall", 6, 12, 5, 12),
    "recall-tail": ("recall", 6, 12, 5, 4),
}


def build(registry, name: str, case: str = "forecast", seed: int = 0, **hparams):
    task, d_in, t_in, d_out, t_out = CASES[case]
    torch.manual_seed(seed)
    model = registry.models[name].build(
        input_size=d_in, input_steps=t_in, output_size=d_out, output_steps=t_out, task=task,
        **{**SMALL[name], **hparams},
    )
    return model, torch.randn(4, t_in, d_in, generator=torch.Generator().manual_seed(seed + 1))


def memory_size(model: torch.nn.Module, steps: int) -> int:
    """M: memory slots the model's attention runs over."""
    if isinstance(model, MTNet):
        return model.slots
    if isinstance(model, DNC):
        return model.memory_slots
    return steps


# ----------------------------------------------------------------------------- all models
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_declared_diagnostics(registry, name, case):
    model, x = build(registry, name, case)
    spec = registry.models[name]
    assert spec.family == "memory" and set(spec.tasks) == {"forecast", "recall"}
    _, _, t_in, d_out, t_out = CASES[case]
    diagnostics: dict = {}
    y = model(x, diagnostics=diagnostics)
    assert y.shape == (4, t_out, d_out)
    assert torch.equal(y, model(x)), "diagnostics must not change the output"
    assert set(diagnostics) == set(spec.diagnostics)
    m = memory_size(model, t_in)
    if name == "dnc":
        r = model.read_heads
        assert diagnostics["read_weights"].shape == (4, t_in, r, m)
        assert diagnostics["write_weights"].shape == (4, t_in, m)
        assert diagnostics["usage"].shape == (4, t_in, m)
    else:
        att = diagnostics["attention"]
        assert att.shape == (4, t_out, m)
        assert torch.all(att >= 0)
        torch.testing.assert_close(att.sum(-1), torch.ones(4, t_out))


@pytest.mark.parametrize("case", ["forecast", "recall"])
@pytest.mark.parametrize("name", MODELS)
def test_backward_reaches_every_parameter(registry, name, case):
    model, x = build(registry, name, case)
    model(x).square().sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} gets no gradient"


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_numbers(registry, name):
    first, x = build(registry, name, "recall", seed=3)
    second, _ = build(registry, name, "recall", seed=3)
    other, _ = build(registry, name, "recall", seed=4)
    assert torch.equal(first(x), second(x))
    assert not torch.equal(first(x), other(x))


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_grows_with_width(registry, name):
    width = registry.models[name].width
    counts = [
        sum(p.numel() for p in build(registry, name, "forecast", **{width: w})[0].parameters())
        for w in (2, 4, 8, 16, 32, 64)
    ]
    assert all(a < b for a, b in zip(counts, counts[1:])), counts


@pytest.mark.parametrize("name", MODELS)
def test_wrong_window_or_bad_hparams_rejected(registry, name):
    width = registry.models[name].width
    with pytest.raises(ValueError):
        build(registry, name, "forecast", **{width: 0})
    if name != "dnc":  # the DNC is a recurrence and runs on any length
        model, x = build(registry, name, "forecast")
        with pytest.raises(ValueError, match="input steps"):
            model(x[:, 1:])


# ----------------------------------------------------------------------------- memn2n
def test_memn2n_adjacent_weight_tying_and_hops(registry):
    for hops in (1, 2, 5):
        model, x = build(registry, "memn2n", "recall", hops=hops)
        assert isinstance(model, MemN2N)
        # K+1 distinct embedding matrices and temporal encodings realise 2K tied ones
        embeddings = {id(e.weight) for e in model.embeddings}
        assert len(embeddings) == hops + 1
        assert len({id(t) for t in model.temporal}) == hops + 1
        for k in range(1, hops):  # A^{k+1} = C^k: the very same Parameter objects
            c_k, tc_k = model.output_embedding(k)
            a_next, ta_next = model.input_embedding(k + 1)
            assert c_k.weight is a_next.weight and tc_k is ta_next
            assert c_k.weight.data_ptr() == a_next.weight.data_ptr()
        assert model.input_embedding(1)[0] is not model.output_embedding(1)[0]
        diagnostics: dict = {}
        model(x, diagnostics=diagnostics)
        assert diagnostics["attention_hops"].shape[1] == hops
        torch.testing.assert_close(diagnostics["attention"], diagnostics["attention_hops"][:, -1])
        expected = (hops + 1) * (6 * 12 + 12 * 12) + model.head.linear.weight.numel() + 5
        assert sum(p.numel() for p in model.parameters()) == expected


def memn2n_float64(model: MemN2N, x: torch.Tensor) -> torch.Tensor:
    """Sukhbaatar et al. 2015 eq. 1-2, u^{k+1} = u^k + o^k, one query and one slot at a time."""
    emb = [e.weight.double() for e in model.embeddings]
    tem = [t.double() for t in model.temporal]
    w, bias = model.head.linear.weight.double(), model.head.linear.bias.double()
    x = x.double()
    out = torch.zeros(x.shape[0], len(model.positions), w.shape[0], dtype=torch.float64)
    for b in range(x.shape[0]):
        for q, t in enumerate(model.positions.tolist()):
            u = emb[0] @ x[b, t] + tem[0][t]
            for k in range(1, model.hops + 1):
                m = [emb[k - 1] @ x[b, i] + tem[k - 1][i] for i in range(x.shape[1])]
                c = [emb[k] @ x[b, i] + tem[k][i] for i in range(x.shape[1])]
                scores = torch.stack([u @ m_i for m_i in m])
                p = torch.exp(scores - scores.max())
                p = p / p.sum()
                u = u + sum(p_i * c_i for p_i, c_i in zip(p, c))
                if model.relu_half:
                    half = len(u) // 2
                    u = torch.cat([u[:half].clamp(min=0), u[half:]])
            out[b, q] = w @ u + bias
    return out


@pytest.mark.parametrize("relu_half", [False, True])
@pytest.mark.parametrize("case", ["forecast", "recall-tail"])
def test_memn2n_matches_float64_loop(registry, case, relu_half):
    model, x = build(registry, "memn2n", case, relu_half=relu_half)
    y = model.double()(x.double())
    expected = memn2n_float64(model, x)
    if case == "forecast":
        expected = expected[:, 0].view(y.shape)
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-12)


def test_memn2n_temporal_encoding_orders_the_memory(registry):
    """A constant input gives identical slot contents, so only the temporal encoding can make
    the attention non-uniform; zeroing it gives exactly uniform attention."""
    model, x = build(registry, "memn2n", "forecast")
    x = torch.ones_like(x)
    diagnostics: dict = {}
    model(x, diagnostics=diagnostics)
    assert diagnostics["attention"].std(-1).min() > 1e-3
    with torch.no_grad():
        for t in model.temporal:
            t.zero_()
    model(x, diagnostics=diagnostics)
    torch.testing.assert_close(diagnostics["attention"], torch.full_like(diagnostics["attention"], 1 / 14))


# ----------------------------------------------------------------------------- mtnet
def mtnet_float64(model: MTNet, x: torch.Tensor) -> torch.Tensor:
    """Chang et al. 2018: blocks cut one by one, encoded one by one, attention by hand."""
    model = model.double()
    x = x.double()
    batch, steps, dim = x.shape
    block, ar = model.block, model.ar
    end = steps - (block if model.task == "forecast" else 0)
    starts = list(range(end - block, -block, -block))[::-1]  # tiled from the end

    def window(b: int, stop: int, length: int) -> torch.Tensor:  # steps stop-length..stop-1
        rows = [x[b, i] if i >= 0 else torch.zeros(dim, dtype=x.dtype) for i in range(stop - length, stop)]
        return torch.stack(rows)

    outs = []
    for b in range(batch):
        blocks = [window(b, s + block, block) for s in starts]
        m = torch.stack([model.encode_memory(blk[None])[0] for blk in blocks])
        c = torch.stack([model.encode_output(blk[None])[0] for blk in blocks])
        rows = []
        for t in model.positions.tolist():
            u = model.encode_input(window(b, t + 1, block)[None])[0]
            p = torch.softmax(m @ u, dim=0)
            o = (p[:, None] * c).sum(0)
            y = model.head.linear(torch.cat([u, o]))
            if model.task == "forecast":
                y = y + model.autoregressive.linear(window(b, t + 1, ar).flatten())
            rows.append(y)
        outs.append(torch.stack(rows))
    return torch.stack(outs)


@pytest.mark.parametrize("case", ["forecast", "recall-tail"])
def test_mtnet_matches_blockwise_float64(registry, case):
    model, x = build(registry, "mtnet", case, ar=5)
    assert model.slots == 3  # forecast: 10 past steps -> 3 blocks; recall: 12 steps -> 3
    with torch.no_grad():
        y = model.double()(x.double())
        expected = mtnet_float64(model, x)
    torch.testing.assert_close(y, expected.view(y.shape), rtol=1e-9, atol=1e-11)


def test_mtnet_memory_holds_every_past_step(registry):
    """The earliest window step (in the zero-padded first block) still reaches the output;
    in forecast mode the memory holds the past only: the query block is not a slot."""
    model, x = build(registry, "mtnet", "forecast")
    blocks = model.memory_blocks(x)
    assert blocks.shape == (4, 3, 4, 3)
    torch.testing.assert_close(blocks.flatten(1, 2)[:, -10:], x[:, :10])
    assert torch.all(blocks.flatten(1, 2)[:, :2] == 0)
    x2 = x.clone()
    x2[:, 0] += 1.0
    assert not torch.allclose(model(x), model(x2))


def test_mtnet_autoregressive_term_is_forecast_only(registry):
    forecast, x = build(registry, "mtnet", "forecast")
    assert forecast.autoregressive.linear.in_features == 3 * 3  # ar=3 steps × 3 inputs
    no_ar, _ = build(registry, "mtnet", "forecast", ar=0)
    recall, _ = build(registry, "mtnet", "recall")
    assert no_ar.autoregressive is None and recall.autoregressive is None
    with torch.no_grad():  # the AR term is linear in the last steps: shifting them shifts y
        x2 = x.clone()
        x2[:, -3:] += 0.5
        forecast.encode_input.gru.weight_ih_l0.zero_()
        forecast.encode_input.gru.bias_ih_l0.zero_()
        delta = forecast(x2) - forecast(x)
        expected = forecast.autoregressive.linear(torch.full((1, 9), 0.5)) - forecast.autoregressive.linear.bias
    torch.testing.assert_close(delta, expected.view(1, 3, 2).expand_as(delta))


def test_mtnet_short_window_shrinks_block(registry):
    torch.manual_seed(0)
    model = MTNet(input_size=2, input_steps=6, output_size=2, output_steps=1, task="forecast", block=8)
    assert model.block == 3 and model.slots == 1
    assert model(torch.randn(2, 6, 2)).shape == (2, 1, 2)


# ----------------------------------------------------------------------------- dnc
def test_dnc_interface_activations():
    torch.manual_seed(0)
    layer = InterfaceLayer(hidden=7, word_size=5, read_heads=3)
    h = 10 * torch.randn(6, 7)
    iface = layer(h)
    raw = torch.split(layer.linear(h), layer.sizes, dim=-1)
    assert iface.read_keys.shape == (6, 3, 5) and iface.read_modes.shape == (6, 3, 3)
    assert iface.write_strength.shape == iface.write_gate.shape == iface.allocation_gate.shape == (6,)
    torch.testing.assert_close(iface.read_strengths, 1 + torch.log1p(torch.exp(raw[1])))
    assert torch.all(iface.read_strengths >= 1) and torch.all(iface.write_strength >= 1)
    for gate in (iface.erase, iface.free_gates, iface.allocation_gate, iface.write_gate):
        assert torch.all((gate >= 0) & (gate <= 1))
    torch.testing.assert_close(iface.read_modes.sum(-1), torch.ones(6, 3))
    torch.testing.assert_close(iface.write_vector, raw[5])  # keys and write vector stay linear
    torch.testing.assert_close(iface.read_keys.flatten(1), raw[0])


@pytest.mark.parametrize("stop_gradient", [False, True])
def test_dnc_zero_memory_start_is_finite(registry, stop_gradient):
    """All-zero memory, usage and links at t=0, and even an all-zero input: no NaN anywhere."""
    for zero_input in (False, True):
        model, x = build(registry, "dnc", "recall", usage_stop_gradient=stop_gradient)
        x = (torch.zeros_like(x) if zero_input else x).requires_grad_()
        y = model(x)
        assert torch.isfinite(y).all()
        y.square().sum().backward()
        assert torch.isfinite(x.grad).all()
        for pname, p in model.named_parameters():
            assert torch.isfinite(p.grad).all(), pname


def test_dnc_diagnostics_are_weightings(registry):
    model, x = build(registry, "dnc", "forecast")
    diagnostics: dict = {}
    model(x, diagnostics=diagnostics)
    for key in ("read_weights", "write_weights"):
        w = diagnostics[key]
        assert torch.all(w >= 0) and torch.all(w.sum(-1) <= 1 + 1e-5), key
        assert w.sum(-1).max() > 0.05, f"{key} never attends"
    usage = diagnostics["usage"]
    assert torch.all((usage >= 0) & (usage <= 1))
    assert torch.all(usage[:, 0] == 0), "usage starts from the empty memory"


def test_dnc_gradient_is_exact_in_float64():
    """gradcheck of the whole model (interface activations, controller loop and access step)."""
    torch.manual_seed(0)
    model = DNC(input_size=2, input_steps=3, output_size=2, output_steps=3, task="recall",
                hidden_size=4, memory_slots=4, word_size=3, read_heads=2).double()
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model, (x,), eps=1e-6, atol=1e-6)


def test_dnc_usage_stop_gradient_changes_only_gradients(registry):
    plain, x = build(registry, "dnc", "recall")
    stopped, _ = build(registry, "dnc", "recall", usage_stop_gradient=True)
    y_plain, y_stopped = plain(x), stopped(x)
    torch.testing.assert_close(y_plain, y_stopped, rtol=0, atol=0)
    y_plain.sum().backward()
    y_stopped.sum().backward()
    gates = [m.interface.linear.weight.grad for m in (plain, stopped)]
    assert not torch.allclose(*gates)


def test_fused_dnc_runs_the_whole_sequence_op_unless_told_otherwise(registry, monkeypatch):
    """impl=fused on CPU: one dnc_sequence call per forward and no per-step access; with
    diagnostics (per-step traces) the per-step path runs."""
    from dpbench.ops import _loader

    if not _loader.fused_status("cpu").available:
        pytest.skip("fused extension unavailable here")
    calls, steps = [], []
    real_seq, real_step = dnc_module.fused_sequence, dnc_module.dnc_access_step
    monkeypatch.setattr(dnc_module, "fused_sequence",
                        lambda *a, **k: calls.append(1) or real_seq(*a, **k))
    monkeypatch.setattr(dnc_module, "dnc_access_step",
                        lambda s, i, impl="reference": steps.append(1) or real_step(s, i, impl))
    model, x = build(registry, "dnc", "forecast", impl="fused")
    model(x)
    assert (len(calls), len(steps)) == (1, 0)
    model(x, diagnostics={})
    assert (len(calls), len(steps)) == (1, x.shape[1])


def test_dnc_passes_impl_to_the_dispatcher(registry, monkeypatch):
    seen = []
    real = dnc_module.dnc_access_step

    def recording(state, interface, impl="reference"):
        seen.append(impl)
        return real(state, interface, impl="reference")

    monkeypatch.setattr(dnc_module, "dnc_access_step", recording)
    model, x = build(registry, "dnc", "forecast", impl="fused", fused_sequence=False)
    model(x)
    assert seen == ["fused"] * x.shape[1]
    with pytest.raises(ValueError, match="no-such-impl"):
        build(registry, "dnc", "forecast", impl="no-such-impl")


def test_dnc_auto_impl_agrees_with_reference(registry):
    """``auto`` runs the fused kernels where built, else falls back to the reference."""
    reference, x = build(registry, "dnc", "recall")
    auto, _ = build(registry, "dnc", "recall", impl="auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the fallback's one-line notice
        torch.testing.assert_close(auto(x), reference(x), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- learning
def copy_accuracy(
    model: torch.nn.Module, steps: int, lr: float, symbols: int = 3, seed: int = 0, batch: int = 32,
    scored_only: bool = False,
) -> float:
    """Train on copy (lag 5, ``symbols`` of 4: T = 5 + 2·symbols, chance 1/4) for ``steps``
    Adam steps and return the accuracy on 256 test sequences' recalled symbols. The loss is
    the cross-entropy over every step, or over the recalled symbols only (``scored_only``)."""
    torch.manual_seed(seed)
    rng_train, rng_test, _ = split_rngs(seed)
    train, test = (copy_split(n, 5, symbols, 4, rng) for n, rng in ((512, rng_train), (256, rng_test)))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(train), (batch,), generator=g)
        logits, target = model(train.x[idx]), train.y[idx]
        if scored_only:
            logits, target = logits[train.mask[idx]], target[train.mask[idx]]
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, -2), target.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        hit = (model(test.x).argmax(-1) == test.y) & test.mask
    return hit.sum().item() / test.mask.sum().item()


COPY_KW = dict(input_size=6, input_steps=11, output_size=5, output_steps=11, task="recall")


def test_dnc_learns_copy_beyond_chance():
    """Trained on the recalled symbols' loss (the all-steps loss learned too slowly: 0.54 here,
    0.34 on an AMD AVX2 CPU, against a threshold of 0.4), the DNC reaches ~0.93 here. The
    threshold sits 10 standard deviations of a guesser's accuracy over the 768 scored symbols
    above chance (0.25 + 10 × 0.016 ≈ 0.41): far from both chance and what the model reaches,
    so rounding differences between CPUs cannot flip it, while a model that cannot see its
    input (checked: x zeroed in forward) stays at chance and fails."""
    torch.manual_seed(0)
    model = DNC(hidden_size=32, memory_slots=8, word_size=8, read_heads=1, **COPY_KW)
    chance, scored = 1 / 4, 256 * 3
    threshold = chance + 10 * math.sqrt(chance * (1 - chance) / scored)
    assert copy_accuracy(model, steps=300, lr=1e-2, scored_only=True) > threshold


def test_memn2n_learns_copy_from_positions():
    """Recall queries carry their step's temporal encoding, so memn2n can look the symbols up."""
    torch.manual_seed(0)
    model = MemN2N(embed=32, **COPY_KW)
    assert copy_accuracy(model, steps=200, lr=1e-2) > 0.95


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_dnc_checkpointing_keeps_outputs_and_gradients_and_saves_less(registry, impl):
    """``checkpoint=k`` recomputes chunks of k steps in the backward: the same outputs and
    parameter gradients (float64), and autograd keeps fewer bytes (the links of the chunk
    boundaries only)."""
    grads, saved = {}, {}
    for k in (0, 4):
        model, x = build(registry, "dnc", "recall", impl=impl, checkpoint=k, memory_slots=16)
        model, x = model.double(), x.double()
        seen: dict[int, int] = {}

        def pack(t):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = model(x)
        y.pow(2).sum().backward()
        grads[k] = torch.cat([p.grad.flatten() for p in model.parameters()])
        saved[k], out = sum(seen.values()), y.detach()
        if k == 0:
            reference_out = out
    torch.testing.assert_close(out, reference_out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads[4], grads[0], rtol=1e-10, atol=1e-12)
    assert saved[4] < 0.6 * saved[0]
    with pytest.raises(ValueError, match="checkpoint"):
        build(registry, "dnc", "recall", checkpoint=-1)
