"""Behaviour of the reference DNC access step (Graves et al. 2016, Methods)."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from dpbench.ops import DNCInterface, DNCState, dnc_access_step, initial_state
from dpbench.ops.dnc_check import leaves, random_interface, rollout
from dpbench.ops.dnc_reference import EPSILON, allocation_weighting


def test_weightings_nonnegative_and_sum_at_most_one():
    states, _, _ = rollout(b=4, n=8, w=5, r=3, steps=8)
    tol = 1e-12
    for s in states[1:]:
        for name, wt in (("write", s.write_weights), ("read", s.read_weights),
                         ("precedence", s.precedence), ("alloc", allocation_weighting(s.usage))):
            assert (wt >= 0).all(), name
            assert (wt.sum(-1) <= 1 + tol).all(), name
        assert ((s.usage >= 0) & (s.usage <= 1)).all()
        assert (s.link >= 0).all() and (s.link.sum(-1) <= 1 + tol).all()


def test_link_diagonal_exactly_zero():
    states, _, _ = rollout(steps=6)
    for s in states:
        assert torch.all(torch.diagonal(s.link, dim1=-2, dim2=-1) == 0)


def test_allocation_chooses_least_used_slot():
    gen = torch.Generator().manual_seed(1)
    usage = torch.rand(5, 9, generator=gen, dtype=torch.float64) * 0.5 + 0.5
    least = torch.randint(0, 9, (5,), generator=gen)
    usage[torch.arange(5), least] = 0.01
    alloc = allocation_weighting(usage)
    assert torch.equal(alloc.argmax(-1), least)
    assert torch.allclose(alloc[torch.arange(5), least], torch.full((5,), 0.99, dtype=alloc.dtype),
                          atol=1e-5)


def test_allocation_tie_rule_lower_index_first():
    """Documented tie rule: stable ascending sort, so equal usage allocates slot 0 first."""
    usage = torch.tensor([[0.3, 0.2, 0.2, 0.9]], dtype=torch.float64)
    alloc = allocation_weighting(usage)
    u = EPSILON + (1 - EPSILON) * usage[0]
    assert alloc[0, 1].item() == pytest.approx((1 - u[1]).item())
    assert alloc[0, 2].item() == pytest.approx(((1 - u[2]) * u[1]).item())
    fresh = allocation_weighting(torch.zeros(1, 4, dtype=torch.float64))
    assert fresh.argmax().item() == 0


def _naive_step(s: DNCState, x: DNCInterface, b: int) -> tuple[list, list]:
    """Loop-by-loop transcription of Graves et al. 2016 (Methods) for sample ``b``."""
    n, w_size = s.memory.shape[1:]
    r_heads = s.read_weights.shape[1]
    mem = s.memory[b].tolist()
    ww_prev, u_prev = s.write_weights[b].tolist(), s.usage[b].tolist()

    def cos_softmax(m, key, beta):
        kn = math.sqrt(sum(k * k for k in key) + EPSILON)
        logits = []
        for row in m:
            mn = math.sqrt(sum(v * v for v in row) + EPSILON)
            logits.append(beta * sum(k * v for k, v in zip(key, row)) / (kn * mn + EPSILON))
        top = max(logits)
        e = [math.exp(z - top) for z in logits]
        return [v / sum(e) for v in e]

    usage = []
    for i in range(n):
        psi = 1.0
        for r in range(r_heads):
            psi *= 1 - x.free_gates[b, r].item() * s.read_weights[b, r, i].item()
        usage.append((u_prev[i] + ww_prev[i] - u_prev[i] * ww_prev[i]) * psi)
    uu = [EPSILON + (1 - EPSILON) * v for v in usage]
    order = sorted(range(n), key=lambda i: (uu[i], i))
    alloc, run = [0.0] * n, 1.0
    for i in order:
        alloc[i] = (1 - uu[i]) * run
        run *= uu[i]
    cw = cos_softmax(mem, x.write_key[b].tolist(), x.write_strength[b].item())
    ga, gw = x.allocation_gate[b].item(), x.write_gate[b].item()
    ww = [gw * (ga * alloc[i] + (1 - ga) * cw[i]) for i in range(n)]
    e, v = x.erase[b].tolist(), x.write_vector[b].tolist()
    mem = [[mem[i][k] * (1 - ww[i] * e[k]) + ww[i] * v[k] for k in range(w_size)]
           for i in range(n)]
    prec = s.precedence[b].tolist()
    link = [[0.0 if i == j else (1 - ww[i] - ww[j]) * s.link[b, i, j].item() + ww[i] * prec[j]
             for j in range(n)] for i in range(n)]
    reads = []
    for r in range(r_heads):
        wr = s.read_weights[b, r].tolist()
        fwd = [sum(link[i][j] * wr[j] for j in range(n)) for i in range(n)]
        bwd = [sum(link[j][i] * wr[j] for j in range(n)) for i in range(n)]
        cr = cos_softmax(mem, x.read_keys[b, r].tolist(), x.read_strengths[b, r].item())
        pi = x.read_modes[b, r].tolist()
        wr_new = [pi[0] * bwd[i] + pi[1] * cr[i] + pi[2] * fwd[i] for i in range(n)]
        reads.append([sum(wr_new[i] * mem[i][k] for i in range(n)) for k in range(w_size)])
    return reads, link


def test_matches_naive_loop_transcription():
    states, _, gen = rollout(b=2, n=5, w=3, r=2, steps=4, seed=3)
    s = states[-1]
    x = random_interface(2, 3, 2, gen)
    new, reads = dnc_access_step(s, x)
    for b in range(2):
        naive_reads, naive_link = _naive_step(s, x, b)
        assert torch.allclose(reads[b], torch.tensor(naive_reads, dtype=reads.dtype), atol=1e-12)
        assert torch.allclose(new.link[b], torch.tensor(naive_link, dtype=reads.dtype), atol=1e-12)


def test_forward_mode_walks_writes_in_order():
    """Write T one-hot words into fresh slots, find the first by content, then walk forward."""
    b, n, w, r, t_len = 1, 8, 8, 1, 5
    words = torch.eye(w, dtype=torch.float64)[torch.tensor([3, 0, 6, 1, 5])]
    state = initial_state(b, n, w, r, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    one, zero = torch.ones(b, dtype=torch.float64), torch.zeros(b, dtype=torch.float64)
    for t in range(t_len):
        x = random_interface(b, w, r, gen, write_vector=words[t:t + 1], erase=torch.ones(b, w,
                             dtype=torch.float64), allocation_gate=one, write_gate=one,
                             free_gates=torch.zeros(b, r, dtype=torch.float64))
        state, _ = dnc_access_step(state, x)
    content = torch.tensor([[[0.0, 1.0, 0.0]]], dtype=torch.float64)
    forward = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64)
    no_write = dict(write_gate=zero, free_gates=torch.zeros(b, r, dtype=torch.float64))
    x = random_interface(b, w, r, gen, read_keys=words[0:1].unsqueeze(0),
                         read_strengths=torch.full((b, r), 200.0, dtype=torch.float64),
                         read_modes=content, **no_write)
    state, reads = dnc_access_step(state, x)
    assert torch.allclose(reads[0, 0], words[0], atol=1e-3)
    for t in range(1, t_len):
        x = random_interface(b, w, r, gen, read_modes=forward, **no_write)
        state, reads = dnc_access_step(state, x)
        assert torch.allclose(reads[0, 0], words[t], atol=1e-3), t


def test_zero_memory_no_nan_in_values_or_gradients():
    gen = torch.Generator().manual_seed(5)
    for dtype in (torch.float32, torch.float64):
        s, x = leaves(initial_state(2, 4, 3, 2, dtype=dtype), random_interface(2, 3, 2, gen, dtype))
        new, reads = dnc_access_step(s, x)
        loss = reads.sum() + sum(t.sum() for t in new)
        loss.backward()
        for t in (*new, reads):
            assert torch.isfinite(t).all()
        for leaf in (*s, *x):
            assert leaf.grad is not None and torch.isfinite(leaf.grad).all()


def test_gradcheck_float64():
    states, _, gen = rollout(b=2, n=4, w=3, r=2, steps=3, seed=7)
    s, x = leaves(states[-1], random_interface(2, 3, 2, gen))
    n_state = len(s)

    def fn(*args):
        new, reads = dnc_access_step(DNCState(*args[:n_state]), DNCInterface(*args[n_state:]))
        return (*new, reads)

    assert torch.autograd.gradcheck(fn, (*s, *x), eps=1e-6, atol=1e-7)


def test_batch_order_invariance():
    states, _, gen = rollout(b=5, n=6, w=4, r=3, steps=3, seed=11)
    s, x = states[-1], random_interface(5, 4, 3, gen)
    new, reads = dnc_access_step(s, x)
    perm = torch.tensor([3, 0, 4, 1, 2])
    new_p, reads_p = dnc_access_step(DNCState(*[t[perm] for t in s]),
                                     DNCInterface(*[t[perm] for t in x]))
    assert torch.allclose(reads_p, reads[perm], atol=1e-14)
    for a, b in zip(new_p, new):
        assert torch.allclose(a, b[perm], atol=1e-14)


def test_dispatcher_impls():
    states, _, gen = rollout(b=2, n=4, w=3, r=1, steps=2)
    x = random_interface(2, 3, 1, gen)
    _, ref = dnc_access_step(states[-1], x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, auto = dnc_access_step(states[-1], x, impl="auto")
    assert torch.allclose(auto, ref, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="impl"):
        dnc_access_step(states[-1], x, impl="bogus")
