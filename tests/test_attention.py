"""Attention family: contract, alignment invariants, causality, numerics and the seed's
§3.1 claim that attention beats a fixed-vector encoder–decoder on a recall task."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dpbench.models._attention_rnn import AdditiveScore, CosineScore, GeneralScore, attend
from dpbench.models._attention_transformer import CausalSelfAttention, sinusoidal_positions

MODELS = ("seq2seq", "bahdanau", "cosine-attn", "luong", "transformer", "darnn")
ATTENDING = MODELS[1:]
# (input_size, input_steps, output_size, output_steps): forecast with 2 exogenous columns
# recall-tail: outputs aligned with the last 3 of 10 input steps only
SHAPES = {"forecast": (5, 12, 3, 4), "recall": (6, 10, 4, 10), "recall-tail": (6, 10, 4, 3)}


def build(registry, name: str, task: str, seed: int = 0, **hparams):
    torch.manual_seed(seed)
    d_in, steps, d_out, steps_out = SHAPES[task]
    return registry.model(name).build(
        input_size=d_in, input_steps=steps, output_size=d_out, output_steps=steps_out,
        task=task.split("-")[0], **hparams,
    )


def small(registry, name: str, task: str):
    """``name`` at width 8."""
    return build(registry, name, task, **{registry.model(name).width: 8})


def inputs(task: str, batch: int = 3, seed: int = 1) -> torch.Tensor:
    d_in, steps, _, _ = SHAPES[task]
    return torch.randn(batch, steps, d_in, generator=torch.Generator().manual_seed(seed))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("task", list(SHAPES))
@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_diagnostics(registry, name, task):
    model = small(registry, name, task)
    x = inputs(task)
    diagnostics: dict = {}
    y = model(x, diagnostics=diagnostics)
    _, steps, d_out, steps_out = SHAPES[task]
    assert y.shape == (3, steps_out, d_out)
    spec = registry.model(name)
    assert spec.family == "attention" and set(diagnostics) == set(spec.diagnostics)
    if "attention" in diagnostics:
        rows = steps if name == "transformer" else steps_out
        assert diagnostics["attention"].shape == (3, rows, steps)
    if name == "darnn":
        driving = 2 if task == "forecast" else 6  # exogenous columns, else all inputs
        assert diagnostics["input_attention"].shape == (3, steps, driving)


@pytest.mark.parametrize("task", ["forecast", "recall"])
@pytest.mark.parametrize("name", ATTENDING)
def test_alignment_rows_are_distributions(registry, name, task):
    model = small(registry, name, task)
    diagnostics: dict = {}
    model(inputs(task), diagnostics=diagnostics)
    for key in set(diagnostics) & {"attention", "input_attention"}:
        weights = diagnostics[key]
        assert (weights >= 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
    if name == "transformer":  # causal: no weight on the future
        assert torch.equal(diagnostics["attention"].triu(1), torch.zeros_like(diagnostics["attention"]))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("task", ["forecast", "recall"])
def test_diagnostics_do_not_change_outputs(registry, name, task):
    model = build(registry, name, task)
    x = inputs(task)
    assert torch.equal(model(x), model(x, diagnostics={}))


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_numbers(registry, name):
    x = inputs("recall")
    a, b = build(registry, name, "recall", seed=3), build(registry, name, "recall", seed=3)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), build(registry, name, "recall", seed=4)(x))


@pytest.mark.parametrize("task", ["forecast", "recall"])
@pytest.mark.parametrize("name", MODELS)
def test_gradient_reaches_first_encoder_step(registry, name, task):
    model = build(registry, name, task)
    x = inputs(task).requires_grad_(True)
    y = model(x)
    # the last output only: it must depend on the first input step through the network
    y[:, -1].pow(2).sum().backward()
    assert x.grad[:, 0].abs().sum() > 0


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_grows_with_width(registry, name):
    spec = registry.model(name)
    counts = [n_params(build(registry, name, "recall", **{spec.width: w})) for w in range(2, 40, 3)]
    assert all(a < b for a, b in zip(counts, counts[1:])), counts


@pytest.mark.parametrize("hparams", [{"cell": "rnn"}, {"cell": "gru"}, {"cell": "lstm"}])
@pytest.mark.parametrize("name", ["seq2seq", "bahdanau", "luong"])
def test_cells(registry, name, hparams):
    model = build(registry, name, "forecast", hidden=6, **hparams)
    assert model(inputs("forecast")).shape == (3, 4, 3)


def test_luong_dot_has_no_score_weights(registry):
    dot, general = (build(registry, "luong", "recall", hidden=8, score=s) for s in ("dot", "general"))
    assert n_params(general) - n_params(dot) == 8 * 8
    with pytest.raises(ValueError):
        build(registry, "luong", "recall", score="cosine")
    with pytest.raises(ValueError):
        build(registry, "seq2seq", "recall", cell="transformer")


def test_transformer_is_causal(registry):
    torch.manual_seed(0)
    model = build(registry, "transformer", "recall", d_model=12, layers=3)  # outputs at every step
    x = inputs("recall", batch=2)
    for t in (0, 4, 8):
        x2 = x.clone()
        x2[:, t + 1:] += torch.randn_like(x2[:, t + 1:])
        y, y2 = model(x), model(x2)
        torch.testing.assert_close(y2[:, : t + 1], y[:, : t + 1], rtol=0, atol=1e-6)
        assert (y2[:, t + 1:] - y[:, t + 1:]).abs().max() > 1e-3


# --- numerics against independent float64 references ------------------------------------

def test_additive_score_is_eq10_in_float64():
    torch.manual_seed(0)
    score = AdditiveScore(query_size=3, key_size=4, attn_size=5).double()
    s, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 7, 4, dtype=torch.float64)
    w_cat = torch.cat([score.w.weight, score.u.weight], dim=1)  # W_a acting on [s; h]
    expected = torch.stack([
        torch.stack([score.v.weight[0] @ torch.tanh(w_cat @ torch.cat([s[b], h[b, i]]) + score.u.bias)
                     for i in range(7)]) for b in range(2)])
    torch.testing.assert_close(score(s, score.keys(h)), expected)


def test_cosine_score_is_eq11_with_key_strength():
    torch.manual_seed(0)
    score = CosineScore(query_size=3, key_size=4).double()
    s, h = torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 7, 4, dtype=torch.float64)
    cos = F.cosine_similarity(score.key(s)[:, None, :], h, dim=-1)
    beta = torch.log1p(torch.exp(score.strength(s)))
    torch.testing.assert_close(score(s, score.keys(h)), beta * cos)


def test_attention_context_gradcheck():
    torch.manual_seed(0)
    score = GeneralScore(3, 4).double()
    s = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, h: attend(score(s, score.keys(h)), h)[1], (s, h))


def test_causal_self_attention_matches_explicit_loop():
    torch.manual_seed(0)
    attn = CausalSelfAttention(d_model=6, heads=2).double()
    z = torch.randn(2, 5, 6, dtype=torch.float64)
    out, weights = attn(z, need_weights=True)
    q, k, v = attn.qkv(z).view(2, 5, 3, 2, 3).unbind(2)  # [B, T, heads, d_h]
    heads = []
    for hd in range(2):
        rows = []
        for t in range(5):
            logits = torch.einsum("bd,bjd->bj", q[:, t, hd], k[:, : t + 1, hd]) / math.sqrt(3)
            rows.append(torch.einsum("bj,bjd->bd", torch.softmax(logits, -1), v[:, : t + 1, hd]))
        heads.append(torch.stack(rows, 1))
    expected = attn.proj(torch.cat(heads, -1))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights[:, 0, 0], torch.ones(2, dtype=torch.float64))


def test_sinusoidal_positions_known_values():
    pe = sinusoidal_positions(50, 7)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1, 0, 1, 0, 1, 0]))
    torch.testing.assert_close(pe[:, 0], torch.sin(torch.arange(50.0)))
    torch.testing.assert_close(pe[:, 3], torch.cos(torch.arange(50.0) / 10000 ** (2 / 7)))


# --- the seed's §3.1 claim -----------------------------------------------------------------

COPY = {"lag": 10, "symbols": 10, "alphabet": 8, "n_train": 1000, "n_val": 100, "n_test": 200}


def sequence_ce(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every output step (the copy task's standard loss)."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def train_copy(model: torch.nn.Module, task, seed: int, steps: int = 300, every: int = 50) -> float:
    """Adam, batches of 32, clipped gradients; returns the test loss of the checkpoint with
    the best validation loss (checked every ``every`` steps)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    best_val, best_state = math.inf, None
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(task.train), (32,), generator=gen)
        loss = sequence_ce(model, task.train.x[idx], task.train.y[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % every == 0:
            with torch.no_grad():
                val = sequence_ce(model, task.val.x, task.val.y).item()
            if val < best_val:
                best_val, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    with torch.no_grad():
        return sequence_ce(model, task.test.x, task.test.y).item()


def test_attention_beats_fixed_vector_on_copy(registry):
    """Seed §3.1: seq2seq must squeeze 10 symbols into h_T and stays near the memoryless
    baseline (10 ln 8 / 30 = 0.69); attention retrieves them. Same budget (±10 %), same
    seed, batches and optimiser, 600 steps each.

    Margin (docs/testing.md), test loss / memoryless baseline, seeds 0 and 1, measured under
    the AVX-512 kernels and with them capped at AVX2: bahdanau 0.45, 0.49 / 0.49, 0.04;
    seq2seq 1.03, 1.03. The threshold 0.85 sits ≥ 0.36 above every attention value and far
    below seq2seq. At 300 steps attention was 0.63-0.74 and moved by up to 0.1 with the
    instruction set: too close to the threshold to hold on every CPU."""
    from dpbench.data import prepare

    task = prepare(registry.dataset("copy"), COPY, seed=0, use_cache=False)
    steps = task.train.x.shape[1]

    def make(name: str, hidden: int) -> torch.nn.Module:
        torch.manual_seed(0)
        return registry.model(name).build(
            input_size=task.input_size, input_steps=steps, output_size=task.output_size,
            output_steps=task.output_steps, task="recall", cell="gru", hidden=hidden)

    attention = make("bahdanau", 32)
    budget = n_params(attention)
    hidden = min(range(4, 100), key=lambda h: abs(n_params(make("seq2seq", h)) - budget))
    fixed = make("seq2seq", hidden)
    assert abs(n_params(fixed) - budget) <= 0.1 * budget
    threads = torch.get_num_threads()
    # Scoped to this test: a step-by-step decoder of 32 units gains nothing from intra-op
    # threads, and on a loaded 2-core machine they made it ~20x slower (592 s vs 31 s).
    # One thread also makes the trained numbers independent of the machine's core count.
    torch.set_num_threads(1)
    try:
        loss_attention = train_copy(attention, task, seed=0, steps=600)
        loss_fixed = train_copy(fixed, task, seed=0, steps=600)
    finally:
        torch.set_num_threads(threads)
    assert loss_attention < 0.85 * task.baseline, (loss_attention, task.baseline)
    assert loss_attention < 0.85 * loss_fixed, (loss_attention, loss_fixed)
