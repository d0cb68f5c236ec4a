"""The fused DNC kernels (csrc/dnc) against the pure-PyTorch reference.

The first run JIT-builds the extension (~1 min, cached in ~/.cache/dpbench/ext); CUDA cases
skip when no GPU is visible.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from dpbench.ops import DNCInterface, DNCState, _loader, dnc_access_step
from dpbench.ops.dnc_check import (leaves, compare_with_reference, random_interface, rollout,
                                   within_tolerance)
from dpbench.ops.dnc_reference import allocation_weighting

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
# (2, 33, 4, 9): more heads than one register block (4) and a ragged last chunk.
# W = 32 fills whole vector chunks (the CPU kernels' per-row reductions), every other W does
# not (their reductions over a vector of rows); W = 20 is dnc-learn's word.
SHAPES = [(1, 1, 3, 1), (2, 7, 4, 2), (3, 64, 8, 3), (2, 257, 5, 2), (4, 16, 1, 4),
          (2, 33, 4, 9), (2, 40, 32, 4), (3, 24, 20, 2)]
FIELDS = list(DNCState._fields) + ["reads"]


pytestmark = pytest.mark.usefixtures("fused_kernels")


def _case(shape, dtype, device, seed=0):
    """A realistic state (4 reference steps from zero) and a fresh interface."""
    b, n, w, r = shape
    states, _, gen = rollout(b, n, w, r, steps=4, seed=seed)
    conv = lambda t: t.to(device=device, dtype=dtype)  # noqa: E731
    x = random_interface(b, w, r, gen)
    return DNCState(*map(conv, states[-1])), DNCInterface(*map(conv, x))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}N{}W{}R{}".format(*s))
def test_forward_and_gradients_match_reference(shape, dtype, device):
    """Forward ≤ 1e-10 (float64) / 1e-5 (float32) relative; gradients per within_tolerance."""
    result = compare_with_reference(shape, dtype, device, seed=sum(shape))
    assert set(result["forward"]) == set(FIELDS) and len(result["grad"]) == 16
    assert within_tolerance(result, dtype) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(2, 1000, 16, 16), (1, 513, 32, 5), (3, 2048, 8, 1)],
                         ids=lambda s: "B{}N{}W{}R{}".format(*s))
def test_cuda_large_shapes_match_reference(shape, dtype):
    """Several slots per thread in the block scans, the maximum of 16 read heads, partial
    32-column tiles and 8-row groups. float32 forward tolerance: the worst-case rounding of an
    N-term sum (within_tolerance's ``slots``), since the kernels sum in another order."""
    result = compare_with_reference(shape, dtype, "cuda", seed=sum(shape))
    assert within_tolerance(result, dtype, slots=shape[1]) == []


@pytest.mark.parametrize("device", DEVICES)
def test_sequence_gradients_match_reference(device):
    """Backpropagation through 6 chained steps, only the reads used (None grads for state)."""
    b, n, w, r = 3, 10, 4, 2
    gen = torch.Generator().manual_seed(4)
    xs = [random_interface(b, w, r, gen) for _ in range(6)]
    grads = []
    for impl in ("reference", "fused"):
        leaves = [DNCInterface(*[t.clone().to(device).requires_grad_() for t in x]) for x in xs]
        state = DNCState(*[t.to(device) for t in rollout(b, n, w, r, steps=0)[0][0]])
        loss = 0.0
        for x in leaves:
            state, reads = dnc_access_step(state, x, impl=impl)
            loss = loss + reads.pow(2).sum()
        loss.backward()
        grads.append(torch.cat([t.grad.flatten() for x in leaves for t in x]))
    assert _rel(grads[1], grads[0]) <= 1e-10


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_fused_float64(device):
    state, x = leaves(*_case((2, 5, 3, 2), torch.float64, device, seed=9))
    n_state = len(state)

    def fn(*args):
        new, reads = dnc_access_step(DNCState(*args[:n_state]), DNCInterface(*args[n_state:]),
                                     impl="fused")
        return (*new, reads)

    assert torch.autograd.gradcheck(fn, (*state, *x), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    """The public op with its C++ autograd kernel (schema, fake rule, autograd registration,
    AOT tracing of forward and backward), and the two kernel ops below it."""
    state, x = leaves(*_case((2, 6, 3, 2), torch.float64, device, seed=2))
    torch.library.opcheck(torch.ops.dpbench.dnc_access.default, ([*state, *x],))
    plain = [t.detach() for t in (*state, *x)]
    out = torch.ops.dpbench.dnc_access_forward(plain)
    torch.library.opcheck(torch.ops.dpbench.dnc_access_forward.default, (plain,))
    grads = [torch.randn_like(t) for t in out[:7]]
    grads[1] = None                                   # optional output grads
    torch.library.opcheck(torch.ops.dpbench.dnc_access_backward.default,
                          (grads, plain + [out[0], out[4], out[5], out[7]]))


def _record(seen: dict, t: int, grad) -> None:
    if grad is not None:
        seen[t] = grad.clone()


def test_backward_reuses_the_link_gradient_buffer_only_when_unshared():
    """On CPU, ∂L_{t-1} is written into ∂L_t's buffer when nothing else holds it, so one B·N²
    buffer serves the whole backward of a sequence (counted by the library); a ∂L_t that Python
    holds (a hook, retain_grad) is never overwritten; the gradients stay those of the
    reference."""
    b, n, w, r, steps = 2, 9, 4, 2, 5
    gen = torch.Generator().manual_seed(7)
    xs = [random_interface(b, w, r, gen, torch.float64) for _ in range(steps)]
    reuses = torch.ops.dpbench.dnc_link_grad_reuses
    grads = {}
    for impl, held_step in (("reference", None), ("fused", None), ("fused", 1)):
        leaves_ = [DNCInterface(*[t.clone().requires_grad_() for t in x]) for x in xs]
        state = DNCState(*[t.double() for t in rollout(b, n, w, r, steps=0)[0][0]])
        seen, links, loss = {}, [], 0.0
        for t, x in enumerate(leaves_):
            state, reads = dnc_access_step(state, x, impl=impl)
            if t == held_step:
                state.link.retain_grad()
                state.link.register_hook(functools.partial(_record, seen, t))
            links.append(state.link)
            loss = loss + reads.pow(2).sum()
        before = reuses()
        loss.backward()
        grads[impl] = torch.cat([t.grad.flatten() for x in leaves_ for t in x])
        if impl == "fused":   # ∂L_T is None; ∂L_{T-1} .. ∂L_0 flow on in one buffer
            assert reuses() - before == steps - 1 - (held_step is not None)
        if held_step is not None:
            torch.testing.assert_close(links[held_step].grad, seen[held_step], rtol=0, atol=0)
        assert _rel(grads[impl], grads["reference"]) <= 1e-10


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # float32: CPU radix sort
def test_usage_ties_follow_documented_rule(device, dtype):
    """Equal usages: lower slot index allocated first, in the kernel as in the reference."""
    state, x = _case((2, 9, 4, 2), dtype, device, seed=5)
    tied = torch.tensor([0.5, 0.2, 0.2, 0.9, 0.2, 0.5, 0.7, 0.2, 0.3], dtype=dtype)
    no_free = torch.zeros_like(x.free_gates)
    state = state._replace(usage=tied.expand(2, 9).to(device).contiguous(),
                           write_weights=torch.zeros_like(state.write_weights))
    x = x._replace(free_gates=no_free, write_gate=torch.ones_like(x.write_gate),
                   allocation_gate=torch.ones_like(x.allocation_gate))
    new_ref, _ = dnc_access_step(state, x, impl="reference")
    new_fus, _ = dnc_access_step(state, x, impl="fused")
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert _rel(new_fus.write_weights, new_ref.write_weights) <= tol
    assert new_fus.write_weights.argmax(-1).tolist() == [1, 1]
    expected = allocation_weighting(tied.unsqueeze(0))[0]
    assert expected[1] > expected[2] > expected[4] > expected[7]


def test_torch_compile_traces_fused_op():
    state, x = _case((2, 8, 4, 2), torch.float32, "cpu", seed=3)
    compiled = torch.compile(lambda s, i: dnc_access_step(s, i, impl="fused"), backend="eager",
                             fullgraph=True)
    _, reads = compiled(state, x)
    _, expected = dnc_access_step(state, x, impl="reference")
    assert _rel(reads, expected) <= 1e-5


def test_failed_build_falls_back_with_one_warning(tmp_path):
    """No usable sources → the JIT build fails → auto warns once (naming the log), reference used."""
    code = (
        "import warnings, torch, sys\n"
        "from dpbench.ops import dnc_access_step\n"
        "from dpbench.ops.dnc_check import rollout, random_interface\n"
        "states, _, gen = rollout(2, 4, 3, 1, steps=1)\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    for _ in range(3):\n"
        "        dnc_access_step(states[-1], random_interface(2, 3, 1, gen), impl='auto')\n"
        "print(len(caught)); print(caught[0].message)\n")
    (tmp_path / "src").mkdir()
    env = dict(os.environ, DPBENCH_CSRC=str(tmp_path / "src"), DPBENCH_NO_PREBUILT="1",
               DPBENCH_EXT_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert out.returncode == 0, out.stderr
    count, message = out.stdout.strip().splitlines()
    assert count == "1"
    assert "build failed" in message and str(tmp_path / "cache") in message


def test_concurrent_jit_builds_once_and_clears_leftovers(tmp_path, monkeypatch):
    """Two threads racing on a cold cache: one build, no partial folder, stale leftovers gone."""
    import torch.utils.cpp_extension as cpp

    monkeypatch.setenv("DPBENCH_EXT_CACHE", str(tmp_path))
    key = _loader.build_key(False)
    stale = tmp_path / f"{key}.tmp-999999"          # an interrupted build's folder
    stale.mkdir(parents=True)
    (stale / "lock").write_text("")                   # and torch's baton inside it
    builds = []

    def fake_load(name, build_directory, **kwargs):
        builds.append(build_directory)
        threading.Event().wait(0.3)
        Path(build_directory, f"{name}.so").write_bytes(b"\0")
        Path(build_directory, "lock").write_text("")  # torch's baton left behind

    monkeypatch.setattr(cpp, "load", fake_load)
    results = []
    threads = [threading.Thread(target=lambda: results.append(_loader.jit_build(False)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert results[0] == results[1] == tmp_path / key / "dpbench_dnc.so"
    assert not stale.exists() and not list(tmp_path.glob("*.tmp-*"))
    assert not (tmp_path / key / "lock").exists()
